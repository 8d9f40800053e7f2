"""Model > Train adapter...: pick pictures, start, watch it learn, stop or resume, and use the result live.

Training runs in its own process (app/ui/dialogs/trainproc.py); the dialog only reads its progress stream, so the
window never waits on it. The left column is the form and the run's buttons (here); the right one shows the run
(app/ui/dialogs/train_watch.py). Inputs are checked before anything starts, with the command line's own words.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QWidget,
)

from app.ui.dialogs.train_watch import TrainWatch
from app.ui.dialogs.trainproc import TrainProcess
from app.ui.panel.widgets import button, row
from models.errors import UserError

OBJECTIVES = [("Regression + adversarial (sharper)", None), ("Regression only (softer)", 0.0)]  # None: the trainer's default weight


def _browse_row(edit: QLineEdit, title: str) -> QWidget:
    """A folder field with a "..." button that picks one."""
    pick = QToolButton(text="...")
    pick.setToolTip(title)
    pick.clicked.connect(lambda: (folder := QFileDialog.getExistingDirectory(edit, title, edit.text())) and edit.setText(folder))
    return row(edit, pick, stretch=0)


class TrainDialog(QDialog):
    """The form, the checks, the run and what it shows."""

    useAdapter = Signal(str)  # load this adapter folder into the live window
    pauseLive = Signal(bool)  # pause (True) or resume (False) the live output while training shares the CPU

    def __init__(self, base: str, device: str, cuda: bool, out_root: Path, parent: QWidget | None = None, size: int = 512):
        super().__init__(parent)
        self.setWindowTitle("Train an adapter")
        self.resize(1040, 700)
        self.cuda = cuda
        self._quitting = False  # shutdown() was called: the app is quitting
        self.proc = TrainProcess(self)
        self.proc.event.connect(self._on_event)
        self.proc.line.connect(self._on_line)
        self.proc.ended.connect(self._on_ended)
        split = QSplitter(Qt.Orientation.Horizontal)  # the form and the run's progress; the user moves the line
        split.setChildrenCollapsible(False)
        split.addWidget(self._form(base, device, out_root))
        self.resolution.setValue(size)  # the base's own size by default
        self.watch = TrainWatch()  # the run's progress, curves, validation grid and log
        split.addWidget(self.watch)
        split.setStretchFactor(0, 1)  # a smaller dialog takes from both columns, the progress side more
        split.setStretchFactor(1, 2)
        split.setSizes([440, 580])
        QHBoxLayout(self).addWidget(split)
        self._debounce = QTimer(self, singleShot=True, interval=300)
        self._debounce.timeout.connect(self.check_inputs)
        for w in (self.data, self.base, self.out):
            w.textChanged.connect(self._debounce.start)
        for w in (self.condition, self.adapter, self.objective, self.device):
            w.currentIndexChanged.connect(self._debounce.start)
        for w in (self.resolution, self.steps, self.batch):
            w.valueChanged.connect(self._debounce.start)
        self.runs.currentIndexChanged.connect(self._buttons)
        self.check_inputs()

    # ---- the form ---------------------------------------------------------------------------------------

    def _form(self, base: str, device: str, out_root: Path) -> QWidget:
        from training.config import ADAPTERS, CONDITIONS

        box = QWidget()
        box.setMinimumWidth(360)
        f = QFormLayout(box)
        f.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)  # the fields take the column's width
        self.data = QLineEdit()
        self.data.setPlaceholderText("a folder of pictures (+ captions), images/ + conditions/, a dataset or shards")
        self.data.setToolTip("A folder of pictures; a Hugging Face dataset (hub id, save_to_disk folder, Parquet "
                             "files); or WebDataset shards like shards/train-{000000..000009}.tar (docs/training.md)")
        f.addRow("Pictures", _browse_row(self.data, "Choose the folder of training pictures"))
        self.data_summary = QLabel()
        self.data_summary.setStyleSheet("color: gray")
        f.addRow("", self.data_summary)
        self.condition = QComboBox()
        self.condition.addItems(list(CONDITIONS))
        self.condition.setToolTip("What the adapter learns to follow: canny edges, a sketch, the grey picture (colorize), "
                                  "a blurred one (restore), or your own conditions/ folder (paired)")
        f.addRow("Condition", self.condition)
        self.adapter = QComboBox()
        self.adapter.addItems(list(ADAPTERS))
        self.adapter.setToolTip("full: the UNet's own encoder (best quality); light: half the work per frame")
        f.addRow("Adapter", self.adapter)
        self.base = QLineEdit(base)
        f.addRow("Base model", self.base)
        self.resolution = QSpinBox(minimum=64, maximum=1024, singleStep=64, value=512)
        self.steps = QSpinBox(minimum=1, maximum=1_000_000, singleStep=100, value=1000)
        self.batch = QSpinBox(minimum=1, maximum=256, value=4)
        f.addRow("Resolution", self.resolution)
        f.addRow("Steps", self.steps)
        f.addRow("Batch size", self.batch)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.device.setCurrentText(device if device in ("auto", "cpu", "cuda") else "auto")
        f.addRow("Device", self.device)
        self.objective = QComboBox()
        for label, weight in OBJECTIVES:
            self.objective.addItem(label, weight)
        f.addRow("Objective", self.objective)
        self.out = QLineEdit(str(out_root / time.strftime("adapter-%Y%m%d-%H%M")))
        self.out.textChanged.connect(self.out.setToolTip)  # the whole path, where the field shows its end
        self.out.setToolTip(self.out.text())
        f.addRow("Output folder", _browse_row(self.out, "Choose the output folder"))
        self.runs = QComboBox()
        self.runs.setToolTip("Unfinished runs found in the output folder and beside it")
        self.runs.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.runs.setMinimumContentsLength(16)  # a long run label is cut here, shown whole in the list and the tooltip
        self.runs.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.runs.activated.connect(self._show_run)  # picking a run shows its own settings in the form
        self.resume_button = button("Resume", "Continue the run chosen here from its newest checkpoint", self.resume)
        f.addRow("Runs", row(self.runs, self.resume_button, stretch=0))
        self.pause_live = QCheckBox("Pause live output while training")
        self.cpu_note = QLabel("No GPU: live output and training share the CPU cores, so each slows the other.")
        self.cpu_note.setWordWrap(True)
        self.cpu_note.setStyleSheet("color: #8a6d00")
        self.pause_live.setChecked(not self.cuda)
        self.cpu_note.setVisible(not self.cuda)
        self.pause_live.setVisible(not self.cuda)
        f.addRow(self.cpu_note)
        f.addRow(self.pause_live)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020")
        f.addRow(self.problem)
        self.start_button = button("Start", "Check the inputs and start training in its own process", self.start)
        self.start_button.setDefault(True)
        self.stop_button = button("Stop", "Finish the step, save a checkpoint and stop (Resume continues it, also another day)", self.stop)
        self.use_button = button("Use this adapter", "Load the finished adapter, or the newest checkpoint, into the live window", self.use)
        f.addRow(row(self.start_button, self.stop_button, self.use_button))
        return box

    # ---- checks -------------------------------------------------------------------------------------------

    def config(self, resume: str | None = None):
        """The TrainConfig the form describes."""
        from training.config import TrainConfig

        cfg = TrainConfig(self.base.text().strip(), self.data.text().strip(), self.out.text().strip(),
                          condition=self.condition.currentText(), adapter=self.adapter.currentText(),
                          resolution=self.resolution.value(), steps=self.steps.value(), batch_size=self.batch.value(),
                          device=self.device.currentText(), resume=resume, checkpoint_every=max(1, min(500, self.steps.value() // 4)),
                          validate_every=max(1, min(250, self.steps.value() // 8)))
        weight = self.objective.currentData()
        if weight is not None:
            cfg.adversarial_weight = weight
        return cfg

    @Slot()
    def check_inputs(self):
        """Returns the config when it can start, else None with the problem shown in the form."""
        from models.loading import resolve
        from training import feed, runs
        from training.config import check

        self._refresh_runs()
        if self.proc.running:
            return None
        try:
            if not self.data.text().strip():
                raise UserError("choose the folder of training pictures, a dataset or shards")
            cfg = self.config()
            found, _ = feed.open_data(cfg)  # a folder, a Hugging Face dataset or WebDataset shards, as `train` opens it
            bad = f", {len(found.unreadable)} unreadable (skipped)" if found.unreadable else ""
            self.data_summary.setText(f"{found.count} pictures{bad}" if found.kind == "folder" else
                                      f"dataset: {found.count} rows{bad}" if found.kind == "dataset" else
                                      f"{len(found.urls)} WebDataset shards (examples counted while training)")
            check(cfg)
            base = resolve(cfg.base, "model") if Path(cfg.base).expanduser().is_dir() or cfg.base == "demo" else None
            params = runs.estimate_adapter_params(base, cfg.adapter) if base is not None else None
            if params:
                runs.check_space(cfg, params)
        except UserError as e:
            self.problem.setText(str(e))
            self.start_button.setEnabled(False)
            return None
        self.problem.setText("")
        self.start_button.setEnabled(True)
        return cfg

    def _refresh_runs(self) -> None:
        from training.runs import find_runs

        out = Path(self.out.text().strip() or ".").expanduser()
        current = self.runs.currentData()
        self.runs.clear()
        self._finished = set()
        for run in find_runs(out) + [r for r in find_runs(out.parent) if r.folder != out]:
            self.runs.addItem(run.label(), str(run.folder))
            if run.finished:
                self._finished.add(str(run.folder))
        if current:
            self.runs.setCurrentIndex(max(0, self.runs.findData(current)))
        self.runs.view().setMinimumWidth(self.runs.view().sizeHintForColumn(0) + 24)  # the list shows labels whole
        self.runs.setToolTip(self.runs.currentText() or "Unfinished runs found in the output folder and beside it")
        self._buttons()

    @Slot(int)
    def _show_run(self, index: int) -> None:
        """The form shows the settings of the run picked (its run.json), not the defaults."""
        from training.runs import read_run

        if index >= 0 and (run := read_run(self.runs.itemData(index))) is not None:
            self._fill(run.config, run.folder)

    def _fill(self, cfg, folder: Path) -> None:
        """The form from a run's TrainConfig."""
        for edit, text in ((self.data, cfg.data), (self.base, cfg.base), (self.out, folder)):
            edit.setText(str(text))
        for spin, value in ((self.resolution, cfg.resolution), (self.steps, cfg.steps), (self.batch, cfg.batch_size)):
            spin.setValue(value)
        for box, text in ((self.condition, cfg.condition), (self.adapter, cfg.adapter), (self.device, cfg.device)):
            box.setCurrentText(text)  # a device such as cuda:1 leaves the box as it is
        self.objective.setCurrentIndex(1 if getattr(cfg, "adversarial_weight", None) == 0.0 else 0)  # OBJECTIVES

    def _buttons(self) -> None:
        running = self.proc.running
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running and self.runs.count() > 0
                                      and self.runs.currentData() not in getattr(self, "_finished", ()))
        self.use_button.setEnabled(self._adapter_to_use() is not None)
        if running:
            self.start_button.setEnabled(False)

    # ---- running -------------------------------------------------------------------------------------------

    @Slot()
    def start(self) -> None:
        cfg = self.check_inputs()
        if cfg is not None:
            self._launch(cfg)

    @Slot()
    def resume(self) -> None:
        from dataclasses import replace

        from training.runs import read_run

        folder = self.runs.currentData()
        run = read_run(folder) if folder else None
        if run is None:
            self.problem.setText("no run to resume here: pick an output folder that holds one")
            return
        self._fill(run.config, run.folder)  # the form says what runs: this run's own settings
        self._launch(replace(run.config, resume="latest"))

    def _launch(self, cfg) -> None:
        from training.runs import train_argv

        self.watch.clear(cfg.steps)
        self._log("$ sdxs-live " + " ".join(train_argv(cfg)))
        if self.pause_live.isVisible() and self.pause_live.isChecked():
            self.pauseLive.emit(True)
        self.proc.start(train_argv(cfg))
        self.watch.eta.setText("Starting (loading the models)...")
        self._buttons()

    @Slot()
    def stop(self) -> None:
        self.watch.eta.setText("Stopping after this step (saving a checkpoint)...")
        self.proc.stop()

    @Slot(dict)
    def _on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        self.watch.show_event(ev)
        if kind in ("checkpoint", "done"):
            self._refresh_runs()
        if kind in ("start", "stopped", "collapse"):  # the others are in the trainer's own notes already
            self._log(" ".join(f"{k}={v}" for k, v in ev.items()))

    @Slot(str)
    def _on_line(self, text: str) -> None:
        self._log(text)

    def _log(self, text: str) -> None:
        self.watch.add_line(text)

    @Slot(int)
    def _on_ended(self, code: int) -> None:
        self.pauseLive.emit(False)
        if self._quitting:
            return
        step, eta = self.watch.bar.value(), self.watch.eta
        if code == 0:
            eta.setText(f"Finished after {step} steps: Use this adapter loads it")
            done = self.out.text().strip()
            self.out.setText(str(Path(done).expanduser().parent / time.strftime("adapter-%Y%m%d-%H%M%S")))  # the next run's
            self._refresh_runs()
            self.runs.setCurrentIndex(max(0, self.runs.findData(str(Path(done).expanduser()))))
        elif code == 130:
            eta.setText(f"Stopped at step {step} with a checkpoint: Resume continues it")
        else:
            lines = self.watch.log.toPlainText().strip().splitlines()
            eta.setText("Training failed: " + (lines[-1] if lines else f"exit code {code}"))
            self.problem.setText(lines[-1].removeprefix("error: ") if lines and lines[-1].startswith("error: ") else "")
        self._refresh_runs()
        self.check_inputs()

    # ---- using the result -----------------------------------------------------------------------------------

    def _adapter_to_use(self) -> Path | None:
        """The finished adapter of the run shown, else its newest checkpoint's adapter."""
        from training import checkpoints

        folder = Path(self.runs.currentData() or self.out.text().strip() or ".").expanduser()
        if (folder / "adapter" / "config.json").exists():
            return folder / "adapter"
        found = checkpoints.list_checkpoints(folder / "checkpoints")
        inner = found[-1] / "adapter" if found else None
        return inner if inner is not None and (inner / "config.json").exists() else None

    @Slot()
    def use(self) -> None:
        path = self._adapter_to_use()
        if path is not None:
            self.useAdapter.emit(str(path))

    def shutdown(self, grace_ms: int | None = 1500) -> None:
        """The app is quitting: Ctrl+C to the run, then (grace_ms given) gone within grace_ms; the newest
        checkpoint stays usable."""
        self._quitting = True  # the run's end then updates nothing in a dialog about to go
        self.proc.stop() if grace_ms is None else self.proc.kill(grace_ms=grace_ms)

    def closeEvent(self, e) -> None:
        if not self.proc.running:
            super().closeEvent(e)
            return
        e.ignore()  # closing the dialog keeps the run going; it stops with Stop or when the app quits
        self.hide()

