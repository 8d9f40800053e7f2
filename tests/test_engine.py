"""The engine against diffusers' own pipelines, on tiny SDXS-layout models loaded through our loader."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import main
from models.engine import Engine
from models.imageio import read_rgb, write_rgb
from models.loading import AdapterInfo, load_adapter
from models.recipe import OneStep

SIZE = 96


def reference(base, controlnet, image, prompt, seed, scale, size=SIZE, scheduler=None):
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, StableDiffusionPipeline

    kw = dict(num_inference_steps=1, guidance_scale=0, height=size, width=size, output_type="np",
              generator=torch.Generator("cpu").manual_seed(seed))
    if controlnet:
        cn = ControlNetModel.from_pretrained(controlnet)
        pipe = StableDiffusionControlNetPipeline.from_pretrained(base, controlnet=cn, safety_checker=None)
        kw.update(image=Image.fromarray(image), controlnet_conditioning_scale=scale)
    else:
        pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None)
    if scheduler is not None:
        pipe.scheduler = scheduler
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt, **kw).images[0]
    return (out * 255).round().astype(np.uint8)


def generate(tmp_path, base, controlnet, image, prompt, seed, scale, size=SIZE):
    """Run the real `generate` command and read its PNG back."""
    src = write_rgb(tmp_path / "in.png", image)
    out = tmp_path / "out.png"
    argv = ["generate", "--model", base, "--prompt", prompt, "--seed", str(seed),
            "--size", str(size), "--control-scale", str(scale), "--device", "cpu", "--dtype", "float32", "--out", str(out),
            "--overwrite"]
    if controlnet:
        argv[1:1] = ["--controlnet", controlnet, "--image", str(src)]
    assert main.main(argv) == 0
    return read_rgb(out)


def maxdiff(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def test_generate_equals_controlnet_pipeline(tmp_path, tiny_base, tiny_controlnet, sketch_image):
    image = np.array(Image.fromarray(sketch_image).resize((SIZE, SIZE)))
    ours = generate(tmp_path, tiny_base, tiny_controlnet, image, "a red fox", 7, 0.7)
    ref = reference(tiny_base, tiny_controlnet, image, "a red fox", 7, 0.7)
    assert ours.shape == ref.shape == (SIZE, SIZE, 3)
    assert maxdiff(ours, ref) <= 2
    # the comparison means something: seed, prompt and control image each move the image far more than 2/255
    assert maxdiff(ours, generate(tmp_path, tiny_base, tiny_controlnet, image, "a red fox", 8, 0.7)) > 40
    assert maxdiff(ours, generate(tmp_path, tiny_base, tiny_controlnet, 255 - image, "a red fox", 7, 0.7)) > 20
    assert maxdiff(ours, generate(tmp_path, tiny_base, tiny_controlnet, image, "a blue boat", 7, 0.7)) > 20


def test_generate_equals_text_pipeline(tmp_path, tiny_base, sketch_image):
    ours = generate(tmp_path, tiny_base, None, sketch_image, "a castle", 3, 0.8, size=64)
    ref = reference(tiny_base, None, None, "a castle", 3, 0.8, size=64)
    assert maxdiff(ours, ref) <= 2 and ours.std() > 10


def test_other_one_step_schedulers_match_diffusers(tiny_base, tiny_controlnet, sketch_image):
    """The single step is read off the checkpoint's scheduler, so DDPM or LCM checkpoints work too."""
    from diffusers import DDPMScheduler, EulerDiscreteScheduler, LCMScheduler

    euler = EulerDiscreteScheduler.from_pretrained(tiny_base, subfolder="scheduler")
    ab = float(euler.alphas_cumprod[999])
    step = OneStep.from_scheduler(euler)
    assert int(step.timestep) == 999
    assert step.k_in == pytest.approx((1 - ab) ** 0.5, rel=1e-4)  # UNet input = sqrt(1 - alpha_bar) * noise
    assert step.a == pytest.approx(((1 - ab) / ab) ** 0.5, rel=1e-4)
    image = np.array(Image.fromarray(sketch_image).resize((64, 64)))
    engine = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32")
    engine.set_size(64)
    engine.set_seed(5)
    engine.set_prompt("a tree")
    engine.control_scale = 0.9
    for cls in (DDPMScheduler, LCMScheduler):
        sched = cls.from_config(euler.config, timestep_spacing="trailing", clip_sample=False)
        engine.set_scheduler(sched)
        ref = reference(tiny_base, tiny_controlnet, image, "a tree", 5, 0.9, size=64, scheduler=sched)
        assert maxdiff(engine.step(image), ref) <= 2, cls.__name__


def test_step_contract(engine, sketch_image):
    out = engine.step(sketch_image)
    assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
    assert np.array_equal(out, engine.step(sketch_image)), "same seed, same input: same image"
    wide = np.full((90, 160, 3), 255, np.uint8)  # a camera frame: centre-cropped, resized
    assert engine.step(wide).shape == (64, 64, 3)
    engine.set_size(72)
    assert engine.step(sketch_image).shape == (72, 72, 3)
    engine.set_size(64)
    t = engine.timings
    assert t.total > 0


def test_control_scale_zero_is_the_base_model(engine, sketch_image):
    engine.control_scale = 0.0
    zero = engine.step(sketch_image)
    adapter = engine.adapter
    engine.set_adapter(None)
    try:
        assert np.array_equal(zero, engine.step(sketch_image))
    finally:
        engine.set_adapter(adapter)
        engine.control_scale = 0.8
    assert maxdiff(zero, engine.step(sketch_image)) > 10


def test_polarity_is_per_adapter(tmp_path, tiny_controlnet, engine, sketch_image):
    flipped = tmp_path / "flipped"
    shutil.copytree(tiny_controlnet, flipped)
    AdapterInfo(polarity="white_on_black").write(flipped)
    normal = engine.adapter
    expected = engine.step(255 - sketch_image)  # what the adapter sees when fed white strokes directly
    engine.set_adapter(load_adapter(str(flipped)))
    try:
        assert engine.adapter.info.polarity == "white_on_black"
        assert maxdiff(engine.step(sketch_image), expected) <= 1
    finally:
        engine.set_adapter(normal)


def test_pickle_adapter_is_read_weights_only(tmp_path, tiny_controlnet, engine, sketch_image):
    """The released sketch ControlNet ships diffusion_pytorch_model.bin: it loads, without running code."""
    from diffusers import ControlNetModel

    ControlNetModel.from_pretrained(tiny_controlnet).save_pretrained(tmp_path / "bin", safe_serialization=False)
    assert (tmp_path / "bin" / "diffusion_pytorch_model.bin").exists()
    normal = engine.adapter
    expected = engine.step(sketch_image)
    engine.set_adapter(load_adapter(str(tmp_path / "bin")))
    try:
        assert np.array_equal(engine.step(sketch_image), expected)
    finally:
        engine.set_adapter(normal)


def test_bfloat16_runs_close_to_float32(tiny_base, tiny_controlnet, engine, sketch_image):
    ref = engine.step(sketch_image)
    bf = Engine.load(tiny_base, tiny_controlnet, "cpu", "bfloat16")
    bf.set_size(64)
    bf.set_prompt("a cat")
    out = bf.step(sketch_image)
    assert bf.unet.dtype == torch.bfloat16
    assert np.abs(out.astype(int) - ref).mean() < 12


def test_adapter_json_round_trip(tmp_path):
    info = AdapterInfo(condition="canny", polarity="white_on_black", resolution=256, base_model="demo", extra={"steps": 5})
    info.write(tmp_path)
    assert json.loads((tmp_path / "adapter.json").read_text())["steps"] == 5
    assert AdapterInfo.read(tmp_path) == info


def test_transparent_png_reads_over_white_everywhere(tmp_path, tiny_base, tiny_controlnet, sketch_image):
    """A sketch saved with a transparent background means the same as on white paper: one reader for all."""
    import cv2

    from training.data import _read

    rgba = np.dstack([sketch_image, np.where(sketch_image[:, :, :1] < 128, 255, 0).astype(np.uint8)])
    rgba[rgba[:, :, 3] == 0, :3] = 0  # transparent pixels stored black, as many editors do
    path = tmp_path / "transparent.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    on_white = np.where(sketch_image < 128, sketch_image, 255).astype(np.uint8)
    assert np.array_equal(read_rgb(path), on_white) and np.array_equal(_read(path), on_white)
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), (cv2.cvtColor(sketch_image, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257))
    assert np.array_equal(read_rgb(deep), sketch_image)  # 16 bits per channel
    ours = generate(tmp_path, tiny_base, tiny_controlnet, read_rgb(path), "a cat", 1, 1.0, size=64)
    src = tmp_path / "out.png"
    argv = ["generate", "--model", tiny_base, "--controlnet", tiny_controlnet, "--image", str(path), "--prompt", "a cat",
            "--seed", "1", "--size", "64", "--control-scale", "1", "--device", "cpu", "--dtype", "float32", "--out", str(src),
            "--overwrite"]
    assert main.main(argv) == 0 and np.array_equal(read_rgb(src), ours)
