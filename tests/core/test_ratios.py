"""Modality ratios against a plain HF copy run with eager attention and output_attentions=True."""

import sys
import weakref

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.references import reference_ratios

pytestmark = pytest.mark.contract("ratios")


@pytest.mark.parametrize("method", ["indicator", "pattern"])
@pytest.mark.parametrize("query", ["all", "last", "text"])
def test_ratios_match_plain_hf_eager(pair, batch, query, method):
    model, reference = pair
    expected = reference_ratios(reference, batch, query)
    ratios = fl.attention_ratios(model, batch, query=query, method=method)
    assert ratios.per_sample.shape == (2, model.n_layers, model.n_heads)
    torch.testing.assert_close(ratios.per_sample.double(), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(ratios.visual.double(), expected.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(ratios.text.double(), 1 - expected.mean(0), atol=1e-5, rtol=0)
    assert ratios.query == query


def threshold_between(values: torch.Tensor, quantile: float) -> float:
    """A threshold near ``quantile`` of ``values``, halfway between two of them 1e-4 or more apart."""
    ordered = values.flatten().double().sort().values
    start = int(quantile * (len(ordered) - 1))
    for i in list(range(start, len(ordered) - 1)) + list(range(start - 1, -1, -1)):
        if ordered[i + 1] - ordered[i] > 1e-4:
            return float(ordered[i] + ordered[i + 1]) / 2
    raise AssertionError("all ratios are equal")


@pytest.mark.contract("identification")
def test_identification_on_recorded_ratios_matches_eq5_by_hand(pair, batch):
    """Eq. 5 on the plain-HF reference ratios, by hand, against fl.identify_heads on the model's."""
    model, reference = pair
    expected = reference_ratios(reference, batch, "last").mean(0)  # [L, H]
    ratios = fl.attention_ratios(model, batch, query="last")
    l_perc, l_reas = model.n_layers - 2, 1
    tau_perc, tau_reas = threshold_between(expected, 0.6), threshold_between(expected, 0.3)
    selection = fl.identify_heads(ratios, l_perc, l_reas, tau_perc, tau_reas)
    layer = torch.arange(model.n_layers)[:, None]
    perception = (layer <= l_perc) & (expected >= tau_perc)
    reasoning = (layer >= l_reas) & (expected <= tau_reas)
    assert torch.equal(selection.perception, perception)
    assert torch.equal(selection.reasoning, reasoning)
    assert perception.any() and reasoning.any()


def test_custom_query_mask(pair, batch):
    model, reference = pair
    mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    mask[:, -4:-1] = True
    mask[0, -6] = True
    expected = reference_ratios(reference, batch, mask)
    for method in ("indicator", "pattern"):
        ratios = fl.attention_ratios(model, batch, query=mask, method=method)
        torch.testing.assert_close(ratios.per_sample.double(), expected, atol=1e-5, rtol=0)
        assert ratios.query == "mask"


def test_indicator_and_pattern_paths_agree(pair, batch):
    model, _ = pair
    a = fl.attention_ratios(model, batch, method="indicator")
    b = fl.attention_ratios(model, batch, method="pattern")
    assert (a.per_sample - b.per_sample).abs().max() < 1e-5


def test_indicator_path_never_builds_attention(pair, batch, monkeypatch):
    """The O(N) path must not go through eager attention (which builds N x N weights)."""
    model, _ = pair

    def refuse(*args, **kwargs):
        raise AssertionError("eager attention was called")

    expected = fl.attention_ratios(model, batch).per_sample
    for attention in model.attention_modules:  # each modeling module's own eager function
        monkeypatch.setattr(sys.modules[type(attention).__module__], "eager_attention_forward", refuse)
    monkeypatch.setattr(torch.nn.functional, "softmax", refuse)
    assert torch.equal(fl.attention_ratios(model, batch).per_sample, expected)


def test_pattern_path_keeps_one_layer_of_attention_at_a_time(pair, batch):
    """When layer l's pattern is produced, no earlier layer's N x N pattern is still alive."""
    model, _ = pair
    refs, alive_counts = [], []

    def watch(pattern, hook):
        alive_counts.append(sum(ref() is not None for ref in refs))
        refs.append(weakref.ref(pattern))

    hooks = [(f"blocks.{layer}.attn.hook_pattern", watch) for layer in range(model.n_layers)]
    with model.bridge.hooks(fwd_hooks=hooks):
        fl.attention_ratios(model, batch, method="pattern")
    assert len(alive_counts) == model.n_layers
    assert max(alive_counts) == 0


def test_samples_aggregate_with_mean_and_spread(pair):
    model, reference = pair
    samples = [tiny_inputs(model.hf, batch=1, seed=s) for s in range(3)]
    ratios = fl.attention_ratios(model, samples, query="all", progress=False)
    expected = torch.cat([reference_ratios(reference, s, "all") for s in samples])
    assert ratios.n_samples == 3
    torch.testing.assert_close(ratios.visual.double(), expected.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(ratios.std.double(), expected.std(0), atol=1e-5, rtol=0)
    mean, std = ratios.layer_trajectory()
    torch.testing.assert_close(mean.double(), expected.mean(-1).mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(std.double(), expected.mean(-1).std(0), atol=1e-5, rtol=0)
    joined = fl.HeadRatios.concat([ratios.sample(0), ratios.sample(2)])
    assert torch.equal(joined.per_sample, ratios.per_sample[[0, 2]])


def test_qwen_ratios_use_real_mrope_positions():
    """Without mm_token_type_ids Qwen2.5-VL falls back to 1-D positions; fac_lens adds them."""
    from tests.conftest import make_pair

    model, reference = make_pair("qwen2_5_vl")
    inputs = tiny_inputs(model.hf, batch=1)
    reference.model.rope_deltas = None
    with torch.no_grad():
        one_d = reference(**inputs, output_attentions=True).attentions
    image = (inputs["input_ids"] == model.image_token_id).float()
    one_d_ratio = torch.stack([(a * image[:, None, None, :]).sum(-1).mean(-1) for a in one_d], 1)
    expected = reference_ratios(reference, inputs, "all")
    ratios = fl.attention_ratios(model, inputs)
    torch.testing.assert_close(ratios.per_sample.double(), expected, atol=1e-5, rtol=0)
    assert (one_d_ratio.double() - expected).abs().max() > 1e-4  # the positions matter


def test_half_precision_model_records_in_float32():
    from tests.conftest import make_pair

    model, reference = make_pair("llava", dtype=torch.bfloat16)
    inputs = tiny_inputs(model.hf, batch=1)
    ratios = fl.attention_ratios(model, inputs)
    assert ratios.per_sample.dtype == torch.float32
    expected = reference_ratios(reference, inputs, "all")
    # bf16 activations differ between the two attention kernels; the ratios stay close
    assert (ratios.per_sample.double() - expected).abs().max() < 2e-2
