"""The docs hold: every relative link in README.md and docs/*.md points at a file that exists (and a #anchor at
a heading of that file), and every menu path the docs name (written *Menu > Item* or **Menu > Item**) under one of
the window's own menus is in the real window's menu bar (built offscreen with pytest-qt, as tests/test_app_window.py
builds it). Other programs' menus (OBS's *Sources > + > Browser Source*) start with a name our menu bar lacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)  # fenced code blocks
INLINE_CODE = re.compile(r"(`+)[^`]*?\1")  # `code` and ``code``
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target) and ![alt](target)
EMPHASIS = re.compile(r"(?<!\*)\*{1,2}([^*]+?)\*{1,2}(?!\*)")  # *text* and **text**, over a line break too
EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


def prose(text: str) -> str:
    """The page without its code: links and menu paths in code blocks or `code` are examples, not claims."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text(encoding="utf-8"))) if not t.startswith(EXTERNAL)]


def menu_paths(text: str) -> list[tuple[str, ...]]:
    """Menu paths named in emphasis: *Output > Virtual camera* -> ("Output", "Virtual camera")."""
    spans = [" ".join(span.split()) for span in EMPHASIS.findall(prose(text)) if "\n\n" not in span]
    return [tuple(part.strip() for part in span.split(" > ")) for span in spans if " > " in span]


def broken_links(page: Path) -> list[str]:
    bad = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{page.name}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{page.name}: {target} (no heading #{anchor} in {dest.name})")
    return bad


def test_the_pages_exist_and_the_readme_is_a_front_page():
    names = {p.name for p in PAGES}
    for page in ("window.md", "styles.md", "training.md", "demo-model.md", "benchmarks.md", "openvino.md",
                 "architecture.md", "development.md", "instrument.md"):
        assert page in names, page
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 160
    linked = {Path(t.partition("#")[0]).name for t in links(ROOT / "README.md")}
    assert names - {"README.md"} <= linked, f"pages the README does not link: {names - {'README.md'} - linked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file_and_heading(page):
    assert links(page) or page.name == "instrument.md", f"{page.name} links nothing"
    assert broken_links(page) == []


def test_the_checks_catch_what_they_are_meant_to(tmp_path):
    """The parsers above on a page made to be wrong: a dead file, a dead anchor, a menu path in each form."""
    (tmp_path / "there.md").write_text("# A heading: with `code`\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#a-heading-with-code) [ok](there.md#twice-1) ![img](gone.png)\n"
                    "[bad](there.md#nowhere) [web](https://example.com/x.md)\n"
                    "```\n[code](not-checked.md) *Not > Checked*\n```\n"
                    "Use **File > Snapshot** or *Output > Stream to OBS (MJPEG)...*, not `*Code > Span*`.\n")
    assert broken_links(page) == ["page.md: gone.png (no such file)",
                                  "page.md: there.md#nowhere (no heading #nowhere in there.md)"]
    assert menu_paths(page.read_text()) == [("File", "Snapshot"), ("Output", "Stream to OBS (MJPEG)...")]


def window_menus(qtbot, tmp_path) -> set[tuple[str, ...]]:
    """Every path in the real window's menu bar, menus and submenus included, without the & of mnemonics."""
    from app.ui.session.settings import open_settings
    from app.ui.window import MainWindow

    w = MainWindow(open_settings(str(tmp_path / "settings.ini")))
    qtbot.addWidget(w)
    paths: set[tuple[str, ...]] = set()

    def walk(actions, above: tuple[str, ...]) -> None:
        for a in actions:
            if a.isSeparator() or not a.text():
                continue
            here = (*above, a.text().replace("&", ""))
            paths.add(here)
            if a.menu() is not None:
                a.menu().aboutToShow.emit()  # fills menus made on opening (Model > Trained adapters)
                walk(a.menu().actions(), here)

    walk(w.menuBar().actions(), ())
    return paths


def test_every_menu_path_the_docs_name_is_in_the_window(qtbot, tmp_path):
    real = window_menus(qtbot, tmp_path)
    assert ("Output", "Stream to OBS (MJPEG)...") in real and ("Model", "Trained adapters") in real  # the walk works
    tops = {path[0] for path in real if len(path) == 1}  # File, Edit, View, Model, Output, MIDI, Help
    named = {(page.name, path) for page in PAGES for path in menu_paths(page.read_text(encoding="utf-8"))
             if path[0] in tops}  # others are other programs' menus (OBS, Resolume), not ours
    missing = sorted(f"{name}: {' > '.join(path)}" for name, path in named if path not in real)
    assert missing == [], "menu paths named in the docs but not in the window:\n" + "\n".join(missing)
    assert len(named) >= 5, "the docs name fewer menu paths than expected: is the form still *Menu > Item*?"
