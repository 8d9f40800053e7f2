"""The engine's adapters: a list of control adapters, each with its own name and live strength (0..2).

models.engine.Engine takes these methods from AdapterList. Each frame has one condition image per adapter in
the list's order; the recipe scales each adapter's residuals by its strength and sums them (diffusers'
multi-ControlNet). A strength is part of the engine's settings value and an input of the frame
(Engine.prepared), so moving one rebuilds nothing; adding or removing an adapter makes the recipe anew
(a new Recipe: the runners build again).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from models.errors import UserError
from models.loading import Adapter
from models.options import STRENGTH, check_strength
from models.recipe import Recipe, Settings


class AdapterList:
    """The adapter part of models.engine.Engine (it sets the attributes below in its __init__)."""

    adapters: list[Adapter]  # the control adapters in order
    adapters_from: Callable[..., list[Adapter]]  # (spec, dtype, progress) -> the adapters a spec stands for
    recipe: Recipe
    _chosen: Settings  # its strengths: each adapter's, in order
    _default_strength: float  # the strength set_adapter and use_adapter give

    def use_adapter(self, spec: str | None, progress=None) -> None:
        """Use only the adapters of this spec (hub id, folder, demo: the demo's adapters; None: none), loaded
        in this engine's dtype, each at control_scale."""
        adapters = self.adapters_from(spec, self.dtype, progress) if spec else []
        self.set_adapters(adapters, [self._default_strength] * len(adapters))

    def set_adapter(self, adapter: Adapter | None) -> None:
        """Use only this adapter (None: none) at control_scale."""
        self.set_adapters([adapter] if adapter is not None else [], [self._default_strength])

    def set_adapters(self, adapters: Sequence[Adapter], strengths: Sequence[float] = ()) -> None:
        """Use these adapters, in order (strengths: each one's, else control_scale); the recipe is made anew."""
        self.adapters, self._chosen = [], dataclasses.replace(self._chosen, strengths=())
        for i, adapter in enumerate(adapters):
            self._append(adapter, strengths[i] if i < len(strengths) else self._default_strength)
        self.recipe = self._recipe()

    def add_adapter(self, spec: str, strength: float = STRENGTH, progress=None) -> list[str]:
        """Load the adapters of a spec (models.loading.expand_adapter_spec: `demo` is two where the colour-hint
        one is built) after those loaded, each at this strength. Returns their names (unique in this engine)."""
        check_strength(float(strength), f"adapter {spec!r}: strength")
        names = [self._append(a, strength) for a in self.adapters_from(spec, self.dtype, progress)]
        self.recipe = self._recipe()
        return names

    def _append(self, adapter: Adapter, strength: float) -> str:
        base, n = adapter.name, 2
        while adapter.name in self.adapter_strengths:
            adapter.name, n = f"{base}-{n}", n + 1
        strength = float(check_strength(float(strength), f"adapter {adapter.name!r}: strength"))
        adapter.net = self._place(adapter.net)
        self.adapters.append(adapter)
        self._chosen = dataclasses.replace(self._chosen, strengths=(*self._chosen.strengths, strength))
        return adapter.name

    def remove_adapter(self, name: str) -> None:
        """Take an adapter out by name; the recipe is made anew (runners build again)."""
        i = self._index(name)
        strengths = self._chosen.strengths
        del self.adapters[i]
        self._chosen = dataclasses.replace(self._chosen, strengths=strengths[:i] + strengths[i + 1:])
        self.recipe = self._recipe()

    def set_adapter_strength(self, name: str, strength: float) -> None:
        """One adapter's strength, 0..2, from the next frame: a new input (a buffer fill on the fused and graphs
        runners, a graph input on OpenVINO); nothing is rebuilt."""
        i = self._index(name)
        strength = float(check_strength(float(strength), f"adapter {name!r}: strength"))
        strengths = list(self._chosen.strengths)
        strengths[i] = strength
        self._chosen = dataclasses.replace(self._chosen, strengths=tuple(strengths))

    def _index(self, name: str) -> int:
        for i, adapter in enumerate(self.adapters):
            if adapter.name == name:
                return i
        raise UserError(f"no adapter named {name!r} is loaded (loaded: {', '.join(self.adapter_strengths) or 'none'})")

    @property
    def control_scale(self) -> float:
        """The first adapter's strength (without adapters, the one set_adapter and use_adapter give)."""
        return self._chosen.strengths[0] if self.adapters else self._default_strength

    @control_scale.setter
    def control_scale(self, scale: float) -> None:
        """Every adapter's strength at once (and the one set_adapter and use_adapter give)."""
        self._default_strength = float(scale)
        self._chosen = dataclasses.replace(self._chosen, strengths=(float(scale),) * len(self.adapters))

    @property
    def adapter(self) -> Adapter | None:
        """The first adapter, or None (for callers that know one)."""
        return self.adapters[0] if self.adapters else None

    @property
    def controlnets(self) -> list:
        """The adapters' networks on this engine's device and dtype, in order."""
        return [a.net for a in self.adapters]

    @property
    def controlnet(self):
        """The first adapter's network on the device, or None."""
        return self.adapters[0].net if self.adapters else None

    @property
    def adapter_strengths(self) -> dict[str, float]:
        """name -> strength of each adapter, in order."""
        return {a.name: s for a, s in zip(self.adapters, self._chosen.strengths)}

    @property
    def adapter_specs(self) -> dict[str, str]:
        """name -> the spec each adapter was loaded by (demo-sketch, demo-colour for `demo`)."""
        return {a.name: a.spec for a in self.adapters}

    def frames(self, frame: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
        """One condition image per adapter: a single array serves every adapter; a list has one per adapter."""
        if isinstance(frame, np.ndarray):
            return [frame] * max(1, len(self.adapters))
        frames = list(frame)
        if len(frames) != max(1, len(self.adapters)):
            raise UserError(f"{len(frames)} condition images for {len(self.adapters)} adapters: pass one per adapter, "
                            "in the order they were loaded, or one for all")
        return frames

    def _scales(self, strengths: Sequence[float | None] | None) -> tuple[float, ...]:
        """This frame's strengths: the given ones where given (None keeps an adapter's own)."""
        own = self._chosen.strengths
        if strengths is None:
            return own
        if len(strengths) != len(self.adapters):
            raise UserError(f"{len(strengths)} strengths for {len(self.adapters)} adapters: pass one per adapter")
        return tuple(o if v is None else float(v) for o, v in zip(own, strengths))
