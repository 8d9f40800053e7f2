"""One table of bounded values (models.bounds): the commands' options, the window's widgets, OSC's checks,
MIDI's ranges, the schedule and the session all take exactly what the table says."""

from __future__ import annotations

import argparse

import pytest

from app.cli.options import OPTION_BOUNDS, add_bounded, check_bounded
from app.live.osc import CHECKS, LORA
from app.live.session import BOUNDED, Session
from models.bounds import BOUNDS, SEED_MODULUS, Bound, check_seed
from models.errors import UserError


def edges(b: Bound) -> tuple[list[float], list[float]]:
    """Values just inside and just outside a ranged bound."""
    step = b.multiple if b.whole else 10 ** -b.decimals
    return [b.low, b.high], [b.low - step, b.high + step]


RANGED = [b for b in BOUNDS.values() if b.low is not None]


def test_the_table_is_torch_and_qt_free():
    import subprocess
    import sys

    code = "import sys, models.bounds, models.options, app.live.session, app.live.osc; " \
           "print(sorted(m for m in ('torch', 'PySide6', 'diffusers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("b", RANGED, ids=lambda b: b.name)
def test_each_bound_checks_its_own_range(b):
    inside, outside = edges(b)
    for v in inside:
        assert b.check(v) == v
    for v in outside:
        with pytest.raises(UserError, match=f"{v:g}"):
            b.check(v)
    assert b.default is None or b.contains(b.default)


def test_a_seed_is_any_whole_number():
    b = BOUNDS["seed"]
    for v in (0, -1, 2**31, 2**64, 2**200 + 9, -(2**70)):
        assert b.check(v) == v % SEED_MODULUS
    for v in (1.5, "x", True, float("inf"), None):
        with pytest.raises(UserError):
            check_seed(v)


@pytest.mark.parametrize("flag", list(OPTION_BOUNDS))
def test_every_bounded_option_takes_the_table(flag):
    b = BOUNDS[OPTION_BOUNDS[flag]]
    p = argparse.ArgumentParser()
    add_bounded(p, flag, "help")
    action = next(a for a in p._actions if flag in a.option_strings)
    assert action.type is (int if b.whole else float) and action.default == b.default
    assert b.range_text() in action.help
    if b.low is None:
        args = p.parse_args([flag, str(-(2**70) - 1)])
        check_bounded(args)
        assert getattr(args, action.dest) == (-(2**70) - 1) % SEED_MODULUS
        return
    inside, outside = edges(b)
    for v in inside:
        check_bounded(p.parse_args([flag, f"{v:g}"]))
    for v in outside:
        with pytest.raises(UserError, match=flag.lstrip("-")):
            check_bounded(p.parse_args([flag, f"{v:g}"]))


def _osc_check(name: str):
    if name == "lora_weight":
        return LORA
    return CHECKS.get(name)


@pytest.mark.parametrize("b", [b for b in RANGED if _osc_check(b.name)], ids=lambda b: b.name)
def test_osc_checks_take_the_table(b):
    wants, check = _osc_check(b.name)
    assert b.range_text() in wants
    inside, outside = edges(b)
    for v in inside:
        assert check((float(v),)) == v
    for v in outside:
        assert check((float(v),)) is None
    assert CHECKS["seed"][1]((-1,)) == SEED_MODULUS - 1 and CHECKS["seed"][1]((2.5,)) is None


@pytest.mark.parametrize("field", list(BOUNDED))
def test_the_session_checks_every_bounded_field_with_the_table(field):
    b = BOUNDS[BOUNDED[field]]
    s = Session()
    if b.low is None:
        s.set({field: -5})
        assert s.get(field) == SEED_MODULUS - 5
        return
    inside, outside = edges(b)
    for v in inside:
        s.set({field: v})
        assert s.get(field) == v
    for v in outside:
        with pytest.raises(UserError):
            s.set({field: v})


def test_the_window_widgets_take_the_table(qtbot):
    """Every bound widget's range is the table's (a slider in steps of 10**-decimals), and the seed box holds
    any whole number."""
    from app.ui.panel.panel import ControlPanel
    from app.ui.session.bindings import SessionBridge

    panel = ControlPanel(SessionBridge(Session()))
    qtbot.addWidget(panel)
    for widget, name in ((panel.strength, "strength"), (panel.transition, "transition"), (panel.low, "canny_low"),
                         (panel.high, "canny_high"), (panel.sigma, "sigma"), (panel.keep_strength, "keep_colours")):
        b = BOUNDS[name]
        scale = 1 if widget is panel.transition else b.scale
        assert (widget.minimum(), widget.maximum()) == (round(b.low * scale), round(b.high * scale)), name
    assert panel.size.lineEdit().validator().top() == BOUNDS["size"].high
    panel.seed.setValue(2**64 + 12)
    assert panel.session.live.seed == 12
    panel.seed.lineEdit().setText(str(-3))
    panel.seed.editingFinished.emit()
    assert panel.session.live.seed == SEED_MODULUS - 3 and panel.seed.text() == str(SEED_MODULUS - 3)


def test_midi_and_the_schedule_take_the_table():
    from app.live.schedule import WEIGHT, parse_schedule

    assert WEIGHT is BOUNDS["lora_weight"]
    b = BOUNDS["lora_weight"]
    parse_schedule(f"0 x lora=a:{b.high:g}")
    with pytest.raises(UserError, match=f"between {b.low:g} and {b.high:g}"):
        parse_schedule(f"0 x lora=a:{b.high + 0.01:g}")
    for name in ("strength", "transition", "keep_colours", "lora_weight", "adapter_strength"):
        bound = BOUNDS[name]
        assert bound.on_range(0.0) == bound.low and bound.on_range(1.0) == bound.high
