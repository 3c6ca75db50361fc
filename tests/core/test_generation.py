"""Generation: vanilla, static and dynamic rescaling against hand-rolled decodes of plain HF copies."""

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.references import fold_by_hand, greedy_decode, reset, robust_dynamic_config, with_mm_types

STEPS = 8
pytestmark = pytest.mark.contract("generation")


def test_vanilla_matches_plain_hf_generate_and_hand_decode(pair):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1, seed=1)
    out = fl.generate(model, inputs, max_new_tokens=STEPS)
    assert out.new_tokens.shape == (1, STEPS)
    assert torch.equal(out.new_tokens, greedy_decode(reference, inputs, STEPS))
    reset(reference)
    with torch.no_grad():
        plain = reference.generate(**with_mm_types(reference, inputs), max_new_tokens=STEPS, do_sample=False)
    assert torch.equal(out.sequences, plain)
    assert out.text is None  # no tokenizer on a bare model


def test_batched_left_padded_generation_matches_plain_hf(pair, batch):
    model, reference = pair
    out = fl.generate(model, batch, max_new_tokens=STEPS)
    reset(reference)
    with torch.no_grad():
        plain = reference.generate(**with_mm_types(reference, batch), max_new_tokens=STEPS, do_sample=False)
    assert torch.equal(out.sequences, plain)


def test_static_generation_matches_folded_reference(pair):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1, seed=2)
    gains = 0.3 + 1.4 * torch.rand(model.n_layers, model.n_heads, generator=torch.Generator().manual_seed(0))
    out = fl.generate(model, inputs, max_new_tokens=STEPS, fac=fl.Gains(gains))
    fold_by_hand(reference, gains)
    assert torch.equal(out.new_tokens, greedy_decode(reference, inputs, STEPS))


@pytest.mark.parametrize("query", ["last", "all", "token"])
def test_dynamic_generation_matches_hand_rolled_reference_decode(pair, query):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1, seed=3)
    cfg, expected = robust_dynamic_config(reference, inputs, query, STEPS)
    out = fl.generate(model, inputs, max_new_tokens=STEPS, fac=fl.FacConfig(**cfg, query=query))
    assert torch.equal(out.new_tokens, expected)
    # one identification per forward pass: the prefill and every decoding step but the last
    assert len(out.rescale.pass_ratios) == STEPS
    assert out.rescale.pass_ratios[1].shape == (1, model.n_layers, model.n_heads)


def test_dynamic_generation_is_rescaled_and_leaves_no_trace(pair):
    model, _ = pair
    inputs = tiny_inputs(model.hf, batch=1, seed=3)
    vanilla = fl.generate(model, inputs, max_new_tokens=STEPS)
    # every head of a layer at one gain, then about half of them: a post-attention norm (Gemma 3's
    # sandwich norm) cancels a gain shared by all heads of a layer
    visual = fl.attention_ratios(model, inputs, query="last").visual
    configs = [
        fl.FacConfig(l_perc=1, l_reas=1, tau_perc=0.0, tau_reas=1.0, g_perc=3.0, g_reas=0.3),
        fl.FacConfig(
            l_perc=1,
            l_reas=1,
            tau_perc=float(visual[:2].median()),
            tau_reas=float(visual[1:].median()),
            g_perc=3.0,
            g_reas=0.3,
        ),
    ]
    changed = [
        not torch.equal(
            fl.generate(model, inputs, max_new_tokens=STEPS, fac=cfg).new_tokens, vanilla.new_tokens
        )
        for cfg in configs
    ]
    assert any(changed)
    assert torch.equal(fl.generate(model, inputs, max_new_tokens=STEPS).new_tokens, vanilla.new_tokens)
