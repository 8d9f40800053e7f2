"""The code's layers, read from the source with `ast` (an import inside a function counts as much as one at the
top): no import circles between modules, imports only down the layers (app/cli -> app/ui -> app/remote -> app/live ->
training -> models), Qt only in the window's package; and every module of the tree imports."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREES = ("app", "models", "training", "bench")  # and main.py; tests/ may import anything
# each may import only itself and those after it; app.remote (the engine over the network) sits on app.live
LAYERS = ("app.cli", "app.ui", "app.remote", "app.live", "training", "models")
QT = ("PySide6", "shiboken6", "pyqtgraph")
# Qt outside app/ui: the SVG renderer the demo builder runs as its own process (python -m), never imports
QT_TOOLS = {"training.demo.render_svgs", "bench.framepath_before"}  # tools run as their own process


def modules(root: Path = ROOT, trees: tuple[str, ...] = TREES) -> dict[str, Path]:
    """Module name -> file, for every .py file under the trees (and main.py)."""
    files = [p for t in trees for p in sorted((root / t).rglob("*.py"))] + [p for p in [root / "main.py"] if p.exists()]
    out = {}
    for p in files:
        parts = p.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """What a module imports, as names: the tree's own modules (a name imported from a package that is itself
    a module counts as that module) and outside packages by their top-level name. Every import statement in
    the file counts, wherever it is, except those under `if TYPE_CHECKING:` (for annotations; they never run)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}  # `if TYPE_CHECKING:` imports never run
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for n in names:
            m = n
            while m and m not in known:
                m = m.rpartition(".")[0]
            found.add(m or n.split(".")[0])
    found.discard(name)
    return found


def graph(root: Path = ROOT, trees: tuple[str, ...] = TREES) -> dict[str, set[str]]:
    known = modules(root, trees)
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start] & edges.keys())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w] & edges.keys()))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def layer(name: str) -> int | None:
    for i, prefix in enumerate(LAYERS):
        if name == prefix or name.startswith(prefix + "."):
            return i
    return None


def against_the_layers(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, deps in sorted(edges.items()):
        for d in sorted(deps):
            if layer(m) is not None and layer(d) is not None and layer(d) < layer(m):
                bad.append(f"{m} imports {d}")
    return bad


def test_no_import_circles():
    assert circles(graph()) == []


def test_imports_follow_the_layers():
    assert against_the_layers(graph()) == []


def test_qt_only_in_the_window():
    edges = graph()
    bad = [f"{m} imports {d}" for m, deps in sorted(edges.items()) for d in sorted(deps)
           if d.split(".")[0] in QT and not m.startswith("app.ui") and m not in QT_TOOLS]
    assert bad == []
    assert not [m for m, deps in edges.items() if deps & QT_TOOLS]  # run as a process, never imported


def test_the_reader_sees_every_import(tmp_path):
    """The checks above can fail: imports inside functions, relative ones and `from package import module`
    all make edges, and a circle or an upward import through them is found."""
    pkg = tmp_path / "models"
    (pkg / "sub").mkdir(parents=True)
    (tmp_path / "app" / "live").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from models import b\n")
    (pkg / "b.py").write_text("from .sub import c\n")
    (pkg / "sub" / "c.py").write_text("import numpy\n\ndef g():\n    import models.a\n    from ..a import f\n")
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "live" / "__init__.py").write_text("")
    (tmp_path / "app" / "live" / "x.py").write_text("from models.b import c\n")
    (pkg / "d.py").write_text("class K:\n    def m(self):\n        from app.live import x\n")
    edges = graph(tmp_path, ("models", "app"))
    assert edges["models.a"] == {"models.b"} and edges["models.b"] == {"models.sub.c"}
    assert edges["models.sub.c"] == {"numpy", "models.a"}
    assert circles(edges) == [["models.a", "models.b", "models.sub.c"]]
    assert against_the_layers(edges) == ["models.d imports app.live.x"]


def test_command_line_parsers_load_no_qt():
    """Building every subcommand's parser loads neither Qt nor the window's package (whose Python < 3.12
    refcount work-around must not run for train, generate, ...)."""
    cli = ("import sys; import app.cli.main as m; m.build_parser(); "
           "bad = [n for n in sys.modules if n.startswith(('PySide6', 'app.ui'))]; "
           "assert not bad, bad; assert sys.getrefcount(None) < 1 << 59; print('ok')")
    r = subprocess.run([sys.executable, "-c", cli], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_every_module_imports():
    """Every module of the tree, bench/ scripts included, imports in a fresh interpreter without running
    anything (scripts start under `if __name__ == "__main__"`)."""
    names = sorted(modules())
    code = ("import importlib\n"
            "bad = []\n"
            f"for n in {names!r}:\n"
            "    try:\n"
            "        importlib.import_module(n)\n"
            "    except BaseException as e:\n"
            "        bad.append(f'{n}: {type(e).__name__}: {e}')\n"
            "print('\\n'.join(bad) or 'ok')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1:] == ["ok"], r.stdout[-3000:] + r.stderr[-3000:]
    assert len(names) > 50 and "bench.adversarial_evidence" in names and "main" in names
