"""The engine's adapters: a list of control adapters, each with its own name and live strength (0..2).

models.engine.Engine takes these methods from AdapterList. Each frame has one condition image per adapter in
the list's order; the recipe scales each adapter's residuals by its strength and sums them (diffusers'
multi-ControlNet). A strength is an input of the frame (Engine.prepared), so moving one rebuilds nothing;
adding or removing an adapter makes the recipe anew (Engine._new_recipe), and the runners build again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.errors import UserError
from models.loading import Adapter, load_adapters
from models.options import STRENGTH, check_strength


class AdapterList:
    """The adapter part of models.engine.Engine (it sets the attributes below in its __init__)."""

    adapters: list[Adapter]  # the control adapters in order
    controlnets: list  # their networks on the engine's device and dtype, in the same order
    _strengths: dict[str, float]  # adapter name -> its strength
    _override: tuple[float, ...] | None  # this frame's strengths from step(strengths=...), if any
    _control_scale: float  # the strength set_adapter and use_adapter give
    revision: int

    def use_adapter(self, spec: str | None, progress=None) -> None:
        """Use only the adapters of this spec (hub id, folder, demo: the demo's adapters; None: none), loaded
        in this engine's dtype, each at control_scale."""
        adapters = load_adapters(spec, self.dtype, progress) if spec else []
        self.set_adapters(adapters, [self._control_scale] * len(adapters))

    def set_adapter(self, adapter: Adapter | None) -> None:
        """Use only this adapter (None: none) at control_scale."""
        self.set_adapters([adapter] if adapter is not None else [], [self._control_scale])

    def set_adapters(self, adapters: Sequence[Adapter], strengths: Sequence[float] = ()) -> None:
        """Use these adapters, in order (strengths: each one's, else control_scale); the recipe is made anew."""
        self.adapters, self.controlnets, self._strengths = [], [], {}
        for i, adapter in enumerate(adapters):
            self._append(adapter, strengths[i] if i < len(strengths) else self._control_scale)
        self._new_recipe()

    def add_adapter(self, spec: str, strength: float = STRENGTH, progress=None) -> list[str]:
        """Load the adapters of a spec (models.loading.expand_adapter_spec: `demo` is two where the colour-hint
        one is built) after those loaded, each at this strength. Returns their names (unique in this engine)."""
        check_strength(float(strength), f"adapter {spec!r}: strength")
        adapters = load_adapters(spec, self.dtype, progress)
        names = [self._append(a, strength) for a in adapters]
        self._new_recipe()
        return names

    def _append(self, adapter: Adapter, strength: float) -> str:
        base, n = adapter.name, 2
        while adapter.name in self._strengths:
            adapter.name, n = f"{base}-{n}", n + 1
        self.adapters.append(adapter)
        self.controlnets.append(self._place(adapter.net))
        self._strengths[adapter.name] = float(check_strength(float(strength), f"adapter {adapter.name!r}: strength"))
        return adapter.name

    def remove_adapter(self, name: str) -> None:
        """Take an adapter out by name; the recipe is made anew (runners build again)."""
        i = self._index(name)
        del self.adapters[i], self.controlnets[i], self._strengths[name]
        self._new_recipe()

    def set_adapter_strength(self, name: str, strength: float) -> None:
        """One adapter's strength, 0..2, from the next frame: a new input (a buffer fill on the fused and graphs
        runners, a graph input on OpenVINO); nothing is rebuilt."""
        self._index(name)
        strength = float(check_strength(float(strength), f"adapter {name!r}: strength"))
        if strength != self._strengths[name]:
            self._strengths[name] = strength
            self.revision += 1

    def _index(self, name: str) -> int:
        for i, adapter in enumerate(self.adapters):
            if adapter.name == name:
                return i
        raise UserError(f"no adapter named {name!r} is loaded (loaded: {', '.join(self._strengths) or 'none'})")

    @property
    def adapter(self) -> Adapter | None:
        """The first adapter, or None (for callers that know one)."""
        return self.adapters[0] if self.adapters else None

    @property
    def controlnet(self):
        """The first adapter's network on the device, or None."""
        return self.controlnets[0] if self.controlnets else None

    @property
    def adapter_strengths(self) -> dict[str, float]:
        """name -> strength of each adapter, in order."""
        return dict(self._strengths)

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

    def _set_override(self, strengths: Sequence[float | None] | None) -> None:
        """This frame's strengths where given (None keeps an adapter's own); a change is a new input, no rebuild."""
        if strengths is None or all(v is None for v in strengths):
            scales = None
        else:
            if len(strengths) != len(self.adapters):
                raise UserError(f"{len(strengths)} strengths for {len(self.adapters)} adapters: pass one per adapter")
            scales = tuple(float(self._strengths[a.name] if v is None else v) for a, v in zip(self.adapters, strengths))
        if scales != self._override:
            self._override = scales
            self.revision += 1

