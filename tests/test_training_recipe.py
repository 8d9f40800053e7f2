"""The trainer runs the engine's recipe (training.objective calls models.recipe.Recipe.predict, the call every
runner runs): with a trained, non-zero adapter and a frozen companion, on a batch, the trainer's x0 and
decoded picture are the engine's for the same noise, prompt and condition."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from models.conditions import fit_square
from models.engine import Engine
from models.loading import Adapter, AdapterInfo, load_base
from models.tiny import build_controlnet
from training.objective import LossWeights, Objective

SIZE, PROMPT = 64, "a lighthouse"


@pytest.fixture(scope="module")
def parts(tiny_base):
    """A trained-like adapter (random, non-zero output convolutions) and a frozen companion at 0.6."""
    base = load_base(tiny_base, torch.float32)
    return base, build_controlnet(base.unet, seed=7).eval(), build_controlnet(base.unet, seed=8).eval()


def engine_with(tiny_base, nets, strengths, polarity="black_on_white"):
    e = Engine(load_base(tiny_base, torch.float32), "cpu", "float32")
    infos = [AdapterInfo(polarity=polarity)] + [AdapterInfo()] * (len(nets) - 1)
    e.set_adapters([Adapter(copy.deepcopy(n), i, e.base.path, f"a{k}") for k, (n, i) in enumerate(zip(nets, infos))],
                   strengths)
    e.set_size(SIZE)
    e.set_prompt(PROMPT)
    return e


def condition(image: np.ndarray) -> torch.Tensor:
    """What the training data gives: the image fitted, NCHW in [0, 1], in the adapter's polarity."""
    return torch.from_numpy(fit_square(image, SIZE)).permute(2, 0, 1)[None].float() / 255


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images + 1) * 127.5).clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


def noise_of(seed: int) -> torch.Tensor:
    return torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=torch.Generator("cpu").manual_seed(seed))


def test_the_trainers_x0_is_the_runners_with_a_trained_adapter_and_a_companion(tiny_base, parts, sketch_image):
    base, trained, companion = parts
    obj = Objective(base, LossWeights(), torch.device("cpu"), torch.float32, False, [(companion, 0.6)])
    frames = [sketch_image, np.roll(255 - sketch_image, 7, axis=0)]
    seeds = [3, 11]
    e = engine_with(tiny_base, [trained, companion], [1.0, 0.6])
    with torch.no_grad():  # one batch of two samples through the trainer
        noise = torch.cat([noise_of(s) for s in seeds])
        text = obj.encode_text([PROMPT] * 2)
        cond = torch.cat([condition(f) for f in frames])
        x0 = obj.predict_x0(trained, noise, text, cond, [cond.flip(0)])
        images = to_uint8(obj.decode(x0))
    for i, seed in enumerate(seeds):  # each sample, one frame through the engine's runner
        e.set_seed(seed)
        p = e.prepared()
        conds = torch.from_numpy(np.stack([fit_square(frames[i], SIZE), fit_square(frames[1 - i], SIZE)]))
        with torch.inference_mode():
            ours = e.recipe.x0(p.unet_in, p.embeds, p.x0_noise, conds, p.strengths, p.inverts)
        torch.testing.assert_close(x0[i:i + 1], ours, atol=2e-4, rtol=1e-4)
        out = e.step([frames[i], frames[1 - i]])
        assert np.abs(images[i].astype(int) - out).max() <= 1
    # the adapters matter: without them the picture is another one (so the test can fail)
    e.control_scale = 0.0
    assert np.abs(e.step([frames[1], frames[0]]).astype(int) - images[1]).max() > 20


def test_a_white_on_black_adapter_learns_on_its_own_polarity(tiny_base, parts, sketch_image):
    """The engine flips the canvas's black-on-white frame for such an adapter; the trainer's data is already
    white on black: the same x0."""
    base, trained, _ = parts
    obj = Objective(base, LossWeights(), torch.device("cpu"), torch.float32, False)
    e = engine_with(tiny_base, [trained], [1.0], polarity="white_on_black")
    e.set_seed(5)
    with torch.no_grad():
        x0 = obj.predict_x0(trained, noise_of(5), obj.encode_text([PROMPT]), 1 - condition(sketch_image))
        image = to_uint8(obj.decode(x0))[0]
    assert np.abs(image.astype(int) - e.step(sketch_image)).max() <= 1
