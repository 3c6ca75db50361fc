"""Static and dynamic rescaling, folding, and leaving the model exactly as it was."""

import pytest
import torch

import fac_lens as fl
from fac_lens.attention_probe import PROBE_ATTR
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair
from tests.references import (
    decoder,
    dynamic_reference,
    fold_by_hand,
    gated,
    reference_logits,
    with_mm_types,
)

pytestmark = pytest.mark.contract("static")


def random_gains(model, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.5 + torch.rand(model.n_layers, model.n_heads, generator=generator)


def logits(model, inputs):
    """Logits at real (non-padding) positions: [n_real_tokens, vocab]."""
    with torch.no_grad():
        return model.forward(inputs).logits[inputs["attention_mask"].bool()]


def ref_logits(reference, inputs):
    return reference_logits(reference, inputs)[inputs["attention_mask"].bool()]


def no_leftovers(model) -> bool:
    hooks_left = any(
        len(point._forward_hooks) or len(point._backward_hooks) or getattr(point, "fwd_hooks", None)
        for point in model.bridge.hook_dict.values()
    )
    probes_left = any(PROBE_ATTR in module.__dict__ for module in model.attention_modules)
    pre_hooks_left = any(len(o_proj._forward_pre_hooks) for o_proj in model.output_projections())
    attention = model.spec.text_config(model.hf)._attn_implementation
    bridged = type(decoder(model.hf).layers[0]).__name__.endswith("BlockBridge")
    return not (hooks_left or probes_left or pre_hooks_left) and attention == "fac_lens_sdpa" and bridged


def test_bridged_model_matches_plain_hf(pair, batch):
    model, reference = pair
    torch.testing.assert_close(logits(model, batch), ref_logits(reference, batch), atol=1e-5, rtol=0)


def test_static_equals_hand_folded_weights(pair, batch):
    model, reference = pair
    values = random_gains(model)
    fold_by_hand(reference, values)
    with fl.rescale(model, fl.Gains(values)):
        rescaled = logits(model, batch)
    torch.testing.assert_close(rescaled, ref_logits(reference, batch), atol=1e-5, rtol=0)


def test_static_equals_gates_by_hand_and_fold_gains(pair, batch):
    model, reference = pair
    values = random_gains(model, seed=1)
    with fl.rescale(model, fl.Gains(values)):
        rescaled = logits(model, batch)
    with gated(reference, values):
        by_hand = ref_logits(reference, batch)
    torch.testing.assert_close(rescaled, by_hand, atol=1e-5, rtol=0)
    fl.fold_gains(model, fl.Gains(values))
    torch.testing.assert_close(logits(model, batch), rescaled, atol=1e-5, rtol=0)


def test_gains_change_output_and_ones_do_not(pair, batch):
    model, _ = pair
    base = logits(model, batch)
    with fl.rescale(model, fl.Gains.ones(model.n_layers, model.n_heads)):
        assert torch.equal(logits(model, batch), base)
    values = torch.ones(model.n_layers, model.n_heads)
    values[1, 2] = 1.3
    with fl.rescale(model, fl.Gains(values)):
        assert (logits(model, batch) - base).abs().max() > 1e-4


def test_exit_restores_bit_identical_logits(pair, batch):
    model, _ = pair
    before = logits(model, batch)
    with fl.rescale(model, fl.Gains(random_gains(model))):
        logits(model, batch)
    assert torch.equal(logits(model, batch), before) and no_leftovers(model)
    cfg = fl.FacConfig(l_perc=1, l_reas=1, tau_perc=0.2, tau_reas=0.5, g_perc=1.5, g_reas=1.5)
    with pytest.raises(KeyError):
        with fl.rescale(model, cfg):
            logits(model, batch)
            raise KeyError("user code failed inside the block")
    assert torch.equal(logits(model, batch), before) and no_leftovers(model)
    with pytest.raises(RuntimeError):
        with fl.rescale(model, fl.Gains(random_gains(model))):
            raise RuntimeError
    assert torch.equal(logits(model, batch), before) and no_leftovers(model)


def test_nested_contexts_compose(pair, batch):
    model, reference = pair
    a, b = random_gains(model, 2), random_gains(model, 3)
    with fl.rescale(model, fl.Gains(a)), fl.rescale(model, fl.Gains(b)):
        both = logits(model, batch)
    fold_by_hand(reference, a * b)
    # (z * a) * b vs z * (a * b): float32 reassociation moves logits of magnitude ~1.5 by ~1e-5
    torch.testing.assert_close(both, ref_logits(reference, batch), atol=1e-5, rtol=1e-5)
    assert no_leftovers(model)


def robust_config(model, reference, inputs, query):
    """A dynamic config whose per-pass decisions are not within 1e-4 of a threshold."""
    vanilla = reference_logits(reference, inputs)
    candidates = ((0.25, 0.2), (0.3, 0.15), (0.35, 0.1), (0.2, 0.12), (0.4, 0.3))
    candidates += tuple((0.01 * p, 0.01 * p - 0.03) for p in range(8, 96, 2))  # then a finer sweep
    for tau_perc, tau_reas in candidates:
        cfg = dict(l_perc=1, l_reas=1, tau_perc=tau_perc, tau_reas=tau_reas, g_perc=1.5, g_reas=0.6)
        with dynamic_reference(reference, inputs["input_ids"], cfg, query) as margins:
            rescaled = reference_logits(reference, inputs)
        # robust decisions, and a visible effect (a post-attention norm, as in Gemma 3, cancels a
        # gain shared by every head of a layer)
        if min(margins) > 1e-4 and (rescaled - vanilla).abs().max() > 1e-3:
            return cfg
    raise AssertionError("no robust thresholds found")


@pytest.mark.contract("dynamic")
@pytest.mark.parametrize("query", ["last", "all", "token"])
def test_dynamic_equals_hand_written_eager_reference(pair, query):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1, seed=4)
    cfg = robust_config(model, reference, inputs, query)
    with dynamic_reference(reference, inputs["input_ids"], cfg, query):
        expected = ref_logits(reference, inputs)
    with fl.rescale(model, fl.FacConfig(**cfg, query=query)) as handle:
        got = logits(model, inputs)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert (got - logits(model, inputs)).abs().max() > 1e-4  # something was rescaled
    assert len(handle.pass_ratios) == 1
    assert handle.selection(0).counts["total"] == model.n_layers * model.n_heads


@pytest.mark.contract("dynamic")
def test_dynamic_with_unit_gains_changes_nothing(pair, batch):
    model, _ = pair
    before = logits(model, batch)
    cfg = fl.FacConfig(l_perc=1, l_reas=1, tau_perc=0.2, tau_reas=0.5)
    with fl.rescale(model, cfg):
        torch.testing.assert_close(logits(model, batch), before, atol=1e-6, rtol=0)


@pytest.mark.contract("dynamic")
def test_dynamic_pass_ratios_are_the_recorded_ratios(pair):
    """In a prefill, the dynamic mode's S_v (query "all") equals fl.attention_ratios."""
    model, _ = pair
    inputs = tiny_inputs(model.hf, batch=1, seed=5)
    ratios = fl.attention_ratios(model, inputs, query="all")
    cfg = fl.FacConfig(l_perc=0, l_reas=model.n_layers - 1, tau_perc=1.0, tau_reas=0.0, query="all")
    with fl.rescale(model, cfg) as handle:
        logits(model, inputs)
    torch.testing.assert_close(handle.pass_ratios[0], ratios.per_sample, atol=1e-6, rtol=0)


def test_fold_then_save_loads_in_plain_transformers(pair, batch, tmp_path):
    model, _ = pair
    values = random_gains(model, 6)
    with fl.rescale(model, fl.Gains(values)):
        rescaled = logits(model, batch)
    fl.fold_gains(model, fl.Gains(values))
    model.save_pretrained(tmp_path)
    # transformers' own class (Kimi-VL's model subclasses Kimi-K2.5's only to take image_grid_hws)
    plain_class = next(c for c in type(model.hf).__mro__ if c.__module__.startswith("transformers."))
    plain = plain_class.from_pretrained(tmp_path).eval()
    plain.config.text_config._attn_implementation = "sdpa"
    with torch.no_grad():
        reloaded = plain(**with_mm_types(plain, batch)).logits[batch["attention_mask"].bool()]
    torch.testing.assert_close(reloaded, rescaled, atol=1e-5, rtol=0)


def test_bad_rescale_input_leaves_model_untouched(pair, batch):
    model, _ = pair
    before = logits(model, batch)
    with pytest.raises(fl.FacLensError, match="n_layers, n_heads"):
        with fl.rescale(model, fl.Gains(torch.ones(model.n_layers + 1, model.n_heads))):
            pass
    with pytest.raises(fl.FacLensError, match="l_reas=99"):
        with fl.rescale(model, fl.FacConfig(l_perc=0, l_reas=99, tau_perc=0.2, tau_reas=0.1)):
            pass
    with pytest.raises(fl.FacLensError, match="Gains"):
        with fl.rescale(model, {"g_perc": 1.2}):
            pass
    with pytest.raises(fl.FacLensError, match="n_layers, n_heads"):
        fl.fold_gains(model, fl.Gains(torch.ones(2, 2)))
    assert torch.equal(logits(model, batch), before) and no_leftovers(model)


def module_tree(module) -> list[tuple[str, int]]:
    return [(name, id(child)) for name, child in module.named_modules(remove_duplicate=False)]


def test_gains_sit_exactly_at_transformer_lens_hook_z(pair, batch):
    """fl.rescale == a transformer-lens hook on blocks.{l}.attn.hook_z scaling heads by hand."""
    model, _ = pair
    values = random_gains(model, 7)

    def make(layer):
        def hook(z, hook):  # z [B, pos, H, D]
            return z * values[layer][None, None, :, None]

        return hook

    with model.bridge.hooks(fwd_hooks=[(f"blocks.{i}.attn.hook_z", make(i)) for i in range(model.n_layers)]):
        via_tl = logits(model, batch)
    with fl.rescale(model, fl.Gains(values)):
        via_fac = logits(model, batch)
    torch.testing.assert_close(via_fac, via_tl, atol=1e-6, rtol=0)


def test_unbridged_fast_path_is_exact_and_restores_the_bridge(pair, batch):
    model, _ = pair
    tree = module_tree(model.hf)
    bridged = logits(model, batch)
    with model.unbridged():
        assert not type(decoder(model.hf).layers[0]).__name__.endswith("BlockBridge")
        assert torch.equal(logits(model, batch), bridged)
    assert module_tree(model.hf) == tree
    with pytest.raises(ZeroDivisionError):
        with model.unbridged():
            raise ZeroDivisionError
    assert module_tree(model.hf) == tree and no_leftovers(model)


def test_user_transformer_lens_hooks_keep_firing_in_fac_lens_calls(pair, single):
    """With a transformer-lens hook attached, fac_lens stays on the bridge so the hook fires."""
    model, _ = pair
    calls = []

    def count(z, hook):
        calls.append(hook.name)

    with model.bridge.hooks(fwd_hooks=[("blocks.0.attn.hook_z", count)]):
        fl.generate(model, single, max_new_tokens=3)
        assert len(calls) == 3
        fl.attention_ratios(model, single)
        fl.contribution_map(model, single, target=3)
    assert len(calls) == 5
    tree = module_tree(model.hf)
    fl.generate(model, single, max_new_tokens=3)
    assert module_tree(model.hf) == tree and no_leftovers(model)


def test_bridge_forward_is_rescaled_like_hf_forward(pair, single):
    """Inside rescale, model.bridge(...) and model.hf(...) compute the same rescaled logits."""
    model, _ = pair
    inputs = model.normalize(single)
    ids = inputs.pop("input_ids")
    # the last query splits Gemma 3's heads of a layer (a gain shared by a whole layer is cancelled
    # by its post-attention norm, so it would show no effect)
    cfg = fl.FacConfig(l_perc=1, l_reas=1, tau_perc=0.5, tau_reas=0.5, g_perc=2.0, g_reas=0.5, query="last")
    for fac in (fl.Gains(random_gains(model, 8)), cfg):
        with torch.no_grad(), fl.rescale(model, fac):
            model.reset_state()
            via_bridge = model.bridge(ids, **inputs)
            model.reset_state()
            via_hf = model.hf(input_ids=ids, **inputs).logits
        torch.testing.assert_close(via_bridge, via_hf, atol=1e-6, rtol=0)
        assert (via_hf[0] - logits(model, {"input_ids": ids, **inputs})).abs().max() > 1e-3
    assert no_leftovers(model)


def test_gemma3_post_attention_norm_cancels_a_gain_shared_by_a_whole_layer():
    """The documented Gemma 3 limit: its post-attention RMSNorm undoes a gain common to every head
    of a layer; gains that differ between heads of a layer do act."""
    model, _ = make_pair("gemma3")
    inputs = tiny_inputs(model.hf, batch=1)
    base = logits(model, inputs)
    uniform = torch.ones(model.n_layers, model.n_heads)
    uniform[1] = 3.0
    with fl.rescale(model, fl.Gains(uniform)):
        assert (logits(model, inputs) - base).abs().max() < 1e-4
    mixed = uniform.clone()
    mixed[1, 0] = 1.0
    with fl.rescale(model, fl.Gains(mixed)):
        assert (logits(model, inputs) - base).abs().max() > 1e-2
