"""Contribution maps under dynamic rescaling are causal and score a trace with the gains that
generation used (teacher forcing), checked against step-by-step decoding by hand."""

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair
from tests.references import dynamic_reference, forced_decode_logits, robust_dynamic_config

STEPS = 6


def with_trace(inputs: dict, trace: torch.Tensor) -> dict:
    """The prompt's inputs with the trace appended ([1, N + T]), fully attended."""
    sequence = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
    sequence["input_ids"] = torch.cat([inputs["input_ids"], trace], dim=1)
    sequence["attention_mask"] = torch.ones_like(sequence["input_ids"])
    return sequence


@pytest.mark.contract("contribution")
@pytest.mark.parametrize("query", ["last", "all"])
def test_dynamic_maps_score_a_trace_with_the_gains_generation_used(pair, query):
    """The losses of a span map inside a dynamic rescale equal those of decoding the same trace
    step by step under the hand-rolled dynamic mode (prefill: the prompt's query set; then each
    step's own token)."""
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1, seed=3)
    cfg, trace = robust_dynamic_config(reference, inputs, query, STEPS)
    with dynamic_reference(reference, inputs["input_ids"], cfg, query):
        logits = forced_decode_logits(reference, inputs, trace)  # [T, V]
    expected = -torch.log_softmax(logits, -1)[torch.arange(STEPS), trace[0]]
    prompt = inputs["input_ids"].shape[1]
    with fl.rescale(model, fl.FacConfig(**cfg, query=query)):
        span = fl.contribution_map(
            model,
            with_trace(inputs, trace),
            position=slice(prompt - 1, prompt - 1 + STEPS),
            prompt_length=prompt,
            progress=False,
        )
    torch.testing.assert_close(span.loss, expected, atol=2e-4, rtol=1e-4)
    vanilla = -torch.log_softmax(forced_decode_logits(reference, inputs, trace), -1)
    assert not torch.allclose(expected, vanilla[torch.arange(STEPS), trace[0]], atol=1e-3), "no effect"


def knife_edge_config(model, inputs, sequence, prompt: int, query: str) -> fl.FacConfig:
    """Thresholds exactly at a layer-0 head's S_v: over the prompt's query set (perception) and
    at the first generated position's own row (reasoning); the least change would flip them."""
    over_prompt = fl.attention_ratios(model, inputs, query=query).visual[0]  # [H]
    first_trace = torch.zeros_like(sequence["input_ids"], dtype=torch.bool)
    first_trace[:, prompt] = True
    own_row = fl.attention_ratios(model, sequence, query=first_trace).visual[0]  # [H]
    high, low = sorted((float(over_prompt[0]), float(own_row[1])), reverse=True)
    return fl.FacConfig(l_perc=0, l_reas=1, tau_perc=high, tau_reas=low, g_perc=3.0, g_reas=0.3, query=query)


@pytest.mark.parametrize("query", ["last", "all"])
def test_a_map_never_depends_on_later_tokens_under_dynamic_rescaling(query):
    model, _ = make_pair("llava")
    inputs = tiny_inputs(model.hf, batch=1, seed=5)
    prompt = inputs["input_ids"].shape[1]
    trace = torch.randint(3, 250, (1, STEPS), generator=torch.Generator().manual_seed(0))
    changed = trace.clone()
    changed[0, 3] = 250 if int(trace[0, 3]) != 250 else 251  # generated token 3 differs
    a, b = with_trace(inputs, trace), with_trace(inputs, changed)
    config = knife_edge_config(model, inputs, a, prompt, query)
    span = slice(prompt - 1, prompt - 1 + STEPS)
    with fl.rescale(model, config) as handle:
        maps = [
            fl.contribution_map(model, s, position=span, prompt_length=prompt, progress=False) for s in (a, b)
        ]
        for s in (a, b):  # the control: one pass over the whole sequence, no teacher forcing
            model.hf(**s)
    whole = handle.pass_ratios[-2:]  # its identification sees the later token
    # map t sits at position prompt - 1 + t and predicts generated token t: maps 0-2 neither read
    # nor predict token 3, map 3 predicts it, maps 4-5 read it
    torch.testing.assert_close(maps[0].per_token[:3], maps[1].per_token[:3], atol=1e-6, rtol=0)
    torch.testing.assert_close(maps[0].loss[:3], maps[1].loss[:3], atol=1e-6, rtol=0)
    assert not torch.allclose(maps[0].per_token[3:], maps[1].per_token[3:], atol=1e-6)
    assert not torch.allclose(whole[0], whole[1], atol=1e-6)


def test_default_prompt_length_starts_the_trace_after_the_first_scored_position():
    """Without prompt_length, the first scored position closes the prompt: equal to passing it."""
    model, _ = make_pair("llava")
    inputs = tiny_inputs(model.hf, batch=1, seed=5)
    prompt = inputs["input_ids"].shape[1]
    trace = torch.randint(3, 250, (1, STEPS), generator=torch.Generator().manual_seed(1))
    sequence = with_trace(inputs, trace)
    config = fl.FacConfig(l_perc=0, l_reas=1, tau_perc=0.2, tau_reas=0.2, g_perc=3.0, g_reas=0.3, query="all")
    with fl.rescale(model, config):
        implicit = fl.contribution_map(model, sequence, position=slice(prompt - 1, -1), progress=False)
        explicit = fl.contribution_map(
            model, sequence, position=slice(prompt - 1, -1), prompt_length=prompt, progress=False
        )
    assert implicit.allclose(explicit, atol=0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_prompt_length_outside_the_causal_range_is_refused(bad):
    model, _ = make_pair("llava")
    inputs = tiny_inputs(model.hf, batch=1, seed=5)
    n = inputs["input_ids"].shape[1]
    with pytest.raises(fl.FacLensError, match="prompt_length"):
        fl.contribution_map(model, inputs, position=n - 2, prompt_length=bad, progress=False)
    with pytest.raises(fl.FacLensError, match="depend on the tokens"):
        fl.contribution_map(model, inputs, position=n - 3, prompt_length=n - 1, progress=False)
    with pytest.raises(fl.FacLensError, match="prompt_length"):
        with fl.teacher_forcing(bad):
            pass
