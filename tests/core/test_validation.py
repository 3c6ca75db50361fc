"""Every entry point refuses bad input with one FacLensError naming the problem and the fix, before
any work; numpy integers and 0-d integer tensors are accepted wherever an int is meant."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import fac_lens as fl
from fac_lens.testing import save_tiny_checkpoint
from tests.core.test_rescale import no_leftovers


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llava")
    save_tiny_checkpoint(folder, "llava")
    return folder


@pytest.fixture(scope="module")
def model(checkpoint):
    return fl.load(checkpoint)


@pytest.fixture(scope="module")
def inputs(model):
    return model.prepare(Image.new("RGB", (56, 56), (200, 40, 40)), "what color is it ?")


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.hf.state_dict().items()}


def unchanged(model, before) -> bool:
    after = model.hf.state_dict()
    return all(torch.equal(after[k], v) for k, v in before.items()) and no_leftovers(model)


def config(model, **changes):
    return fl.FacConfig(
        **{
            "l_perc": 0,
            "l_reas": model.n_layers - 1,
            "tau_perc": 0.0,
            "tau_reas": 1.0,
            "g_reas": 1.5,
            **changes,
        }
    )


# ----------------------------------------------------------------------------- int-like values
@pytest.mark.parametrize(
    "make", [np.int64, np.int32, torch.tensor], ids=["np.int64", "np.int32", "0-d tensor"]
)
def test_numpy_and_0d_integers_are_ints(model, inputs, make):
    cfg = fl.FacConfig(l_perc=make(0), l_reas=make(1), tau_perc=0.2, tau_reas=0.1)
    assert (type(cfg.l_perc), type(cfg.l_reas)) == (int, int)
    cfg.check_model(model.n_layers)
    selection = fl.identify_heads(torch.rand(model.n_layers, model.n_heads), make(0), make(1), 0.2, 0.1)
    assert selection.l_perc == 0 and type(selection.l_reas) is int
    cm = fl.contribution_map(model, inputs, target=make(3), position=make(-1), progress=False)
    assert cm.targets == (3,) and cm.positions == (inputs["input_ids"].shape[1] - 1,)
    n = inputs["input_ids"].shape[1]
    span = fl.contribution_map(model, inputs, position=np.array([n - 3, n - 2]), progress=False)
    assert span.positions == (n - 3, n - 2)
    with fl.teacher_forcing(make(2)):
        pass
    assert fl.generate(model, inputs, max_new_tokens=make(2)).new_tokens.shape[1] <= 2


@pytest.mark.parametrize(
    "bad", [1.0, True, "1", None, np.float64(1.0), torch.tensor([1, 2]), torch.tensor(1.0)]
)
def test_non_integers_are_refused_where_an_int_is_meant(model, inputs, bad):
    with pytest.raises(fl.FacLensError, match="l_perc"):
        fl.FacConfig(l_perc=bad, l_reas=1, tau_perc=0.2, tau_reas=0.1)
    with pytest.raises(fl.FacLensError, match="max_new_tokens"):
        fl.generate(model, inputs, max_new_tokens=bad)
    if bad is not None:
        with pytest.raises(fl.FacLensError, match="target"):
            fl.contribution_map(model, inputs, target=bad, progress=False)


# ------------------------------------------------------------------------------------- inputs
def test_out_of_vocabulary_ids_are_named(model, inputs):
    bad = dict(inputs, input_ids=inputs["input_ids"].clone())
    bad["input_ids"][0, -1] = 10**6
    before = state(model)
    for call in (
        lambda: fl.attention_ratios(model, bad),
        lambda: fl.generate(model, bad, max_new_tokens=2),
        lambda: fl.contribution_map(model, bad, target=1, progress=False),
    ):
        with pytest.raises(fl.FacLensError, match="outside the vocabulary"):
            call()
    assert unchanged(model, before)


def test_image_token_count_mismatch_is_named(model, inputs):
    ids = inputs["input_ids"]
    extra = torch.full((1, 3), model.image_token_id)
    bad = dict(inputs, input_ids=torch.cat([ids[:, :1], extra, ids[:, 1:]], 1))
    bad["attention_mask"] = torch.ones_like(bad["input_ids"])
    before = state(model)
    with pytest.raises(fl.FacLensError, match="image placeholder"):
        fl.attention_ratios(model, bad)
    with pytest.raises(fl.FacLensError, match="image placeholder"):
        fl.generate(model, bad, max_new_tokens=2)
    assert unchanged(model, before)
    text_only = {k: v[:, ids[0] != model.image_token_id] for k, v in inputs.items() if k != "pixel_values"}
    with pytest.raises(fl.FacLensError, match="no image token"):
        fl.generate(model, {**text_only, "pixel_values": inputs["pixel_values"]}, max_new_tokens=2)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_pixels_are_refused(model, inputs, value):
    pixels = inputs["pixel_values"].clone()
    pixels[..., 0] = value
    with pytest.raises(fl.FacLensError, match="NaN or inf"):
        fl.attention_ratios(model, dict(inputs, pixel_values=pixels))


def test_prepare_keeps_the_tokenizers_padding_side(model):
    tokenizer = model.tokenizer
    tokenizer.padding_side = "right"
    try:
        model.prepare(Image.new("RGB", (56, 56)), "a question")
        assert tokenizer.padding_side == "right"
        with pytest.raises(fl.FacLensError):
            model.prepare("not an image", "a question")  # the processor raises inside
        assert tokenizer.padding_side == "right"
        with pytest.raises(fl.FacLensError, match="2 images for 1 prompts"):
            model.prepare([Image.new("RGB", (56, 56))] * 2, "a question")
    finally:
        tokenizer.padding_side = "left"


# ---------------------------------------------------------------------------- dynamic rescale
def test_dynamic_rescale_on_a_prompt_without_image_tokens_raises(model, inputs):
    ids = inputs["input_ids"]
    keep = ids[0] != model.image_token_id
    text_only = {"input_ids": ids[:, keep], "attention_mask": inputs["attention_mask"][:, keep]}
    before = state(model)
    with torch.no_grad():
        reference = model.forward(inputs).logits
    with pytest.raises(fl.FacLensError, match="no image token"):
        with fl.rescale(model, config(model)), torch.no_grad():
            model.hf(**text_only)
    assert unchanged(model, before)
    with torch.no_grad():
        assert torch.equal(model.forward(inputs).logits, reference)


# ------------------------------------------------------------------------------------ loading
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": "float77"}, "not a floating torch dtype"),
        ({"dtype": torch.int8}, "not a floating torch dtype"),
        ({"device": "banana"}, "not a torch device"),
        ({"device": "cuda:99"}, "CUDA device"),
    ],
)
def test_bad_dtype_or_device_is_named(checkpoint, kwargs, match):
    with pytest.raises(fl.FacLensError, match=match):
        fl.load(checkpoint, **kwargs)


def _damage(folder, how: str) -> None:
    weights = next(folder.glob("*.safetensors"))
    if how == "missing weights":
        weights.unlink()
    elif how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        (folder / "config.json").write_text("{not json")


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("missing weights", "weights .* could not be read"),
        ("truncated weights", "weights .* could not be read"),
        ("malformed config", "config.json is not (a )?valid (model config|JSON)"),
    ],
)
def test_damaged_checkpoints_are_named(checkpoint, tmp_path, how, match):
    folder = tmp_path / "damaged"
    shutil.copytree(checkpoint, folder)
    _damage(folder, how)
    with pytest.raises(fl.FacLensError, match=match):
        fl.load(folder)


# ---------------------------------------------------------------------------- other functions
def test_wrong_types_are_named(model, inputs):
    before = state(model)
    with pytest.raises(fl.FacLensError, match="fold_gains needs static fl.Gains"):
        fl.fold_gains(model, config(model))
    with pytest.raises(fl.FacLensError, match="HeadSelection"):
        fl.Gains.from_selection(torch.ones(2, 2))
    with pytest.raises(fl.FacLensError, match="HeadRatios"):
        fl.calibrated_config(torch.ones(2, 2))
    with pytest.raises(fl.FacLensError, match="gains must be finite"):
        fl.FacConfig(l_perc=0, l_reas=1, tau_perc=0.2, tau_reas=0.1, g_perc="big")
    with pytest.raises(fl.FacLensError, match="not a ratio"):
        fl.FacConfig(l_perc=0, l_reas=1, tau_perc=float("nan"), tau_reas=0.1)
    with pytest.raises(fl.FacLensError, match="token=-1"):
        fl.case_study(model, Image.new("RGB", (56, 56)), "q", config(model), token=-1)
    assert unchanged(model, before)
