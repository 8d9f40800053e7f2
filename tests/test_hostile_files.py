"""Hostile files (issue 32): image and .ora bombs refused before they are decoded or inflated, in one line that
names their size and the limit; `generate` on each stays under the floor's 1.5 GB, measured as the child's peak
resident size (tests/hostile.py builds the files small and streaming)."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.errors import UserError
from models.options import MAX_IMAGE_PIXELS
from tests import hostile
from tests.checks import one_line

FLOOR_MB = 1500  # the floor for generate on any hostile file (checked in a fresh subprocess)
# in-process checks: how far this test may raise the process's lifetime peak (a full run's earlier tests set it high)
GROWTH_MB = 200


# ---- image headers: every format, any declared size over the limit, refused before decoding ----------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(hostile.HEADERS)), w=st.integers(1, 2**31 - 1), h=st.integers(1, 2**31 - 1))
def test_an_image_header_over_the_limit_is_refused_naming_its_size(tmp_path, fmt, w, h):
    from models.imageio import decode_rgb, read_rgb

    most = hostile.MOST_SIDE.get(fmt, 2**31 - 1)
    w, h = min(w, most), min(h, most)
    if w * h <= MAX_IMAGE_PIXELS:
        w = min(most, MAX_IMAGE_PIXELS // h + 1)
    if w * h <= MAX_IMAGE_PIXELS:  # a format whose sides cannot reach it with this h
        return
    path = tmp_path / f"bomb.{fmt}"
    path.write_bytes(hostile.HEADERS[fmt](w, h))
    before = hostile.own_peak_mb()  # this process's peak so far: earlier tests in a full run loaded models
    with pytest.raises(UserError) as caught:
        read_rgb(path)
    said = str(caught.value)
    assert "\n" not in said and repr(str(path)) in said, said
    assert f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels" in said, said
    assert f"{w}x{h} pixels" in said or f"{w * h} pixels" in said, said
    assert decode_rgb(np.fromfile(path, np.uint8)) is None  # the trainer's call: counted unreadable, not decoded
    assert hostile.own_peak_mb() - before < GROWTH_MB  # a decoded bomb would take over 256 MB at once


@pytest.mark.parametrize("fmt", sorted(hostile.HEADERS))
def test_the_same_headers_within_the_limit_are_not_refused_for_their_size(tmp_path, fmt):
    from models.imageio import declared_size

    assert declared_size(hostile.HEADERS[fmt](300, 200)) in ((300, 200), None)  # None: a header Pillow cannot finish
    path = tmp_path / f"small.{fmt}"
    path.write_bytes(hostile.HEADERS[fmt](300, 200))
    from models.imageio import read_rgb

    try:
        read_rgb(path)
    except UserError as e:
        assert "megapixels" not in str(e)


def test_an_image_at_the_limit_is_read(tmp_path):
    """A real picture just under the limit (a grey 16-bit PNG) decodes, within the floor with room for a model."""
    import cv2

    from models.imageio import read_rgb

    side = int(MAX_IMAGE_PIXELS**0.5)
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.full((side, side), 40000, np.uint16))
    img = read_rgb(path)
    assert img.shape == (side, side, 3) and (img == 156).all()  # 40000 / 257, rounded


def test_generate_on_a_png_bomb_is_one_line_and_stays_small(tmp_path, tiny_base, tiny_controlnet):
    """The issue's 1.5 MB PNG that declares 20000x20000 (real, decodable zeros): 11.7 GB and killed before."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(hostile.png_bomb(20000, 20000))
    assert bomb.stat().st_size < 2 * 2**20
    code, out, err, peak = hostile.peak_run(["generate", "--model", tiny_base, "--controlnet", tiny_controlnet,
                                             "--image", str(bomb), "--out", str(tmp_path / "o.png"), "--device", "cpu"])
    one_line(code, err, "20000x20000", f"at most {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels", "bomb.png")
    assert peak < FLOOR_MB, peak
    assert not (tmp_path / "o.png").exists()


def test_a_video_declaring_frames_over_the_limit_is_refused_before_decoding(tmp_path):
    """A 9000x8000 video (72 megapixels a frame, a few hundred KB on disk): `stream --input` says so in one line
    before any model loads, and the window's video source fails with the same line."""
    from app.live.source_spec import SourceSpec
    from app.live.sources import Capture

    video = hostile.huge_video(tmp_path / "huge.avi")
    assert video.stat().st_size < 4 * 2**20
    code, out, err, peak = hostile.peak_run(["stream", "--input", str(video), "--model", "demo", "--out",
                                             str(tmp_path / "o.mp4")])
    one_line(code, err, "9000x8000", f"at most {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels", "huge.avi")
    assert peak < 500, peak  # a decoded frame alone is 216 MB as RGB
    assert not (tmp_path / "o.mp4").exists()
    cap = Capture(SourceSpec("video", str(video))).start()
    try:
        deadline = time.monotonic() + 30
        while cap.state != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cap.state == "failed" and "9000x8000" in cap.error and "\n" not in cap.error, (cap.state, cap.error)
    finally:
        cap.stop()


# ---- .ora: layers checked by their declared size, members by size and ratio, before either is decoded ------

def test_an_ora_layer_larger_than_its_stack_says_is_refused_before_decoding(tmp_path):
    from models.openraster import read_drawing

    path = hostile.ora(tmp_path / "big.ora", {"lines": hostile.png_bomb(20000, 20000), "colour": hostile.png_header(512, 512)})
    before = hostile.own_peak_mb()
    with pytest.raises(UserError) as caught:
        read_drawing(path)
    said = str(caught.value)
    assert "'data/lines.png' is 20000x20000 pixels in a 512x512 drawing" in said and "megapixels" in said, said
    assert hostile.own_peak_mb() - before < GROWTH_MB  # decoding it would take 1.6 GB


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory):
    return hostile.ora_zip_bomb(tmp_path_factory.mktemp("zb") / "bomb.ora")


def test_an_ora_member_that_inflates_1000_times_is_refused_before_inflating(zip_bomb):
    from models.openraster import MOST_RATIO, read_drawing

    assert zip_bomb.stat().st_size < 2 * 2**20
    with zipfile.ZipFile(zip_bomb) as z:
        assert z.getinfo("data/lines.png").file_size > 2**30
    before = hostile.own_peak_mb()
    with pytest.raises(UserError) as caught:
        read_drawing(zip_bomb)
    said = str(caught.value)
    assert "'data/lines.png' inflates from 1.0 MB to 1024 MB" in said and f"{MOST_RATIO}:1" in said, said
    assert hostile.own_peak_mb() - before < 100


def test_an_ora_member_that_lies_about_its_size_is_cut_at_it(tmp_path):
    """A member whose header declares 1 KB but whose data inflates to 64 MB: zipfile stops at the declared size."""
    from models.openraster import read_drawing

    path = hostile.ora_zip_bomb(tmp_path / "liar.ora", 64 * 2**20)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("data/lines.png")
    big = info.file_size.to_bytes(8, "little")
    at = data.rfind(big)  # the central directory's zip64 extra: the size every reader takes
    data[at : at + 8] = (1024).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    before = hostile.own_peak_mb()
    with pytest.raises(UserError, match="liar.ora"):
        read_drawing(path)
    assert hostile.own_peak_mb() - before < 50


@pytest.mark.parametrize("kind", ["layer", "zip"])
def test_generate_on_an_ora_bomb_is_one_line_and_stays_small(kind, tmp_path, zip_bomb, tiny_base, tiny_controlnet):
    if kind == "layer":
        path = hostile.ora(tmp_path / "big.ora", {"lines": hostile.png_bomb(20000, 20000), "colour": hostile.png_header(512, 512)})
        needles = ["20000x20000", "512x512"]
    else:
        path, needles = zip_bomb, ["zip bomb", "1024 MB"]
    code, out, err, peak = hostile.peak_run(["generate", "--model", tiny_base, "--controlnet", tiny_controlnet,
                                             "--image", str(path), "--out", str(tmp_path / "o.png"), "--device", "cpu"])
    one_line(code, err, *needles)
    assert peak < FLOOR_MB, peak


def test_a_bomb_among_training_pictures_is_skipped_as_unreadable(tmp_path, sketch_image):
    """The trainer's data goes through the same decode: a bomb is one more unreadable picture, never decoded."""
    from models.imageio import write_rgb
    from training import data

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a_bomb.png").write_bytes(hostile.png_bomb(20000, 20000))
    write_rgb(folder / "b.png", sketch_image)
    before = hostile.own_peak_mb()
    found = data.scan(folder, "canny")
    assert [p.name for p in found.unreadable] == ["a_bomb.png"] and [s.image.name for s in found.samples] == ["b.png"]
    assert hostile.own_peak_mb() - before < 100
