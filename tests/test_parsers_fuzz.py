"""Every parser of user text, fed anything (hypothesis): it gives a value or the one-line UserError, never another
exception. And config files of the wrong shape, fed to the model loader: one line naming the file.

Bounded: at most 200 examples a parser, no deadline (the machine is shared and noisy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models.errors import UserError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# text as users and files give it: anything unicode (lone surrogates too: argv keeps undecodable bytes as those),
# and text built from the parsers' own words and separators, so examples reach past the first check
WORDS = ["camera", "video", "image", "screen", "sketch", "seed", "lora", "cuda", "cpu", "auto", "on", "off", "smooth",
         "tiles", "blend", "0", "1", "7", "-1", "1e999", "nan", "inf", "0x10", "²", "٣", "1_000", "~", "~nobody", "/", ".",
         "..", "\x00", " ", "\t", "\n", "#", "127.0.0.1", "[::1]", "0.0.0.0", "localhost", "99999", "65536", "abc", "é"]
SEPS = [":", "@", ",", "=", " ", "/", "x", "."]
ANY_TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)),  # argv's undecodable bytes
    st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(SEPS), st.integers(-2**70, 2**70).map(str)),
             max_size=8).map("".join),
)


def value_or_user_error(fn, *args):
    try:
        return fn(*args)
    except UserError as e:
        assert str(e) and "\n" not in str(e).strip(), repr(str(e))  # one line
        return None


@FUZZ
@given(st.one_of(st.integers(-2**80, 2**80), st.booleans(), st.none(), st.floats(), ANY_TEXT))
def test_size(value):
    from models.options import MAX_SIZE, check_size

    got = value_or_user_error(check_size, value)
    assert got is None or (isinstance(got, int) and 64 <= got <= MAX_SIZE and got % 8 == 0)


@FUZZ
@given(st.one_of(st.integers(-2**200, 2**200), st.booleans(), st.floats(), ANY_TEXT))
def test_seed(value):
    """Any whole number a user can type (an int, a whole float as OSC senders send, text holding one) is a seed
    torch takes, taken modulo 2**64; anything else is one line."""
    import math

    import torch

    from models.options import check_seed

    got = value_or_user_error(check_seed, value)
    whole = None
    if isinstance(value, int) and not isinstance(value, bool):
        whole = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        whole = int(value)
    elif isinstance(value, str):
        try:
            whole = int(value.strip())
        except ValueError:
            pass
    if whole is not None:
        assert got == whole % 2**64
        torch.Generator().manual_seed(got)  # in torch's range
    else:
        assert got is None


@FUZZ
@given(ANY_TEXT)
def test_device_dtype_and_text(text):
    from models.options import DEVICES, DTYPES, check_device, check_dtype, check_text

    assert value_or_user_error(check_device, text) in (None, text)
    assert value_or_user_error(check_dtype, text) in (None, *DTYPES)
    if text in DEVICES:
        assert check_device(text) == text
    got = value_or_user_error(check_text, text, "--prompt")
    assert got == text or got is None


@FUZZ
@given(ANY_TEXT, st.sampled_from([None, "sketch", "camera", "video", "image"]))
@example("camera:²", None)
@example("²", None)
@example("video:a\x00b.mp4", None)
@example("~nosuchuser/clip.mp4", None)
@example("screen:²@0,0,64,64", None)
def test_source_specs(text, default_kind):
    from app.live.source_spec import parse_source

    got = value_or_user_error(parse_source, text, default_kind)
    if got is not None and got.kind == "camera":
        assert got.index == int(got.target)


@FUZZ
@given(st.one_of(ANY_TEXT, st.lists(st.sampled_from(["screen", ":", "@", ",", "1", "-8", "0", "64", "x", "9" * 30]),
                                     max_size=10).map("".join)))
def test_screen_specs(text):
    from app.live.source_spec import parse_screen

    value_or_user_error(parse_screen, text)


@FUZZ
@given(ANY_TEXT)
@example("X:abc")
@example("~nosuchuser/x.safetensors:abc")
@example("a\x00b:abc")
@example(":0.5")
def test_lora_specs(text):
    import math

    from models.lora import MAX_WEIGHT, parse_lora_arg

    got = value_or_user_error(parse_lora_arg, text)
    if got is not None:
        spec, weight = got
        assert spec and math.isfinite(weight) and abs(weight) <= MAX_WEIGHT


@FUZZ
@given(ANY_TEXT, st.floats(0.0, 2.0))
@example("C:/adapters/sketch", 1.0)
@example("demo:2", 1.0)
@example("hub/adapter", 0.1 + 0.2)
def test_adapter_specs_read_back_as_written(text, strength):
    """parse_adapter_arg gives a (spec, strength) or the one-line error; adapter_arg writes a pair so that it
    reads back as the same pair (the one writer the panel, the command line and the saved settings use)."""
    from models.options import MAX_STRENGTH, adapter_arg, parse_adapter_arg

    got = value_or_user_error(parse_adapter_arg, text)
    if got is not None:
        spec, read = got
        assert spec and 0 <= read <= MAX_STRENGTH
        assert parse_adapter_arg(adapter_arg(spec, read)) == (spec, read)
    spec = text.strip() or "x"  # any spec, with any strength of the range, comes back as written
    assert parse_adapter_arg(adapter_arg(spec, strength)) == (spec, strength)


@FUZZ
@given(st.lists(st.one_of(ANY_TEXT, st.tuples(st.floats(allow_nan=True), ANY_TEXT).map(lambda t: f"{t[0]} {t[1]}"),
                          st.integers(-2**70, 2**70).map(lambda n: f"1 seed={n}")), max_size=5).map("\n".join))
def test_schedule_lines(text):
    from app.live.schedule import parse_schedule

    cues = value_or_user_error(parse_schedule, text, "s.txt")
    for cue in cues or []:
        assert cue.seconds >= 0 and (cue.seed is None or 0 <= cue.seed < 2**64)


@FUZZ
@given(ANY_TEXT)
def test_steady_specs(text):
    from app.live.steady import parse_steady

    value_or_user_error(parse_steady, text)


@FUZZ
@given(ANY_TEXT)
@example("¹")
@example("[::1]:²")
def test_serve_addresses_and_tokens(text):
    from app.live.serve import check_token, parse_address

    got = value_or_user_error(parse_address, text)
    if got is not None:
        host, port = got
        assert isinstance(host, str) and 0 <= port <= 65535
    value_or_user_error(check_token, text)


# ---- config files of the wrong shape -------------------------------------------------------------------

JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                    max_leaves=6)
NOT_OBJECT = JSON.filter(lambda v: not isinstance(v, dict))
CLASS_NAMES = st.one_of(JSON, st.sampled_from(["", "logging", "utils", "__class__", "AutoencoderKL", "UNet2DConditionModel",
                                               "NoSuchScheduler", "EulerDiscreteScheduler"]))
CONFIGS = ["unet/config.json", "vae/config.json", "text_encoder/config.json", "scheduler/scheduler_config.json"]


@pytest.fixture(scope="module")
def broken_base(tiny_base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz") / "base"
    shutil.copytree(tiny_base, folder)
    return folder


def _load_quickly(folder: Path, rel: str, value) -> None:
    """Write `value` into one config file and check the shape checks (everything before any weights load)."""
    from models.loading import _class_name, read_config

    (folder / rel).write_text(json.dumps(value))
    read_config(folder / rel, "m")
    if rel.startswith(("vae", "scheduler")):
        _class_name(folder / rel, "m", ("AutoencoderTiny", "AutoencoderKL") if rel.startswith("vae") else None)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(CONFIGS), NOT_OBJECT)
def test_config_files_that_are_not_objects(broken_base, rel, value):
    original = (broken_base / rel).read_text()
    try:
        with pytest.raises(UserError, match=rel.split("/")[-1]):
            _load_quickly(broken_base, rel, value)
    finally:
        (broken_base / rel).write_text(original)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(CLASS_NAMES)
def test_scheduler_class_names_through_the_loader(broken_base, name):
    """The whole loader with any _class_name in scheduler_config.json: a model or one line naming the file."""
    from models.loading import load_base

    rel = "scheduler/scheduler_config.json"
    original = (broken_base / rel).read_text()
    data = json.loads(original)
    data["_class_name"] = name
    (broken_base / rel).write_text(json.dumps(data))
    try:
        base = value_or_user_error(load_base, str(broken_base))
        assert base is not None or name != "EulerDiscreteScheduler"
    finally:
        (broken_base / rel).write_text(original)
