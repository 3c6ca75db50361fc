"""VCD against its equations written by hand on a plain HF copy (two views, no cache, no batching)."""

import pytest
import torch

import fac_lens as fl
from fac_lens.baselines import VCD
from fac_lens.baselines.attention_edit import EDIT_ATTR
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair
from tests.core.baseline_references import contrastive_greedy
from tests.references import reference_logits

STEPS = 4


@pytest.fixture(scope="module")
def llava():
    return make_pair("llava")


def vcd_by_hand(alpha: float, beta: float):
    def combine(main, noised):
        scores = (1 + alpha) * main - alpha * noised
        keep = main.softmax(-1) >= beta * main.softmax(-1).max(-1, keepdim=True).values
        return torch.where(keep, scores, torch.full_like(scores, float("-inf")))

    return combine


def noised_by_hand(pixels: torch.Tensor, step: int, seed: int) -> torch.Tensor:
    """VCD's forward diffusion: 1000 steps, betas = sigmoid(linspace(-6, 6)) * (5e-3 - 1e-5) + 1e-5."""
    t = torch.linspace(-6, 6, 1000, dtype=torch.float64)
    betas = 1 / (1 + torch.exp(-t)) * (0.005 - 0.00001) + 0.00001
    abar = float(torch.prod(1 - betas[: step + 1]))
    eps = torch.randn(pixels.shape, generator=torch.Generator().manual_seed(seed))
    return (abar**0.5 * pixels + (1 - abar) ** 0.5 * eps).to(pixels.dtype)


@pytest.mark.contract("vcd")
def test_vcd_matches_hand_reference(arch, pair):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1)
    method = VCD(alpha=1.0, beta=0.1, noise_step=500, seed=3)
    before = reference_logits(reference, inputs)
    noised = dict(inputs, pixel_values=noised_by_hand(inputs["pixel_values"], 500, 3))
    expected, gap = contrastive_greedy(reference, [inputs, noised], STEPS, vcd_by_hand(1.0, 0.1))
    assert gap > 1e-4, "the reference's choices are too close to call"
    out = fl.generate(model, inputs, max_new_tokens=STEPS, method=method)
    assert torch.equal(out.new_tokens, expected)
    # the model is left as it was
    after = model.hf(**model.normalize(inputs)).logits
    assert torch.allclose(after, before, atol=1e-4)
    assert not any(EDIT_ATTR in m.__dict__ for m in model.attention_modules)


def test_vcd_explicit_contrast_and_alias(llava):
    model, reference = llava
    inputs = tiny_inputs(model.hf, batch=1)
    other = tiny_inputs(model.hf, batch=1, seed=7)
    contrast = dict(inputs, pixel_values=other["pixel_values"])
    expected, _ = contrastive_greedy(reference, [inputs, contrast], STEPS, vcd_by_hand(0.5, 0.2))
    out = fl.generate(
        model, inputs, max_new_tokens=STEPS, method=VCD(alpha=0.5, beta=0.2), contrast_inputs=contrast
    )
    assert torch.equal(out.new_tokens, expected)


def test_vcd_batch_rows_match_single_rows(llava):
    model, _ = llava
    batch = tiny_inputs(model.hf, batch=2, padded=True)
    out = fl.generate(model, batch, max_new_tokens=3, method=VCD(alpha=0.0, beta=1e-9))
    vanilla = fl.generate(model, batch, max_new_tokens=3)
    assert torch.equal(out.sequences, vanilla.sequences)  # alpha = 0 and no cut-off: plain greedy


@pytest.mark.parametrize("bad", [dict(beta=0.0), dict(beta=1.5), dict(alpha=-1), dict(noise_step=1000)])
def test_vcd_refuses_bad_settings(bad):
    with pytest.raises(fl.FacLensError):
        VCD(**bad)


def test_fac_and_method_are_exclusive(llava):
    model, _ = llava
    inputs = tiny_inputs(model.hf, batch=1)
    with pytest.raises(fl.FacLensError, match="once"):
        fl.generate(
            model, inputs, max_new_tokens=2, method=VCD(), fac=fl.Gains.ones(model.n_layers, model.n_heads)
        )
