"""LoRA styles: each format against diffusers' own pipeline with the same LoRA, the live weight, composition."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import main
from models.errors import UserError
from models.imageio import read_rgb, write_rgb
from models.options import STRENGTH  # generate runs at its default strength; diffusers gets the same
from tests.checks import one_line
from tests.tiny_lora import save_lora

SIZE = 64
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def loras(tiny_base, tmp_path_factory):
    """The same kind of tiny random LoRA in each format: a PEFT folder (UNet), a diffusers file and a kohya
    file (UNet + text encoder), and an SDXL-sized one that fits nothing here."""
    root = tmp_path_factory.mktemp("loras")
    paths = {fmt: str(save_lora(tiny_base, root / name, fmt, rank=4, seed=i))
             for i, (fmt, name) in enumerate((("peft", "peft"), ("diffusers", "diffusers/pytorch_lora_weights.safetensors"),
                                              ("kohya", "style_kohya.safetensors")))}
    paths["diffusers"] = str(root / "diffusers")
    key = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
    save_file({f"{key}.lora_down.weight": torch.zeros(4, 640), f"{key}.lora_up.weight": torch.zeros(640, 4),
               f"{key}.alpha": torch.tensor(4.0)}, root / "sdxl_style.safetensors")
    paths["sdxl"] = str(root / "sdxl_style.safetensors")
    return paths


def reference(base, controlnet, image, prompt, seed, loras):
    """diffusers' StableDiffusionControlNetPipeline with the LoRAs loaded by diffusers (a PEFT folder by peft)."""
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    pipe = StableDiffusionControlNetPipeline.from_pretrained(base, controlnet=ControlNetModel.from_pretrained(controlnet),
                                                             safety_checker=None)
    names, weights = [], []
    for i, (spec, weight) in enumerate(loras):
        if (p := __import__("pathlib").Path(spec)).is_dir() and (p / "adapter_config.json").exists():
            from peft import PeftModel

            model = PeftModel.from_pretrained(pipe.unet, spec)
            for m in model.modules():
                if hasattr(m, "set_scale") and "default" in getattr(m, "scaling", {}):
                    m.set_scale("default", weight)
            pipe.unet = model.merge_and_unload()
            continue
        kw = {"weight_name": p.name} if p.is_file() else {}
        pipe.load_lora_weights(str(p.parent if p.is_file() else p), adapter_name=f"l{i}", **kw)
        names.append(f"l{i}")
        weights.append(weight)
    if names:
        pipe.set_adapters(names, weights)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt, image=Image.fromarray(image), num_inference_steps=1, guidance_scale=0, height=SIZE, width=SIZE,
               controlnet_conditioning_scale=STRENGTH, output_type="np", generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return (out * 255).round().astype(np.uint8)


def generate(tmp_path, base, controlnet, image, loras, fast="eager"):
    src = write_rgb(tmp_path / "in.png", image)
    out = tmp_path / "out.png"
    argv = ["generate", "--model", base, "--controlnet", controlnet, "--image", str(src), "--prompt", "a red fox",
            "--seed", "3", "--size", str(SIZE), "--device", "cpu", "--dtype", "float32", "--fast", fast, "--out", str(out),
            "--overwrite"]
    for spec, weight in loras:
        argv += ["--lora", f"{spec}:{weight}"]
    assert main.main(argv) == 0
    return read_rgb(out)


def maxdiff(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.fixture()
def image(sketch_image):
    return np.array(Image.fromarray(sketch_image).resize((SIZE, SIZE)))


@pytest.mark.parametrize("kind", ["peft", "diffusers", "kohya"])
def test_each_format_equals_diffusers_and_changes_the_output(tmp_path, tiny_base, tiny_controlnet, image, loras, kind):
    plain = generate(tmp_path, tiny_base, tiny_controlnet, image, [])
    ours = generate(tmp_path, tiny_base, tiny_controlnet, image, [(loras[kind], 0.7)])
    ref = reference(tiny_base, tiny_controlnet, image, "a red fox", 3, [(loras[kind], 0.7)])
    assert maxdiff(ours, ref) <= 2
    assert maxdiff(ours, plain) > 10  # the LoRA does something


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_a_peft_folder_equals_the_anime_demos_way(tmp_path, tiny_base, tiny_controlnet, image, dropout):
    """A folder written by peft's own save_pretrained (rank 4, alpha 8, random B, the attention projections),
    applied as SDXS's anime demo applies its LoRA: PeftModel.from_pretrained on the pipeline's UNet, unmerged,
    at weight 1. With lora_dropout the engine once left peft's new layers in training mode (it calls eval()
    before they exist), so every frame dropped a random part of the LoRA's input: up to 43/255 between two
    frames of one sketch here; PeftModel.from_pretrained calls eval()."""
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, UNet2DConditionModel
    from peft import LoraConfig, PeftModel, get_peft_model

    from models.engine import Engine

    folder = tmp_path / "peft"
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, init_lora_weights=False,
                        target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    get_peft_model(UNet2DConditionModel.from_pretrained(tiny_base, subfolder="unet"), config).save_pretrained(folder)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(tiny_base, controlnet=ControlNetModel.from_pretrained(tiny_controlnet),
                                                             safety_checker=None)
    pipe.unet = PeftModel.from_pretrained(pipe.unet, str(folder))
    pipe.set_progress_bar_config(disable=True)
    ref = pipe("a red fox", image=Image.fromarray(image), num_inference_steps=1, guidance_scale=0, height=SIZE, width=SIZE,
               controlnet_conditioning_scale=STRENGTH, output_type="np", generator=torch.Generator("cpu").manual_seed(3)).images[0]
    ref = (ref * 255).round().astype(np.uint8)
    e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32", loras=[str(folder)])
    e.set_size(SIZE)
    e.set_prompt("a red fox")
    e.set_seed(3)
    first = e.step(image)
    e.set_seed(4)
    e.set_seed(3)
    assert maxdiff(e.step(image), first) == 0, "the same sketch and settings give the same picture"
    assert maxdiff(first, ref) <= 2

    def adapted(model):
        return sorted(n.removeprefix("base_model.model.") for n, m in model.named_modules() if hasattr(m, "lora_A") and m.lora_A)

    assert adapted(e.unet) == adapted(pipe.unet) and len(adapted(e.unet)) > 4  # the same layers, all of them
    assert not any(m.training for m in e.unet.modules())
    e.loras.enable(False)
    assert maxdiff(e.step(image), first) > 10  # the LoRA does something


def test_two_loras_compose_and_weight_zero_is_no_lora(tmp_path, tiny_base, tiny_controlnet, image, loras):
    both = [(loras["diffusers"], 0.5), (loras["kohya"], -0.8)]
    ours = generate(tmp_path, tiny_base, tiny_controlnet, image, both)
    assert maxdiff(ours, reference(tiny_base, tiny_controlnet, image, "a red fox", 3, both)) <= 2
    one = generate(tmp_path, tiny_base, tiny_controlnet, image, both[:1])
    assert maxdiff(ours, one) > 10
    plain = generate(tmp_path, tiny_base, tiny_controlnet, image, [])
    zero = generate(tmp_path, tiny_base, tiny_controlnet, image, [(loras["peft"], 0), (loras["kohya"], 0)])
    assert maxdiff(zero, plain) == 0


def test_live_weight_needs_no_rebuild(tiny_base, tiny_controlnet, image, loras, monkeypatch):
    """A new weight applies on the next frame of the fused fast path without a new runner or new buffers,
    and gives what an engine loaded at that weight gives (text-encoder layers included)."""
    from models.engine import Engine
    from models.runners.fused import FusedRunner

    builds = []
    real_alloc = FusedRunner._alloc
    monkeypatch.setattr(FusedRunner, "_alloc", lambda self, *a: (builds.append(a), real_alloc(self, *a))[1])
    e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32", loras=[f"{loras['diffusers']}:1.0"])
    e.set_size(SIZE)
    e.set_prompt("a red fox")
    e.set_fast("fused")
    path = e.runners[0]
    first = e.step(image)
    (name,) = e.lora_weights
    outs = {}
    for w in (0.2, 0.0, 1.0):
        e.set_lora_weight(name, w)
        outs[w] = e.step(image)
    assert e.runners[0] is path and len(builds) == 1
    assert maxdiff(outs[1.0], first) == 0 and maxdiff(outs[0.2], first) > 5
    fresh = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32", loras=[f"{loras['diffusers']}:0.2"])
    fresh.set_size(SIZE)
    fresh.set_prompt("a red fox")
    assert maxdiff(fresh.step(image), outs[0.2]) <= 1
    plain = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32")
    plain.set_size(SIZE)
    plain.set_prompt("a red fox")
    assert maxdiff(plain.step(image), outs[0.0]) == 0


def test_a_lora_for_another_model_is_one_line(tmp_path, tiny_base, tiny_controlnet, image, loras, capsys):
    from models.engine import Engine

    with pytest.raises(UserError, match="does not fit base model") as err:
        Engine.load(tiny_base, None, "cpu", "float32", loras=[loras["sdxl"]])
    assert "sdxl_style" in str(err.value) and tiny_base in str(err.value) and "\n" not in str(err.value)
    src = write_rgb(tmp_path / "in.png", image)
    shapes = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) if "lora_B" in k else v
              for k, v in load_file(f"{loras['diffusers']}/pytorch_lora_weights.safetensors").items()}
    save_file(shapes, tmp_path / "wrong_shapes.safetensors")
    for bad in ("missing.safetensors", "wrong_shapes.safetensors", loras["sdxl"]):
        code = main.main(["generate", "--model", tiny_base, "--controlnet", tiny_controlnet, "--image", str(src), "--device", "cpu", "--out",
                          str(tmp_path / "x.png"), "--lora", str(tmp_path / bad)])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and bad.rpartition("/")[2] in err, err
    assert not (tmp_path / "x.png").exists()


def test_layers_the_base_lacks_are_skipped_as_diffusers_does(tmp_path, tiny_base, tiny_controlnet, image, loras):
    """An SD 1.5 LoRA also adapts layers SDXS pruned: those are skipped (as diffusers skips them), the rest apply."""
    state = load_file(f"{loras['diffusers']}/pytorch_lora_weights.safetensors")
    extra = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    state |= {f"{extra}.lora_A.weight": torch.ones(4, 32), f"{extra}.lora_B.weight": torch.ones(32, 4)}
    save_file(state, tmp_path / "sd15_style.safetensors")
    spec = [(str(tmp_path / "sd15_style.safetensors"), 0.7)]
    ours = generate(tmp_path, tiny_base, tiny_controlnet, image, spec)
    assert maxdiff(ours, reference(tiny_base, tiny_controlnet, image, "a red fox", 3, spec)) <= 2
    assert maxdiff(ours, generate(tmp_path, tiny_base, tiny_controlnet, image, [(loras["diffusers"], 0.7)])) == 0


def test_lora_arguments_and_names(loras):
    from models.lora import locate, lora_name, parse_lora_arg

    assert parse_lora_arg("IDKiro/sdxs-512-dreamshaper-anime:0.6") == ("IDKiro/sdxs-512-dreamshaper-anime", 0.6)
    assert parse_lora_arg("C:/styles/x.safetensors") == ("C:/styles/x.safetensors", 1.0)
    assert lora_name("IDKiro/sdxs-512-dreamshaper-anime") == "sdxs_512_dreamshaper_anime"
    with pytest.raises(UserError, match="between"):
        parse_lora_arg("style:9")
    assert locate(loras["peft"]).kind == "peft"
    assert json.loads((locate(loras["peft"]).folder / "adapter_config.json").read_text())["r"] == 4
    with pytest.raises(UserError, match="not in the Hugging Face cache"):
        locate("nobody/no-such-lora")


def test_live_loop_sets_weights_from_its_settings(tiny_base, tiny_controlnet, image, loras):
    from app.live.loop import Frame, LiveLoop
    from app.live.settings import LiveSettings
    from models.engine import Engine

    e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32", loras=[loras["kohya"]])
    loop = LiveLoop(e, LiveSettings(prompt="a cat", seed=1, strength=0.8, size=SIZE, loras={"style_kohya": 0.0}))
    assert e.lora_weights == {"style_kohya": 0.0}
    off = loop.process(Frame(image, 0.0, True))
    loop.apply(LiveSettings(prompt="a cat", seed=1, strength=0.8, size=SIZE, loras={loras["kohya"]: 1.0}))  # by spec works too
    on = loop.process(Frame(image, 0.1, True))
    assert not on.reused and maxdiff(on.output, off.output) > 5 and e.lora_weights == {"style_kohya": 1.0}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_live_weight_keeps_the_cuda_graph(tiny_base, tiny_controlnet, image, loras, monkeypatch):
    """With CUDA graphs a weight change replays the same graph (no new capture) and follows the weight."""
    from models.engine import Engine
    from models.runners.fused import FusedRunner

    captures = []
    real = FusedRunner._capture
    monkeypatch.setattr(FusedRunner, "_capture", lambda self: (captures.append(1), real(self))[1])
    e = Engine.load(tiny_base, tiny_controlnet, "cuda", "float16", loras=[f"{loras['diffusers']}:1.0"])
    e.set_size(SIZE)
    e.set_fast("graphs")
    first = e.step(image)
    e.set_lora_weight("diffusers", 0.0)
    zero = e.step(image)
    e.set_fast("eager")
    ref = e.step(image)
    assert len(captures) == 1 and maxdiff(zero, first) > 5 and maxdiff(zero, ref) <= 2


def test_compiled_path_follows_the_live_weight(tiny_base, tiny_controlnet, image, loras):
    """torch.compile on a CPU freezes weights into constants; with LoRAs it must not freeze their weight."""
    from models.engine import Engine

    e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32", loras=[f"{loras['kohya']}:1.0"])
    e.set_size(SIZE)
    e.set_prompt("a cat")
    e.set_lora_weight("style_kohya", 0.3)
    ref = e.step(image)
    e.set_lora_weight("style_kohya", 1.0)
    assert e.set_fast("compile") == "compile"
    e.warm_up(image)
    e.set_lora_weight("style_kohya", 0.3)
    assert e.fast == "compile" and maxdiff(e.step(image), ref) <= 1


class _RunsCode:
    """A pickle that would run a command when unpickled by the unsafe loader."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_pickle_lora_is_read_weights_only(tmp_path, tiny_base, tiny_controlnet, image, loras):
    """A .bin LoRA loads its tensors like the .safetensors one; a .bin holding code is refused, never run."""
    from models.engine import Engine

    state = load_file(f"{loras['diffusers']}/pytorch_lora_weights.safetensors")
    torch.save(state, tmp_path / "style.bin")
    outs = []
    for spec in (f"{tmp_path / 'style.bin'}:0.6", f"{loras['diffusers']}:0.6"):
        e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32", loras=[spec])
        e.set_size(SIZE)
        outs.append(e.step(image))
    assert maxdiff(*outs) == 0
    marker = tmp_path / "ran"
    torch.save({**state, "unet.extra.lora_A.weight": _RunsCode(marker)}, tmp_path / "evil.bin")
    with pytest.raises(UserError, match="could not read LoRA") as err:
        Engine.load(tiny_base, None, "cpu", "float32", loras=[str(tmp_path / "evil.bin")])
    assert "\n" not in str(err.value) and not marker.exists()


def test_bench_reports_the_lora_cost(tmp_path, tiny_base, tiny_controlnet, loras, capsys):
    out = tmp_path / "bench.json"
    assert main.main(["bench", "--model", tiny_base, "--controlnet", tiny_controlnet, "--size", str(SIZE), "--frames", "2",
                      "--warmup", "1", "--device", "cpu", "--dtype", "float32", "--lora", f"{loras['kohya']}:0.5",
                      "--json", str(out)]) == 0
    lora = json.loads(out.read_text())["lora"]
    assert lora["loras"] == {loras["kohya"]: 0.5} and lora["frames_each"] == 6 and lora["flops_ratio"] > 1
    assert lora["cost_ms"] == pytest.approx(lora["frame_ms_with"] - lora["frame_ms_without"])
    assert "LoRA" in capsys.readouterr().out


def test_remove_takes_a_lora_out_and_keeps_the_others(tiny_base, tiny_controlnet, image, loras):
    """remove_lora (peft's delete_adapter per layer): the picture is that of an engine that never had it, also
    with a text-encoder LoRA and on the fused path; the other LoRA keeps its weight; the same spec loads again."""
    from models.engine import Engine

    def engine(*specs):
        e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32", loras=list(specs))
        e.set_size(SIZE)
        e.set_prompt("a red fox")
        return e

    only = engine(f"{loras['peft']}:0.6").step(image)
    plain = engine().step(image)
    e = engine(f"{loras['peft']}:0.6", f"{loras['kohya']}:0.9")
    e.set_fast("fused")
    both = e.step(image)
    e.remove_lora(loras["kohya"])  # by spec; it has text-encoder layers
    assert list(e.lora_weights) == ["peft"] and e.lora_weights["peft"] == 0.6
    assert maxdiff(e.step(image), only) <= 1 and maxdiff(both, only) > 5
    e.remove_lora("peft")
    assert e.lora_weights == {} and maxdiff(e.step(image), plain) == 0
    e.add_lora(loras["kohya"], 0.9)
    e.add_lora(loras["peft"], 0.6)
    assert maxdiff(e.step(image), both) <= 1
    with pytest.raises(UserError, match="no LoRA named"):
        e.remove_lora("nothing")


@pytest.mark.parametrize("kind", ["diffusers", "kohya"])
@pytest.mark.parametrize("poison", [float("nan"), float("inf"), float("-inf")])
def test_a_lora_with_nan_or_inf_values_is_one_line_not_a_black_picture(tmp_path, tiny_base, tiny_controlnet, image, loras,
                                                                        kind, poison, capsys):
    """Issue 32: a LoRA whose tensors hold NaN/inf gave an all-black picture and exit 0."""
    from safetensors.torch import load_file, save_file

    from models.imageio import write_rgb

    path = Path(loras[kind])
    state = load_file(path / "pytorch_lora_weights.safetensors" if path.is_dir() else path)
    keys = sorted(k for k in state if k.endswith(".weight"))
    for key in keys[:2]:
        state[key] = state[key].clone()
        state[key].view(-1)[:3] = poison
    bad = tmp_path / "poisoned.safetensors"
    save_file(state, str(bad))
    src = write_rgb(tmp_path / "in.png", image)
    code = main.main(["generate", "--model", tiny_base, "--controlnet", tiny_controlnet, "--image", str(src), "--device", "cpu",
                      "--size", str(SIZE), "--out", str(tmp_path / "x.png"), "--lora", str(bad)])
    what = "NaN" if poison != poison else "inf"
    one_line(code, capsys.readouterr().err, "poisoned.safetensors", "damaged", f"6 {what} values in 2 of its")
    assert not (tmp_path / "x.png").exists()
