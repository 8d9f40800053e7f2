"""Data and tokenizer for the built-in demo model, all from packages that install offline.

- Pictures: Debian's `openclipart-svg` (public domain), rendered on white by training/demo/render_svgs.py (QtSvg runs
  in a subprocess: training/ never imports Qt). Captions come from each SVG's title and keywords.
- A fixed held-out split: a file belongs to it when the hash of its name says so, whatever the machine.
- Conditions: half from the trainer's own `sketch` extractor, half strokes the way a person draws them
  (contours of the picture traced at random widths with a little jitter), so canvas drawings work.
- Tokenizer: CLIP's real BPE vocabulary, read from the open-clip-torch wheel (never imported) and written as
  vocab.json + merges.txt for transformers' CLIPTokenizer (49408 tokens, SD1.5's ids).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import cv2
import numpy as np

from models.conditions import sketch
from models.errors import UserError
from models.tiny import bytes_to_unicode
from training.demo.colour import PALETTE, colour_caption, colour_share, colour_words, recolour

ROOT = Path(__file__).resolve().parents[2]  # the repository (training/demo/ is two levels down)
SVG_DIR = Path("/usr/share/openclipart/svg")
OPEN_CLIP_WHEEL = "open-clip-torch==3.3.0"
BPE_NAME = "open_clip/bpe_simple_vocab_16e6.txt.gz"
DC = "{http://purl.org/dc/elements/1.1/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
JUNK = {"clip art", "clipart", "image", "media", "svg", "png", "public domain", "externalsource", "unsorted", "remix",
        "openclipart", "ocal", "drawing", "illustration", "icon", "cartoon", "and", "the", "untitled", "sketch"}


def ensure_openclipart() -> Path:
    """The SVG folder, installing the Debian package when we are root with apt; else a one-line error."""
    if SVG_DIR.is_dir() and any(SVG_DIR.rglob("*.svg")):
        return SVG_DIR
    import os

    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update"], env=env, check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "openclipart-svg"], env=env, check=False, capture_output=True)
    if not SVG_DIR.is_dir():
        raise UserError(f"{SVG_DIR} is missing: run `apt-get install openclipart-svg` (as root), then rebuild")
    return SVG_DIR


def held_out(name: str, every: int = 20) -> bool:
    """About 1 in `every` files, fixed by the md5 of the file name."""
    return int(hashlib.md5(name.encode()).hexdigest()[:8], 16) % every == 0


def _clean(text: str) -> str:
    text = re.sub(r"[_\-]+", " ", text or "").lower()
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    text = re.sub(r"\b\d+\b", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def caption(svg: Path) -> str:
    """'title, keyword, keyword' from the SVG metadata, falling back to the file name and its folder."""
    title, words = "", []
    try:
        for _, el in ET.iterparse(svg, events=("end",)):
            if el.tag == f"{DC}title" and not title and el.text:
                title = _clean(el.text)
            elif el.tag == f"{RDF}li" and el.text:
                words.append(_clean(el.text))
            elif el.tag.endswith("metadata"):
                break
    except (ET.ParseError, OSError, UnicodeDecodeError):
        pass
    if not title or title in JUNK:
        title = _clean(re.sub(r"_?\d+$", "", svg.stem))
    parts = [title] + [w for w in words if w and w not in JUNK]
    parts.append(_clean(svg.parent.name))
    seen, out = set(), []
    for p in parts:
        if p and p not in seen:
            seen.add(p)
            out.append(p)
    return ", ".join(out[:7])


def render(out_dir: Path, size: int = 256, svg_dir: Path | None = None) -> list[dict]:
    """Render every SVG (of openclipart, or of svg_dir) to out_dir/renders and return [{name, caption,
    held_out}] for those that rendered."""
    svg_dir = svg_dir or ensure_openclipart()
    renders = out_dir / "renders"
    svgs = sorted(svg_dir.rglob("*.svg"))
    items = []
    for svg in svgs:
        rel = svg.relative_to(svg_dir).with_suffix("")
        items.append({"svg": str(svg), "name": "__".join(rel.parts) + ".png"})
    todo = [it for it in items if not (renders / it["name"]).exists()]
    if todo:
        lst = out_dir / "render_list.txt"
        out_dir.mkdir(parents=True, exist_ok=True)
        lst.write_text("".join(f"{it['svg']}\t{it['name']}\n" for it in todo))
        env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}
        res = subprocess.run([sys.executable, "-m", "training.demo.render_svgs", str(lst), str(renders), str(size)],
                             cwd=ROOT, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"rendering failed: {res.stderr.strip()[-500:]}")
        print(res.stdout.strip().splitlines()[-1])
    out = []
    for it in items:
        if (renders / it["name"]).exists():
            out.append({"name": it["name"], "caption": caption(Path(it["svg"])), "held_out": held_out(it["name"])})
    return out


def human_strokes(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Black strokes on white the way a person draws: outer and colour-edge contours, simplified, jittered,
    drawn as polylines around one random width (1..4 px at 256) that swells and thins along each stroke as a
    pen's pressure does, some small details dropped."""
    size = img.shape[0]
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    shape = (gray < 235).astype(np.uint8) * 255
    edges = cv2.Canny(cv2.GaussianBlur(img, (5, 5), 0), 60, 160)
    contours = list(cv2.findContours(shape, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0])
    contours += list(cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)[0])
    canvas = np.full((size, size, 3), 255, np.uint8)
    width = int(rng.integers(1, 5)) * size // 256 or 1
    eps = rng.uniform(0.8, 2.5) * size / 256
    jitter = rng.uniform(0.0, 1.5) * size / 256
    for c in contours:
        if cv2.arcLength(c, False) < rng.uniform(8, 30) * size / 256:  # people skip the tiny details
            continue
        pts = cv2.approxPolyDP(c, eps, False).reshape(-1, 2).astype(np.float32)
        pts = (pts + rng.normal(0, jitter, pts.shape).astype(np.float32)).round().astype(np.int32)
        for i in range(0, max(len(pts) - 1, 1), 4):  # a few segments at a time, each a little wider or thinner
            w = max(1, width + int(rng.integers(-1, 2)) * size // 256)
            cv2.polylines(canvas, [pts[i : i + 5]], False, (0, 0, 0), w, cv2.LINE_AA)
    return canvas


def make_condition(img: np.ndarray, name: str) -> np.ndarray:
    """One control image per picture, chosen and drawn deterministically from the file name."""
    rng = np.random.default_rng(int(hashlib.md5(("cond" + name).encode()).hexdigest()[:8], 16))
    if rng.random() < 0.5:
        return sketch(img)
    return human_strokes(img, rng)


def write_split(out_dir: Path, items: list[dict]) -> dict[str, int]:
    """train/ and heldout/ folders in the trainer's `paired` layout: images/, conditions/, metadata.jsonl."""
    counts = {}
    for split, want in (("train", False), ("heldout", True)):
        root = out_dir / split
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "conditions").mkdir(parents=True, exist_ok=True)
        rows = [it for it in items if it["held_out"] == want]
        for it in rows:
            src, dst, cond = out_dir / "renders" / it["name"], root / "images" / it["name"], root / "conditions" / it["name"]
            if not dst.exists():
                shutil.copyfile(src, dst)
            if not cond.exists():
                img = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
                cv2.imwrite(str(cond), cv2.cvtColor(make_condition(img, it["name"]), cv2.COLOR_RGB2BGR))
            (root / "images" / it["name"]).with_suffix(".txt").write_text(it["caption"] + "\n")
        with open(root / "metadata.jsonl", "w") as f:
            for it in rows:
                f.write(json.dumps({"file_name": it["name"], "text": it["caption"]}) + "\n")
        counts[split] = len(rows)
    return counts


# ---- tokenizer --------------------------------------------------------------------------------------


def pip_wheel(cache: Path, requirement: str) -> Path:
    """The wheel of `requirement` (name==version) in cache, downloaded with pip (no dependencies) when missing:
    data read out of a package's wheel without installing or importing it."""
    pattern = requirement.split("==")[0].replace("-", "_") + "-*.whl"
    wheels = sorted(cache.glob(pattern))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", requirement, "-d", str(cache)]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            raise UserError(f"could not download {requirement} with pip: connect to PyPI or put its wheel in {cache}")
        wheels = sorted(cache.glob(pattern))
    return wheels[-1]


def clip_bpe(cache: Path) -> bytes:
    """The gzipped CLIP BPE file, read out of the open-clip-torch wheel (downloaded with pip when missing)."""
    with zipfile.ZipFile(pip_wheel(cache, OPEN_CLIP_WHEEL)) as z:
        return z.read(BPE_NAME)


def write_tokenizer(folder: Path, cache: Path):
    """vocab.json + merges.txt built the way CLIP builds its vocabulary, then saved by CLIPTokenizer."""
    from transformers import CLIPTokenizer

    lines = gzip.decompress(clip_bpe(cache)).decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    raw = cache / "clip-bpe"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (raw / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tok = CLIPTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"), model_max_length=77, pad_token="<|endoftext|>")
    ids = tok("a photo of a cat").input_ids
    if len(tok) != 49408 or ids != [49406, 320, 1125, 539, 320, 2368, 49407]:
        raise RuntimeError(f"CLIP tokenizer conversion is wrong: {len(tok)} tokens, ids {ids}")
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(folder)
    # ship the two plain vocabulary files (1.5 MB) rather than tokenizer.json (3.6 MB): every reader takes them
    (folder / "tokenizer.json").unlink(missing_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(raw / name, folder / name)
    again = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    if len(again) != 49408 or again("a photo of a cat").input_ids != ids:
        raise RuntimeError(f"the saved tokenizer in {folder} does not reload the same")
    return again


def read_rows(folder: Path) -> list[dict]:
    """The rows of a paired folder's metadata.jsonl."""
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def colour_rows(split_dir: Path, min_share: float = 0.1) -> list[dict]:
    """The metadata rows of a paired folder whose picture is in colour (about a third of openclipart is
    black-and-white line art, which taught the first demo model to paint grey), each caption led by the
    picture's main colour names ("a red and green apple, fruit"; the collection's own captions seldom name
    colours) and the caption without them kept as "caption". Cached in colour.json."""
    rows = read_rows(split_dir)
    cache = split_dir / "colour.json"
    info = json.loads(cache.read_text()) if cache.exists() else {}
    if len(info) != len(rows) or not all(isinstance(v, dict) for v in info.values()):
        info = {}
        for r in rows:
            img = cv2.cvtColor(cv2.imread(str(split_dir / "images" / r["file_name"])), cv2.COLOR_BGR2RGB)
            info[r["file_name"]] = {"share": round(colour_share(img), 4), "words": colour_words(img)}
        cache.write_text(json.dumps(info))
    keep = [r for r in rows if info[r["file_name"]]["share"] >= min_share]
    return [dict(r, text=colour_caption(info[r["file_name"]]["words"], r["text"]), caption=r["text"]) for r in keep]


def write_subset(src: Path, dst: Path, rows: list[dict]) -> Path:
    """A paired folder holding only `rows` of src (copies; built beside dst, then renamed)."""
    if (dst / "metadata.jsonl").exists():
        return dst
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("images", "conditions"):
        (tmp / sub).mkdir(parents=True)
        for r in rows:
            shutil.copyfile(src / sub / r["file_name"], tmp / sub / r["file_name"])
    (tmp / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(dst)
    return dst


def write_crops(out_dir: Path, rows: list[dict], name: str = "adapter128", crop: int = 128, count: int = 4000,
                seed: int = 0, recoloured: float = 0.0) -> int:
    """A paired folder of `count` windows of `crop` px cut from the 256 px training pictures in `rows`
    and their conditions (several windows per picture where there are fewer pictures than windows).

    The adapter trains on these: the same pixel scale the engine runs at, for a quarter of the work per
    example. Windows are centred somewhere on the drawing, so few of them are blank paper. A share
    `recoloured` of them is cut from the picture recoloured to a random colour (training/demo/colour.py),
    captioned with its new colours, over the same condition: the drawing does not say which colour, the
    prompt does.
    """
    src, dst = out_dir / "train", out_dir / name
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "conditions").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(rows)) for _ in range(-(-count // len(rows)))])[:count]
    with open(tmp / "metadata.jsonl", "w") as meta:
        for n, i in enumerate(order):
            row = rows[i]
            img = cv2.imread(str(src / "images" / row["file_name"]))
            text = row["text"]
            if rng.random() < recoloured:
                rgb = recolour(img[..., ::-1], str(rng.choice(list(PALETTE))))
                img, text = np.ascontiguousarray(rgb[..., ::-1]), colour_caption(colour_words(rgb), row["caption"])
            cond = cv2.imread(str(src / "conditions" / row["file_name"]))
            ys, xs = np.nonzero(img.min(axis=2) < 235)
            size = img.shape[0]
            if len(ys):
                k = rng.integers(len(ys))
                cy, cx = ys[k], xs[k]
            else:
                cy = cx = size // 2
            y = int(np.clip(cy - crop // 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, size - crop))
            x = int(np.clip(cx - crop // 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, size - crop))
            out = f"{Path(row['file_name']).stem}_{n}.png"
            cv2.imwrite(str(tmp / "images" / out), img[y : y + crop, x : x + crop])
            cv2.imwrite(str(tmp / "conditions" / out), cond[y : y + crop, x : x + crop])
            meta.write(json.dumps({"file_name": out, "text": text}) + "\n")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.replace(dst)
    return len(order)
