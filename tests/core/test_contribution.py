"""Contribution maps against gates written by hand on a plain HF copy, and finite differences."""

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair
from tests.references import fold_by_hand, gated, reference_logits

pytestmark = pytest.mark.contract("contribution")


def hand_gate_gradient(reference, inputs, target, position, base_gains=None):
    """dL/dg by autograd through pre-hooks on the plain copy's o_proj inputs."""
    n_layers = reference.config.text_config.num_hidden_layers
    n_heads = reference.config.text_config.num_attention_heads
    gates = torch.ones(n_layers, n_heads, dtype=torch.float64, requires_grad=True)
    scale = gates if base_gains is None else gates * base_gains
    with gated(reference, scale), torch.enable_grad():
        logits = reference_logits_with_grad(reference, inputs)
        loss = -torch.log_softmax(logits[0, position].double(), -1)[target]
        (grad,) = torch.autograd.grad(loss, gates)
    return grad.float()


def reference_logits_with_grad(reference, inputs):
    from tests.references import reset, with_mm_types

    reset(reference)
    out = reference(**with_mm_types(reference, inputs)).logits
    reset(reference)
    return out


def test_single_token_map_matches_hand_gates(pair, single):
    model, reference = pair
    cm = fl.contribution_map(model, single, target=7, position=-1)
    expected = hand_gate_gradient(reference, single, 7, -1)
    torch.testing.assert_close(cm.signed, expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(cm.importance, cm.signed.abs())
    assert cm.signed.shape == (model.n_layers, model.n_heads)
    assert cm.targets == (7,) and cm.positions == (single["input_ids"].shape[1] - 1,)


def float64_norms(reference) -> None:
    """HF's RMSNorm rounds through float32 even in a float64 model; give the reference exact ones."""
    for module in reference.modules():
        if not type(module).__name__.endswith("RMSNorm"):
            continue
        if hasattr(module, "variance_epsilon"):

            def forward(x, module=module):
                return (
                    module.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + module.variance_epsilon)
                )

        else:  # Gemma: eps, and a (1 + weight) scale

            def forward(x, module=module):
                return (1 + module.weight) * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + module.eps)

        module.forward = forward


def float64_routers(reference) -> None:
    """DeepSeek-V3's router scores experts in float32 even in a float64 model (noise of ~1e-7 that
    central differences amplify); give the reference a float64 one, same routing rule."""
    for module in reference.modules():
        if type(module).__name__ != "DeepseekV3TopkRouter":
            continue

        def forward(hidden_states, m=module):
            hidden_states = hidden_states.view(-1, m.hidden_dim)
            logits = torch.nn.functional.linear(hidden_states, m.weight)
            scores = logits.sigmoid()
            choice = scores + m.e_score_correction_bias
            groups = choice.view(-1, m.num_group, m.num_experts // m.num_group).topk(2, dim=-1)[0].sum(-1)
            group_mask = torch.zeros_like(groups).scatter_(1, groups.topk(m.topk_group, dim=-1)[1], 1)
            score_mask = (
                group_mask[..., None].expand(-1, -1, m.num_experts // m.num_group).reshape(-1, m.num_experts)
            )
            choice = choice.masked_fill(~score_mask.bool(), float("-inf"))
            indices = choice.topk(m.top_k, dim=-1)[1]
            weights = scores.gather(1, indices)
            if m.norm_topk_prob:
                weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
            return logits, weights * m.routed_scaling_factor, indices

        module.forward = forward


def test_map_agrees_with_central_finite_differences(arch):
    model, reference = make_pair(arch, dtype=torch.float64)
    reference.config.text_config._attn_implementation = "sdpa"  # eager takes its softmax in float32
    for config in (model.hf.config, reference.config):  # grouped_mm (mixture of experts) has no float64
        config._experts_implementation = "eager"
    float64_norms(reference)
    float64_routers(reference)
    inputs = tiny_inputs(model.hf, batch=1, seed=2)
    inputs["pixel_values"] = inputs["pixel_values"].double()
    cm = fl.contribution_map(model, inputs, target=11, position=-2)

    def loss(gates):
        with gated(reference, gates):
            logits = reference_logits(reference, inputs)
        return -torch.log_softmax(logits[0, -2], -1)[11]

    eps = 1e-4
    finite = torch.zeros(model.n_layers, model.n_heads, dtype=torch.float64)
    for layer in range(model.n_layers):
        for head in range(model.n_heads):
            step = torch.zeros(model.n_layers, model.n_heads, dtype=torch.float64)
            step[layer, head] = eps
            ones = torch.ones_like(step)
            # fourth-order central difference
            finite[layer, head] = (
                -loss(ones + 2 * step) + 8 * loss(ones + step) - 8 * loss(ones - step) + loss(ones - 2 * step)
            ) / (12 * eps)
    assert finite.abs().max() > 1e-3  # a non-trivial map
    torch.testing.assert_close(cm.signed.double(), finite, atol=2e-6, rtol=2e-5)


def test_span_is_mean_of_per_token_maps(pair, single):
    model, reference = pair
    n = single["input_ids"].shape[1]
    span = fl.contribution_map(model, single, target=None, position=slice(n - 4, n - 1), progress=False)
    ids = single["input_ids"][0]
    per_token = [hand_gate_gradient(reference, single, int(ids[p + 1]), p) for p in range(n - 4, n - 1)]
    torch.testing.assert_close(span.per_token, torch.stack(per_token), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(span.signed, torch.stack(per_token).mean(0), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(span.importance, torch.stack(per_token).abs().mean(0), atol=1e-5, rtol=1e-4)
    assert span.targets == tuple(int(ids[p + 1]) for p in range(n - 4, n - 1))


def test_normalizations_and_ranking(pair, single):
    model, _ = pair
    cm = fl.contribution_map(model, single, target=3)
    layer_norm = cm.normalized("layer")
    torch.testing.assert_close(layer_norm.sum(-1), torch.ones(model.n_layers))
    torch.testing.assert_close(layer_norm, cm.importance / cm.importance.sum(-1, keepdim=True))
    global_norm = cm.normalized("global")
    torch.testing.assert_close(global_norm, cm.importance / cm.importance.sum())
    ranking = cm.ranking()
    assert len(ranking) == model.n_layers * model.n_heads
    scores = [score for _, _, score in ranking]
    assert scores == sorted(scores, reverse=True)
    layer, head, score = ranking[0]
    assert score == pytest.approx(float(global_norm.max()))
    assert float(global_norm[layer, head]) == pytest.approx(score)
    assert len(cm.ranking("layer", top=3)) == 3
    with pytest.raises(fl.FacLensError, match="normalization"):
        cm.normalized("row")


def test_map_inside_static_rescale_matches_hand_reference(pair, single):
    model, reference = pair
    gains = 0.5 + torch.rand(model.n_layers, model.n_heads, generator=torch.Generator().manual_seed(0))
    with fl.rescale(model, fl.Gains(gains)):
        rescaled = fl.contribution_map(model, single, target=9)
    vanilla = fl.contribution_map(model, single, target=9)
    fold_by_hand(reference, gains)
    expected = hand_gate_gradient(reference, single, 9, -1)
    torch.testing.assert_close(rescaled.signed, expected, atol=1e-5, rtol=1e-4)
    assert (rescaled.signed - vanilla.signed).abs().max() > 1e-6


def test_bad_contribution_input(pair, batch, single):
    model, _ = pair
    with pytest.raises(fl.FacLensError, match="batch of 2"):
        fl.contribution_map(model, batch, target=1)
    with pytest.raises(fl.FacLensError, match="outside the sequence"):
        fl.contribution_map(model, single, target=1, position=500)
    with pytest.raises(fl.FacLensError, match="vocabulary"):
        fl.contribution_map(model, single, target=10**6)
    with pytest.raises(fl.FacLensError, match="no next token"):
        fl.contribution_map(model, single, target=None, position=-1)
    with pytest.raises(fl.FacLensError, match="one target per position"):
        fl.contribution_map(model, single, target=[1, 2], position=[-2])


def test_map_leaves_parameters_and_hooks_as_they_were(pair, single):
    model, _ = pair
    model.hf.lm_head.weight.requires_grad_(False)
    expected = [p.requires_grad for p in model.hf.parameters()]
    fl.contribution_map(model, single, target=4)
    assert [p.requires_grad for p in model.hf.parameters()] == expected
    assert all(p.grad is None for p in model.hf.parameters())
    assert not any(len(point._forward_hooks) for point in model.bridge.hook_dict.values())
