"""Hostile files built small, in memory or streaming: image headers that declare huge sizes, decompression
bombs, zip bombs. Shared by the tests of issue 32; every builder keeps the test itself small in memory."""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(w: int, h: int, data: bytes = b"\0" * 4097) -> bytes:
    """A PNG (8-bit RGBA) whose IHDR declares w x h, followed by a few bytes of pixel data."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b""))


def png_bomb(w: int, h: int, rows: int = 16, rgba: bool = True) -> bytes:
    """A whole, valid 8-bit RGBA (or grey) PNG of w x h zeros whose compressed data is about w*h/1000 bytes: the
    decompression bomb. Built without holding the pixels: after a full flush deflate restarts, so every
    block of `rows` identical rows compresses to the same bytes, repeated."""
    row = w * (4 if rgba else 1)
    block = (b"\0" + bytes(row)) * rows
    c = zlib.compressobj(9)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    n, tail_rows = divmod(h, rows)
    adler = 1
    for _ in range(n):
        adler = zlib.adler32(block, adler)
    tail = c.compress(block[: tail_rows * (row + 1)]) + c.flush()
    adler = zlib.adler32(block[: tail_rows * (row + 1)], adler)
    stream = first + again * (n - 1) + tail[:-4] + struct.pack(">I", adler)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6 if rgba else 0, 0, 0, 0))
            + _chunk(b"IDAT", stream) + _chunk(b"IEND", b""))


def gif_header(w: int, h: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"," + struct.pack("<HHHHB", 0, 0, w, h, 0)
            + b"\x08\x02\x4c\x01\x00;")


def bmp_header(w: int, h: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 54) + info + bytes(64)


def jpeg_header(w: int, h: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x00\x03\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + bytes(64) + b"\xff\xd9"


def tiff_header(w: int, h: int) -> bytes:
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 122),
            (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 64)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(64)


def webp_header(w: int, h: int) -> bytes:
    vp8x = bytes(4) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", 10) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


HEADERS = {"png": png_header, "gif": gif_header, "bmp": bmp_header, "jpg": jpeg_header, "tif": tiff_header,
           "webp": webp_header}
MOST_SIDE = {"gif": 65535, "jpg": 65535, "webp": 16384}  # what each header can declare


def ora(path: Path, layers: dict[str, bytes], w: int = 512, h: int = 512) -> Path:
    """An OpenRaster file with stack.xml saying w x h and the given layer PNGs (lines, colour)."""
    stack = "".join(f'<layer name="{n}" src="data/{n}.png" x="0" y="0"/>' for n in layers)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "image/openraster", compress_type=zipfile.ZIP_STORED)
        z.writestr("stack.xml", f'<image version="0.0.5" w="{w}" h="{h}"><stack>{stack}</stack></image>')
        for name, data in layers.items():
            z.writestr(f"data/{name}.png", data, zipfile.ZIP_STORED)
    return path


def ora_zip_bomb(path: Path, member_bytes: int = 2**30) -> Path:
    """An OpenRaster file whose lines layer deflates from about 1 MB to member_bytes, written streaming."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "image/openraster", compress_type=zipfile.ZIP_STORED)
        z.writestr("stack.xml", '<image w="512" h="512"><stack><layer name="lines" src="data/lines.png"/>'
                   '<layer name="colour" src="data/colour.png"/></stack></image>')
        z.writestr("data/colour.png", png_header(512, 512))
        zeros = bytes(2**20)
        with z.open("data/lines.png", "w", force_zip64=True) as f:
            f.write(png_header(512, 512))
            for _ in range(member_bytes >> 20):
                f.write(zeros)
    return path


def peak_run(argv: list[str], timeout: float = 120) -> tuple[int, str, str, float]:
    """`python main.py ARGV` in a child: (exit code, stdout, stderr, its peak resident MB), measured by a wrapper
    process's RUSAGE_CHILDREN, so nothing else this test run started counts."""
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout)
    *err, peak = r.stderr.rstrip("\n").split("\n")
    return r.returncode, r.stdout, "\n".join(err), int(peak) / 1024


def own_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def huge_video(path: Path, w: int = 9000, h: int = 8000) -> Path:
    """A one-frame MJPEG AVI of w x h (a flat picture: a few hundred KB on disk), encoded in a child process so
    its frame never counts in this process's memory."""
    code = ("import av, sys; w, h = int(sys.argv[2]), int(sys.argv[3]); box = av.open(sys.argv[1], 'w'); "
            "s = box.add_stream('mjpeg', rate=25); s.width, s.height, s.pix_fmt = w, h, 'yuvj420p'; "
            "s.options = {'qscale': '31'}; f = av.VideoFrame(w, h, 'yuvj420p'); "
            "[p.update(bytes(p.buffer_size)) for p in f.planes]; "
            "[box.mux(p) for p in s.encode(f)]; [box.mux(p) for p in s.encode()]; box.close()")
    subprocess.run([sys.executable, "-c", code, str(path), str(w), str(h)], check=True, timeout=120)
    return path
