"""models/openraster.py and the canvas's Save / Load of a drawing: the OpenRaster file layout as its spec
writes it (https://www.openraster.org/baseline/file-layout-spec.html), read back exactly, read by an independent
OpenRaster library (pyora), and a foreign file read as its merged picture; bad files are one line."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.errors import UserError
from models.openraster import COLOUR_OPACITY, encode, merged, read_drawing, write_drawing


def drawing(h: int = 96, w: int = 128) -> tuple[np.ndarray, np.ndarray]:
    lines = np.full((h, w, 3), 255, np.uint8)
    cv2.rectangle(lines, (20, 20), (100, 80), (0, 0, 0), 2)
    colour = np.zeros((h, w, 4), np.uint8)
    cv2.circle(colour, (50, 50), 18, (40, 70, 200, 255), -1)
    colour[70:78, 90:110] = (250, 215, 40, 128)  # half transparent
    return lines, colour


def test_the_layers_come_back_exactly_and_the_file_is_laid_out_as_the_spec_says(tmp_path):
    lines, colour = drawing()
    path = write_drawing(tmp_path / "house.ora", lines, colour)
    back = read_drawing(path)
    assert np.array_equal(back.lines, lines) and np.array_equal(back.colour, colour)
    with zipfile.ZipFile(path) as z:
        first = z.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert z.read("mimetype") == b"image/openraster"  # no whitespace, no newline
        image = ET.fromstring(z.read("stack.xml"))
        assert (image.get("w"), image.get("h")) == ("128", "96")
        layers = [(e.get("name"), e.get("src"), e.get("composite-op")) for e in image.iter("layer")]
        assert layers == [("colour", "data/colour.png", "svg:multiply"), ("lines", "data/lines.png", "svg:src-over")]
        names = set(z.namelist())
        assert {"stack.xml", "data/colour.png", "data/lines.png", "mergedimage.png", "Thumbnails/thumbnail.png"} <= names
        thumb = cv2.imdecode(np.frombuffer(z.read("Thumbnails/thumbnail.png"), np.uint8), cv2.IMREAD_UNCHANGED)
        assert max(thumb.shape[:2]) <= 256 and thumb.dtype == np.uint8
        flat = cv2.imdecode(np.frombuffer(z.read("mergedimage.png"), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        assert np.array_equal(flat, merged(lines, colour))
    blue = merged(lines, colour)[50, 50].astype(int)
    want = 255 * (1 - COLOUR_OPACITY) + np.array([40, 70, 200]) * COLOUR_OPACITY  # multiplied over white paper
    assert np.abs(blue - want).max() <= 1 and merged(lines, colour)[20, 60].max() == 0  # lines stay black


def test_an_independent_openraster_reader_sees_the_same_layers_and_picture(tmp_path):
    pyora = pytest.importorskip("pyora")
    lines, colour = drawing()
    path = write_drawing(tmp_path / "house.ora", lines, colour)
    project = pyora.Project.load(str(path))
    found = {layer.name: layer for layer in project.iter_layers}
    assert set(found) == {"lines", "colour"}
    assert found["colour"].composite_op == "svg:multiply" and abs(found["colour"].opacity - COLOUR_OPACITY) < 1e-6
    assert np.array_equal(np.asarray(found["colour"].get_image_data()), colour)
    rendered = np.asarray(project.get_image_data(use_original=False))[:, :, :3].astype(int)
    assert np.abs(rendered - merged(lines, colour)).max() <= 1  # its own compositing of our stack


def test_a_file_made_elsewhere_opens_as_its_merged_picture_on_the_line_layer(tmp_path):
    pyora = pytest.importorskip("pyora")
    from PIL import Image

    project = pyora.Project.new(80, 60)
    sky = np.zeros((60, 80, 4), np.uint8)
    sky[:30] = (90, 150, 240, 255)  # the lower half transparent: white paper
    project.add_layer(Image.fromarray(sky, "RGBA"), "/sky")
    buf = io.BytesIO()
    project.save(buf)
    (tmp_path / "krita.ora").write_bytes(buf.getvalue())
    got = read_drawing(tmp_path / "krita.ora")
    assert got.colour is None and got.lines.shape == (60, 80, 3)
    assert np.abs(got.lines[10, 10].astype(int) - (90, 150, 240)).max() <= 1 and (got.lines[45] == 255).all()


def test_bad_files_are_one_line_each(tmp_path):
    png = tmp_path / "a.ora"  # a PNG under the wrong name
    png.write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    cases = {png: "not a readable OpenRaster file", tmp_path / "missing.ora": "does not exist"}
    no_mime = tmp_path / "b.ora"
    with zipfile.ZipFile(no_mime, "w") as z:
        z.writestr("stack.xml", "<image w='8' h='8'><stack/></image>")
    cases[no_mime] = "no image/openraster mimetype"
    lines, colour = drawing()
    data = encode(lines, colour)

    def variant(name: str, stack: bytes) -> None:
        p = tmp_path / name
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(p, "w") as z:
            for info in src.infolist():
                z.writestr(info, stack if info.filename == "stack.xml" else src.read(info))

    variant("huge.ora", b"<image w='100000' h='100000'><stack/></image>")
    cases[tmp_path / "huge.ora"] = "megapixels"
    variant("lost.ora", b"<image w='128' h='96'><stack><layer name='lines' src='data/x.png'/>"
                                  b"<layer name='colour' src='data/colour.png'/></stack></image>")
    cases[tmp_path / "lost.ora"] = "does not hold"
    variant("broken.ora", b"<image")
    cases[tmp_path / "broken.ora"] = "no readable stack.xml"
    for path, words in cases.items():
        with pytest.raises(UserError) as e:
            read_drawing(path)
        assert words in str(e.value) and "\n" not in str(e.value), path
    with pytest.raises(UserError, match=r"\.ora"):
        write_drawing(tmp_path / "house.png", lines, colour)
    with pytest.raises(UserError):
        write_drawing(tmp_path / "no" / "such" / "folder.ora", lines, colour)
    assert not list((tmp_path).glob("*.tmp")) and not (tmp_path / "house.png").exists()


def test_the_window_saves_both_layers_as_ora_and_opens_them_again(qtbot, tmp_path):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColor

    from app.ui.canvas.canvas import COLOUR
    from tests.test_window_adapters import Loader, open_window, settle

    w = open_window(qtbot, tmp_path / "s.ini", Loader())
    settle(qtbot, w, lambda: w.canvas_page.colour_button.isEnabled())
    c = w.canvas
    c.stroke_to(QPointF(60, 256), start=True)
    c.stroke_to(QPointF(450, 256))
    c.end_stroke()
    w.canvas_page.pick_colour(QColor(40, 70, 200))
    c.set_brush(40, COLOUR)
    c.stroke_to(QPointF(256, 60), start=True)
    c.stroke_to(QPointF(256, 450))
    c.end_stroke()
    lines, colour, shown = c.frame(), c.colour_layer(), c.colour_frame().copy()
    w.actions.files.save_drawing(str(tmp_path / "sketch.ora"))
    assert "lines and colour" in w.statusBar().currentMessage()
    w.actions.files.save_drawing(str(tmp_path / "lines.png"))
    assert ".ora" in w.statusBar().currentMessage()  # a PNG keeps no colour: it says so
    c.clear_all()
    assert c.frame().min() == 255 and c.colour_layer()[:, :, 3].max() == 0
    w.actions.files.open_path(str(tmp_path / "sketch.ora"))  # dropped on the window, as Load opens it
    assert np.array_equal(c.frame(), lines) and np.array_equal(c.colour_frame(), shown)
    assert np.abs(c.colour_layer().astype(int) - colour).max() <= 1  # premultiplied in the canvas: within a level
    c.undo()  # the colour layer (being drawn) comes back empty; the lines have their own undo
    assert (c.colour_frame() == 255).all()
    w.close()


def test_generate_gives_each_adapter_its_layer_of_a_saved_drawing(tmp_path):
    """The demo's two adapters and one .ora: the same picture as the lines and the filled colour given one each."""
    from app.cli import main
    from models.assets import DEMO_DIR
    from models.hints import fill_shapes
    from models.imageio import over_white, read_rgb, write_rgb

    if not (DEMO_DIR / "model_index.json").exists():
        pytest.skip("the demo model is not in assets/")
    lines = np.full((256, 256, 3), 255, np.uint8)
    cv2.rectangle(lines, (60, 90), (200, 220), (0, 0, 0), 3)
    cv2.line(lines, (50, 95), (130, 30), (0, 0, 0), 3)
    cv2.line(lines, (130, 30), (210, 95), (0, 0, 0), 3)
    colour = np.zeros((256, 256, 4), np.uint8)
    cv2.circle(colour, (130, 160), 14, (220, 40, 40, 255), -1)  # a red dab in the walls
    write_drawing(tmp_path / "house.ora", lines, colour)
    write_rgb(tmp_path / "lines.png", lines)
    write_rgb(tmp_path / "hints.png", fill_shapes(lines, over_white(colour)))
    common = ["generate", "--model", "demo", "--controlnet", "demo", "--prompt", "a house", "--device", "cpu",
              "--dtype", "float32"]
    assert main.main([*common, "--image", str(tmp_path / "house.ora"), "--out", str(tmp_path / "a.png")]) == 0
    assert main.main([*common, "--image", str(tmp_path / "lines.png"), "--image", str(tmp_path / "hints.png"),
                      "--out", str(tmp_path / "b.png")]) == 0
    a, b = read_rgb(tmp_path / "a.png"), read_rgb(tmp_path / "b.png")
    assert np.array_equal(a, b)
    assert main.main([*common, "--image", str(tmp_path / "lines.png"), "--out", str(tmp_path / "c.png")]) == 0
    assert not np.array_equal(a, read_rgb(tmp_path / "c.png"))  # without the colour: another picture


# ---- files Krita 5.1.5 wrote (tests/data/krita/README.md) ----------------------------------------------------

KRITA = Path(__file__).parent / "data" / "krita"


def krita_house() -> tuple[np.ndarray, np.ndarray]:
    """The drawing behind the Krita files: lines, and a red dab and a half-transparent green band of colour."""
    lines = np.full((128, 128, 3), 255, np.uint8)
    cv2.rectangle(lines, (20, 30), (100, 110), (0, 0, 0), 2)
    cv2.line(lines, (15, 35), (60, 8), (0, 0, 0), 2)
    cv2.line(lines, (60, 8), (105, 35), (0, 0, 0), 2)
    colour = np.zeros((128, 128, 4), np.uint8)
    cv2.circle(colour, (60, 70), 15, (220, 40, 40, 255), -1)
    cv2.rectangle(colour, (5, 115), (120, 124), (40, 160, 60, 200), -1)
    return lines, colour


def krita_picture() -> np.ndarray:
    pic = np.zeros((48, 64, 4), np.uint8)
    pic[:24] = (90, 150, 240, 255)
    pic[24:, :32] = (250, 215, 40, 255)  # the lower right quarter transparent
    return pic


def test_krita_composites_our_layer_stack_as_our_merged_picture():
    lines, colour = krita_house()
    render = cv2.imread(str(KRITA / "krita_render.png"), cv2.IMREAD_UNCHANGED)
    render = cv2.cvtColor(render, cv2.COLOR_BGRA2RGB if render.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    assert np.abs(render.astype(int) - merged(lines, colour)).max() <= 1


def test_krita_s_own_openraster_files_read_back():
    lines, colour = krita_house()
    resaved = read_drawing(KRITA / "krita_resaved.ora")  # its colour layer cropped and placed at an offset
    assert np.array_equal(resaved.lines, lines) and np.array_equal(resaved.colour, colour)
    one = read_drawing(KRITA / "krita_picture.ora")  # no layers of ours: the merged picture, over white
    assert one.colour is None and one.lines.shape == (48, 64, 3)
    from models.imageio import over_white

    assert np.abs(one.lines.astype(int) - over_white(krita_picture())).max() <= 1
    assert (one.lines[30:, 40:] == 255).all()


# ---- anything in a file named .ora (hypothesis): a Drawing or the one-line UserError, never another exception ----

ATTR = st.one_of(st.sampled_from(["0", "-5", "7.5", "1e999", "nan", "inf", "-inf", "", "x", "99999", "-99999"]),
                 st.text(max_size=6))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=ATTR, h=ATTR, x=ATTR, y=ATTR, src=st.sampled_from(["data/lines.png", "data/colour.png", "mergedimage.png",
                                                            "nope.png", "", "../x", "stack.xml"]),
       name=st.sampled_from(["lines", "colour", "color", "LINES", "other", ""]), drop=st.booleans())
def test_any_stack_gives_a_drawing_or_one_line(tmp_path, w, h, x, y, src, name, drop):
    lines, colour = drawing(32, 40)
    data = encode(lines, colour)
    esc = {"&": "&amp;", "<": "&lt;", '"': "&quot;"}
    q = lambda v: "".join(esc.get(c, c) for c in v)  # noqa: E731
    stack = (f'<image w="{q(w)}" h="{q(h)}"><stack><layer name="{name}" src="{src}" x="{q(x)}" y="{q(y)}"/>'
             f'<layer name="lines" src="data/lines.png"/></stack></image>').encode("utf-8", "surrogatepass")
    path = tmp_path / "fuzz.ora"
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(path, "w") as z:
        for info in old.infolist():
            if info.filename == "stack.xml":
                z.writestr(info, stack)
            elif not (drop and info.filename == "mergedimage.png"):
                z.writestr(info, old.read(info))
    try:
        got = read_drawing(path)
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert got.lines.dtype == np.uint8 and got.lines.ndim == 3 and got.lines.shape[2] == 3
    assert got.colour is None or got.colour.shape[:2] == got.lines.shape[:2]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
       truncate=st.one_of(st.none(), st.integers(0, 10**6)))
def test_damaged_bytes_give_a_drawing_or_one_line(tmp_path, cuts, truncate):
    lines, colour = drawing(32, 40)
    data = bytearray(encode(lines, colour))
    for at, value in cuts:
        data[at % len(data)] = value
    if truncate is not None:
        data = data[: truncate % (len(data) + 1)]
    path = tmp_path / "damaged.ora"
    path.write_bytes(bytes(data))
    try:
        got = read_drawing(path)
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert got.lines.dtype == np.uint8 and got.lines.shape[2] == 3
