"""Zero and mean ablation of heads against hand-edited plain HF copies."""

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.core.test_rescale import logits, no_leftovers, ref_logits
from tests.references import reset, shape_of, text_layers, with_mm_types

pytestmark = pytest.mark.contract("ablation")


def random_heads(model, seed=0, share=0.3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(model.n_layers, model.n_heads, generator=generator) < share


def zero_columns_by_hand(reference, heads: torch.Tensor) -> None:
    """Zero the o_proj input columns of every ablated head (in place)."""
    _, _, d_head = shape_of(reference)
    with torch.no_grad():
        for layer, block in enumerate(text_layers(reference)):
            for h in heads[layer].nonzero().flatten().tolist():
                block.self_attn.o_proj.weight[:, h * d_head : (h + 1) * d_head] = 0


def means_by_hand(reference, samples) -> torch.Tensor:
    """Mean o_proj input per head over samples and real positions, from HF forward pre-hooks."""
    n_layers, n_heads, d_head = shape_of(reference)
    sums = torch.zeros(n_layers, n_heads * d_head, dtype=torch.float64)
    count = 0
    current = {}
    handles = [
        block.self_attn.o_proj.register_forward_pre_hook(
            lambda module, args, layer=layer: current.__setitem__(layer, args[0].double())
        )
        for layer, block in enumerate(text_layers(reference))
    ]
    try:
        for inputs in samples:
            reset(reference)
            with torch.no_grad():
                reference(**with_mm_types(reference, inputs))
            real = inputs["attention_mask"].bool()
            for layer in range(n_layers):
                sums[layer] += current[layer][real].sum(0)
            count += int(real.sum())
    finally:
        for handle in handles:
            handle.remove()
    return (sums / count).view(n_layers, n_heads, d_head)


def test_zero_ablation_equals_zeroed_o_proj_columns(pair, batch):
    model, reference = pair
    heads = random_heads(model)
    zero_columns_by_hand(reference, heads)
    with fl.ablate(model, heads):
        ablated = logits(model, batch)
    torch.testing.assert_close(ablated, ref_logits(reference, batch), atol=1e-5, rtol=0)
    assert (ablated - logits(model, batch)).abs().max() > 1e-4  # something was removed
    assert no_leftovers(model)


def test_mean_ablation_equals_hand_recorded_means(pair, batch):
    model, reference = pair
    samples = [tiny_inputs(model.hf, batch=2, seed=s, padded=True) for s in (1, 2)]
    means = fl.head_means(model, samples, progress=False)
    expected = means_by_hand(reference, samples)
    torch.testing.assert_close(means.double(), expected, atol=1e-5, rtol=1e-5)
    heads = random_heads(model, seed=1)
    n_layers, n_heads, d_head = shape_of(reference)
    handles = []
    for layer, block in enumerate(text_layers(reference)):

        def pre_hook(module, args, layer=layer):
            x = args[0].clone().view(*args[0].shape[:-1], n_heads, d_head)
            for h in heads[layer].nonzero().flatten().tolist():
                x[..., h, :] = expected[layer, h].to(x.dtype)
            return (x.flatten(-2),)

        handles.append(block.self_attn.o_proj.register_forward_pre_hook(pre_hook))
    try:
        by_hand = ref_logits(reference, batch)
    finally:
        for handle in handles:
            handle.remove()
    with fl.ablate(model, heads, kind="mean", means=means):
        ablated = logits(model, batch)
    torch.testing.assert_close(ablated, by_hand, atol=1e-5, rtol=0)
    assert no_leftovers(model)


def test_per_row_heads_equal_one_ablation_per_row(pair, batch):
    model, _ = pair
    a, b = random_heads(model, 2), random_heads(model, 3)
    with fl.ablate(model, torch.stack([a, b])):
        both = logits(model, batch)
    rows = batch["attention_mask"].bool()
    with fl.ablate(model, a):
        first = logits(model, batch)
    with fl.ablate(model, b):
        second = logits(model, batch)
    n_first = int(rows[0].sum())
    torch.testing.assert_close(both[:n_first], first[:n_first], atol=1e-5, rtol=0)
    torch.testing.assert_close(both[n_first:], second[n_first:], atol=1e-5, rtol=0)


def test_exit_restores_bit_identical_logits():
    from tests.conftest import make_pair

    model, _ = make_pair("llava")
    inputs = tiny_inputs(model.hf, batch=2, padded=True)
    before = logits(model, inputs)
    with pytest.raises(KeyError):
        with fl.ablate(model, random_heads(model)):
            logits(model, inputs)
            raise KeyError("user code failed inside the block")
    assert torch.equal(logits(model, inputs), before) and no_leftovers(model)


def test_bad_input_is_refused_before_any_change():
    from tests.conftest import make_pair

    model, _ = make_pair("llava")
    heads = random_heads(model)
    cases = [
        dict(heads=heads.float()),
        dict(heads=heads[:1]),
        dict(heads=heads, kind="random"),
        dict(heads=heads, kind="mean"),
        dict(heads=heads, kind="mean", means=torch.zeros(3)),
        dict(heads=heads, means=torch.zeros(model.n_layers, model.n_heads, model.d_head)),
    ]
    for case in cases:
        with pytest.raises(fl.FacLensError):
            with fl.ablate(model, **case):
                pass
        assert no_leftovers(model)
