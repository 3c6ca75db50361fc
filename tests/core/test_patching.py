"""Activation patching of heads against hooks that copy o_proj input slices by hand."""

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.references import reset, shape_of, text_layers, with_mm_types

pytestmark = pytest.mark.contract("patching")


def metric_by_hand(reference, inputs, target, foil, position, patch=None) -> float:
    """logit[target] - logit[foil] at ``position``; ``patch=(layer, head, clean o_proj inputs)``
    copies that head's slice of the clean run into this one."""
    n_layers, n_heads, d_head = shape_of(reference)
    handle = None
    if patch is not None:
        layer, head, clean = patch

        def pre_hook(module, args):
            x = args[0].clone()
            x[..., head * d_head : (head + 1) * d_head] = clean[layer][
                ..., head * d_head : (head + 1) * d_head
            ]
            return (x,)

        handle = text_layers(reference)[layer].self_attn.o_proj.register_forward_pre_hook(pre_hook)
    reset(reference)
    try:
        with torch.no_grad():
            logits = reference(**with_mm_types(reference, inputs)).logits[0, position].double()
    finally:
        reset(reference)
        if handle is not None:
            handle.remove()
    return float(logits[target] - logits[foil])


def clean_inputs_by_hand(reference, inputs) -> dict[int, torch.Tensor]:
    recorded = {}
    handles = [
        block.self_attn.o_proj.register_forward_pre_hook(
            lambda module, args, layer=layer: recorded.__setitem__(layer, args[0].clone())
        )
        for layer, block in enumerate(text_layers(reference))
    ]
    reset(reference)
    try:
        with torch.no_grad():
            reference(**with_mm_types(reference, inputs))
    finally:
        reset(reference)
        for handle in handles:
            handle.remove()
    return recorded


def test_patching_matches_hand_copied_head_outputs(pair):
    model, reference = pair
    clean = tiny_inputs(model.hf, batch=1, seed=5)
    corrupted = fl.corrupt_image(clean, kind="noise", noise_step=900)
    # and a text token swapped: the tiny Gemma 3's vision tower ignores its pixels
    corrupted["input_ids"] = clean["input_ids"].clone()
    corrupted["input_ids"][0, 1] = 3 + (clean["input_ids"][0, 1] + 1) % 200
    target, foil = 7, 11
    got = fl.patch_heads(model, clean, corrupted, target=target, foil=foil, batch_size=5, progress=False)
    m_clean = metric_by_hand(reference, clean, target, foil, -1)
    m_corrupt = metric_by_hand(reference, corrupted, target, foil, -1)
    assert got.clean == pytest.approx(m_clean, abs=1e-4) and got.corrupted == pytest.approx(
        m_corrupt, abs=1e-4
    )
    recorded = clean_inputs_by_hand(reference, clean)
    n_layers, n_heads, _ = shape_of(reference)
    expected = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer in range(n_layers):
        for head in range(n_heads):
            patched = metric_by_hand(reference, corrupted, target, foil, -1, (layer, head, recorded))
            expected[layer, head] = (patched - m_corrupt) / (m_clean - m_corrupt)
    torch.testing.assert_close(got.recovered.double(), expected, atol=1e-3, rtol=1e-3)
    assert got.position == clean["input_ids"].shape[1] - 1


def test_corruptions_by_hand():
    from tests.conftest import make_pair

    model, _ = make_pair("llava")
    inputs = tiny_inputs(model.hf, batch=1, seed=1)
    other = tiny_inputs(model.hf, batch=1, seed=2)
    blank = fl.corrupt_image(inputs, "blank")["pixel_values"]
    assert torch.equal(blank, torch.full_like(blank, float(inputs["pixel_values"].double().mean())))
    assert torch.equal(
        fl.corrupt_image(inputs, "replace", replacement=other)["pixel_values"], other["pixel_values"]
    )
    # VCD's schedule, written out: 1000 sigmoid-spaced betas in [1e-5, 5e-3]
    t = 500
    alpha_bar = 1.0
    for i in range(t + 1):
        x = -6 + 12 * i / 999
        beta = (1 / (1 + torch.exp(torch.tensor(-x, dtype=torch.float64)))) * (5e-3 - 1e-5) + 1e-5
        alpha_bar *= 1 - float(beta)
    noise = torch.randn(
        inputs["pixel_values"].shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    expected = alpha_bar**0.5 * inputs["pixel_values"].double() + (1 - alpha_bar) ** 0.5 * noise
    got = fl.corrupt_image(inputs, "noise", noise_step=t, seed=3)["pixel_values"]
    torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=1e-6)


def test_log_prob_metric_and_refusals():
    from tests.conftest import make_pair

    model, reference = make_pair("qwen2_vl")
    clean = tiny_inputs(model.hf, batch=1, seed=5)
    corrupted = fl.corrupt_image(clean, "blank")
    got = fl.patch_heads(model, clean, corrupted, target=9, position=-2, batch_size=16, progress=False)
    reset(reference)
    with torch.no_grad():
        logits = reference(**with_mm_types(reference, clean)).logits[0, -2].double()
    assert got.clean == pytest.approx(float(torch.log_softmax(logits, -1)[9]), abs=1e-4)
    with pytest.raises(fl.FacLensError):
        fl.patch_heads(model, clean, tiny_inputs(model.hf, batch=2, padded=True), target=9)  # a batch
    longer = tiny_inputs(model.hf, batch=2, padded=True)
    longer = {k: v[1:] if k in ("input_ids", "attention_mask") else v for k, v in longer.items()}
    with pytest.raises(fl.FacLensError):
        fl.patch_heads(model, clean, longer, target=9)  # another length
    with pytest.raises(fl.FacLensError):
        fl.patch_heads(model, clean, corrupted, target=10**9)
    with pytest.raises(fl.FacLensError):
        fl.corrupt_image(clean, "swirl")
    with pytest.raises(fl.FacLensError):
        fl.corrupt_image(clean, "replace")
