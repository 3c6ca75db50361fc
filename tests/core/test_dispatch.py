"""Models dispatched by accelerate, some layers offloaded to disk, compute what undispatched ones do.

accelerate's disk offload keeps those layers' weights on the ``meta`` device and streams them in
through hooks at each forward, exactly as on a GPU machine where a model does not fit; on CPU the
arithmetic is the same, so every result must equal the undispatched model's bit for bit, and the
independent references (plain HF eager copy, edits by hand) as closely as the undispatched model
is checked elsewhere.
"""

import copy

import pytest
import torch

import fac_lens as fl
from fac_lens.errors import FacLensError
from fac_lens.lens_model import execution_device, main_device
from fac_lens.testing import BUILDERS, save_tiny_checkpoint, tiny_inputs
from tests.references import gated, reference_logits, reference_ratios, text_layers

pytest.importorskip("accelerate")

FAST = ("qwen2_5_vl", "gemma3", "kimi_k25")  # mRoPE, sliding windows, MLA; the rest run with -m slow
ARCHS = [pytest.param(a, marks=() if a in FAST else pytest.mark.slow) for a in sorted(BUILDERS)]


def offload_map(hf) -> dict[str, str]:
    """A complete accelerate device map: odd text layers and lm_head on disk, everything else on
    the CPU (entries never overlap). (Idefics3's vision tower cannot run from disk even in plain
    HF: its forward reads a weight outside the tower's hooks.)"""
    names = {id(module): name for name, module in hf.named_modules()}
    layers = text_layers(hf)
    on_disk = {names[id(layer)] for i, layer in enumerate(layers) if i % 2 == 1}
    on_disk.add("lm_head")

    def assign(module, prefix: str, out: dict[str, str]) -> None:
        if prefix in on_disk:
            out[prefix] = "disk"
        elif not any(name.startswith(prefix + ".") for name in on_disk) and prefix:
            out[prefix] = "cpu"
        else:
            for param_name, _ in module.named_parameters(recurse=False):  # e.g. LLaVA-NeXT's image_newline
                out[f"{prefix}.{param_name}"] = "cpu"
            for child_name, child in module.named_children():
                assign(child, f"{prefix}.{child_name}" if prefix else child_name, out)

    out: dict[str, str] = {}
    assign(hf, "", out)
    return out


def dispatched_pair(arch: str, tmp_path):
    """(undispatched LensModel, dispatched LensModel, plain-HF eager reference): same weights."""
    hf = BUILDERS[arch](seed=0, dtype=torch.float32)
    reference = copy.deepcopy(hf)
    reference.config.text_config._attn_implementation = "eager"
    reference.config.vision_config._attn_implementation = "eager"
    plain = fl.load(copy.deepcopy(hf))
    spread = fl.load(hf, device_map=offload_map(hf), offload_folder=tmp_path / "offload")
    return plain, spread, reference


def logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model.forward(inputs).logits


@pytest.mark.parametrize("arch_name", ARCHS)
def test_offloaded_model_equals_undispatched_model(arch_name, tmp_path):
    plain, spread, reference = dispatched_pair(arch_name, tmp_path)
    offloaded = [p for p in spread.hf.parameters() if p.device.type == "meta"]
    assert offloaded, "the map offloads some weights to disk"
    assert spread.device == torch.device("cpu")
    batch = tiny_inputs(plain.hf, batch=2, padded=True)

    ratios = fl.attention_ratios(spread, batch, progress=False)
    assert torch.equal(ratios.per_sample, fl.attention_ratios(plain, batch, progress=False).per_sample)
    expected = reference_ratios(reference, batch, "all").float()
    torch.testing.assert_close(ratios.per_sample, expected, atol=1e-5, rtol=0)

    torch.testing.assert_close(logits(spread, batch), logits(plain, batch), atol=0, rtol=0)
    gains = fl.Gains(
        0.5 + torch.rand(plain.n_layers, plain.n_heads, generator=torch.Generator().manual_seed(0))
    )
    with fl.rescale(spread, gains):
        static = logits(spread, batch)
    with fl.rescale(plain, gains):
        assert torch.equal(static, logits(plain, batch))
    with gated(reference, gains.values):
        hand = reference_logits(reference, batch)
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(static[mask], hand[mask], atol=1e-5, rtol=1e-5)

    median = float(ratios.visual.median())
    cfg = fl.FacConfig(l_perc=1, l_reas=1, tau_perc=median, tau_reas=median, g_perc=1.5, g_reas=0.6)
    with fl.rescale(spread, cfg) as spread_handle:
        dynamic = logits(spread, batch)
    with fl.rescale(plain, cfg) as plain_handle:
        assert torch.equal(dynamic, logits(plain, batch))
    assert torch.equal(spread_handle.pass_ratios[0], plain_handle.pass_ratios[0])

    for fac in (None, gains, cfg):
        got = fl.generate(spread, batch, 5, fac=fac).sequences
        assert torch.equal(got, fl.generate(plain, batch, 5, fac=fac).sequences)

    single = tiny_inputs(plain.hf, batch=1)
    span = dict(target=None, position=slice(-4, -1), progress=False)
    got = fl.contribution_map(spread, single, **span)
    assert torch.equal(got.per_token, fl.contribution_map(plain, single, **span).per_token)
    assert all(p.device.type == "meta" for p in offloaded), "offloaded weights stay offloaded"


def test_loading_a_checkpoint_with_a_device_map_offloads_and_matches(tmp_path):
    save_tiny_checkpoint(tmp_path / "ckpt")
    plain = fl.load(tmp_path / "ckpt")
    device_map = offload_map(plain.hf)
    spread = fl.load(tmp_path / "ckpt", device_map=device_map, offload_folder=tmp_path / "offload")
    assert spread.hf.hf_device_map == device_map
    assert any(p.device.type == "meta" for p in spread.hf.parameters())
    inputs = tiny_inputs(plain.hf, batch=1)
    assert torch.equal(logits(spread, inputs), logits(plain, inputs))
    again = fl.load(
        spread.hf.__class__.from_pretrained(
            tmp_path / "ckpt", device_map=device_map, offload_folder=str(tmp_path / "o2")
        )
    )
    assert again.hf.hf_device_map == device_map  # an existing dispatch is kept (no move to device)
    assert torch.equal(logits(again, inputs), logits(plain, inputs))


def test_dispatched_model_refuses_cast_and_second_dispatch(tmp_path):
    hf = BUILDERS["qwen2_5_vl"](seed=0)
    from accelerate import dispatch_model

    dispatch_model(hf, offload_map(hf), main_device="cpu", offload_dir=str(tmp_path))
    with pytest.raises(FacLensError, match="cannot be cast"):
        fl.load(hf, dtype=torch.bfloat16)
    with pytest.raises(FacLensError, match="already dispatched"):
        fl.load(hf, device_map="auto")
    assert not getattr(hf, "_fac_lens_bridged", False)


@pytest.mark.parametrize(
    "device_map, offload_folder, message",
    [
        ({"": "disk"}, None, "offload_folder"),
        ({"": "nowhere"}, None, "is not a device"),
        ("everywhere", None, "device_map="),
        ({}, None, "device_map="),
    ],
)
def test_bad_device_maps_are_refused_before_loading(device_map, offload_folder, message):
    hf = BUILDERS["llava"](seed=0)
    before = {k: v.clone() for k, v in hf.state_dict().items()}
    with pytest.raises(FacLensError, match=message):
        fl.load(hf, device_map=device_map, offload_folder=offload_folder)
    assert not hasattr(hf, "hf_device_map")
    assert all(torch.equal(before[k], v) for k, v in hf.state_dict().items())


def test_layer_devices_follow_accelerates_execution_rule():
    """Hand-written: accelerate runs CPU- and disk-offloaded modules on the main (first GPU) device."""
    device_map = {
        "model.embed": 0,
        "model.layers.0": 0,
        "model.layers.1": 1,
        "model.layers.2": "cpu",
        "lm_head": "disk",
    }
    main = main_device(device_map)
    assert main == torch.device("cuda:0")
    expected = ["cuda:0", "cuda:1", "cuda:0"]
    for layer, device in enumerate(expected):
        name = f"model.layers.{layer}.self_attn.o_proj"
        assert execution_device(device_map, name, main) == torch.device(device)
    assert execution_device(
        {"": "cpu", "model.layers.1": "disk"}, "model.layers.1.o", torch.device("cpu")
    ) == torch.device("cpu")
    assert main_device({"a": "cpu", "b": "disk"}) == torch.device("cpu")
    assert execution_device({"model.layers.1": 1}, "model.layers.10.o", main) == main  # no prefix clash
