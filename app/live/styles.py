"""The window's styles without Qt: which LoRAs an engine holds, adding one, re-adding the remembered ones
after a model load, and the user's own presets (a prompt template with LoRAs at their weights) as JSON.

LiveSettings.loras names each LoRA by its spec as given (a hub id, a folder, a file): that is what the
window remembers, since the short name the engine makes from it can differ from one load to the next.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from app.live.settings import PRESET_LORAS, PRESETS, LiveSettings
from models.errors import UserError, first_line

if TYPE_CHECKING:
    from models.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A named style: a prompt template and the LoRAs it loads."""

    name: str  # shown in the Style box (the user's own after the built-in ones)
    template: str  # the prompt template; {prompt} is what the user typed
    loras: dict[str, float] = field(default_factory=dict)  # LoRA spec -> weight


def builtin(name: str) -> Preset:
    return Preset(name=name, template=PRESETS[name], loras=dict(PRESET_LORAS.get(name, {})))


def read_presets(text: str) -> list[Preset]:
    """The user's presets from their JSON list; a damaged entry is skipped (logged), never fatal."""
    try:
        items = json.loads(text) if text else []
    except ValueError:
        log.warning("the saved presets are no JSON list; starting without them")
        return []
    presets = []
    for item in items if isinstance(items, list) else []:
        try:
            loras = {str(k): float(v) for k, v in dict(item.get("loras") or {}).items()}
            presets.append(Preset(name=str(item["name"]), template=str(item["template"]), loras=loras))
        except (AttributeError, KeyError, TypeError, ValueError):
            log.warning("skipping a damaged saved preset: %r", item)
    return presets


def write_presets(presets: list[Preset]) -> str:
    return json.dumps([asdict(p) for p in presets])


def check_preset_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise UserError("a preset needs a name")
    if name in PRESETS:
        raise UserError(f"preset name {name!r} is a built-in style: choose another name")
    return name


def loaded(engine: Engine) -> list[tuple[str, str, float]]:
    """(name, spec, weight) of each LoRA the engine holds, in the order they were added."""
    weights = engine.lora_weights
    return [(name, spec, weights[name]) for name, spec in engine.lora_specs.items()]


def only_loaded(engine: Engine, settings: LiveSettings) -> LiveSettings:
    """The settings with only the LoRAs the engine holds (a row can still be loading, or be left from a
    model it did not fit): the live loop raises for a LoRA it does not know."""
    specs = {spec for _, spec, _ in loaded(engine)}
    keep = {k: v for k, v in settings.loras.items() if k in specs}
    return settings if keep == settings.loras else replace(settings, loras=keep)


def add(engine: Engine, spec: str, weight: float, progress: Any = None) -> str:
    """Load one LoRA into the engine (models.lora): its name, or a UserError saying why not."""
    spec = spec.strip()
    if not spec:
        raise UserError("no LoRA given: choose a .safetensors file or a folder, or type a hub id like IDKiro/sdxs-512-dreamshaper-anime")
    if spec in {s for _, s, _ in loaded(engine)}:
        raise UserError(f"LoRA {spec!r} is already loaded: move its slider")
    return engine.add_lora(spec, weight, progress=progress)


def restore(engine: Engine, wanted: dict[str, float], progress: Any = None,
            busy: Callable[[str], None] = lambda text: None) -> tuple[dict[str, float], str]:
    """Add the remembered LoRAs to a newly loaded engine: (those that loaded, spec -> weight; one line
    naming those that did not, "" when all did)."""
    kept, lost = {}, []
    for spec, weight in wanted.items():
        busy(f"Loading LoRA {spec}...")
        try:
            add(engine, spec, weight, progress)
            kept[spec] = weight
        except UserError as e:
            lost.append(str(e))
        except Exception as e:  # a broken file must not stop the model from running
            lost.append(f"LoRA {spec!r}: {type(e).__name__}: {first_line(e)}")
    message = ("Dropped from Styles: " + "; ".join(lost)) if lost else ""
    return kept, message
