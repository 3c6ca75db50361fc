"""Per-layer gains (g_perc / g_reas as one value per layer), static and dynamic, by hand."""

import dataclasses

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.core.test_rescale import logits, no_leftovers, ref_logits, robust_config
from tests.references import dynamic_reference, fold_by_hand, reference_ratios

pytestmark = pytest.mark.contract("per-layer gains")


def layer_values(n_layers: int, start: float, step: float) -> tuple[float, ...]:
    return tuple(round(start + step * layer, 3) for layer in range(n_layers))


def test_static_per_layer_gains_equal_hand_folded_weights(pair, batch):
    model, reference = pair
    ratios = fl.attention_ratios(model, batch, progress=False)
    visual = reference_ratios(reference, batch, "all").mean(0)
    tau_perc, tau_reas = float(visual.quantile(0.6)), float(visual.quantile(0.4))
    g_perc, g_reas = layer_values(model.n_layers, 1.1, 0.2), layer_values(model.n_layers, 0.9, -0.1)
    cfg = fl.FacConfig(l_perc=1, l_reas=1, tau_perc=tau_perc, tau_reas=tau_reas, g_perc=g_perc, g_reas=g_reas)
    by_hand = torch.ones(model.n_layers, model.n_heads)
    for layer in range(model.n_layers):
        for head in range(model.n_heads):
            if layer <= 1 and visual[layer, head] >= tau_perc:
                by_hand[layer, head] *= g_perc[layer]
            if layer >= 1 and visual[layer, head] <= tau_reas:
                by_hand[layer, head] *= g_reas[layer]
    gains = cfg.gains(ratios)
    torch.testing.assert_close(gains.values, by_hand)
    assert len(set(by_hand[by_hand != 1].tolist())) > 1  # several layers' gains are in use
    fold_by_hand(reference, by_hand)
    with fl.rescale(model, gains):
        rescaled = logits(model, batch)
    torch.testing.assert_close(rescaled, ref_logits(reference, batch), atol=1e-5, rtol=0)


def test_dynamic_per_layer_gains_equal_hand_written_reference(pair):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1, seed=4)
    cfg = robust_config(model, reference, inputs, "all")
    cfg.update(g_perc=layer_values(model.n_layers, 1.5, 0.25), g_reas=layer_values(model.n_layers, 0.6, 0.1))
    with dynamic_reference(reference, inputs["input_ids"], cfg, "all"):
        expected = ref_logits(reference, inputs)
    with fl.rescale(model, fl.FacConfig(**cfg)):
        got = logits(model, inputs)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert no_leftovers(model)


def test_scalar_gains_keep_their_fields_and_lists_become_tuples():
    scalar = fl.FacConfig(l_perc=1, l_reas=2, tau_perc=0.2, tau_reas=0.1, g_perc=1.16, g_reas=1.3)
    assert dataclasses.asdict(scalar)["g_perc"] == 1.16 and isinstance(scalar.g_perc, float)
    assert "g_perc" in fl.FacConfig.field_names(numeric=True)
    listed = scalar.replace(g_perc=[1.1, 1.2, 1.3])
    assert listed.g_perc == (1.1, 1.2, 1.3) and listed.layer_gains(2) == (1.3, 1.3)
    assert hash(listed) != hash(scalar) and listed.gain_label() == "[1.1,1.2,1.3]/1.3"
    listed.check_model(3)
    for bad in ([1.1, 0.0, 1.0], [], "1.2", [1.0, float("nan")]):
        with pytest.raises(fl.FacLensError):
            scalar.replace(g_perc=bad)
    with pytest.raises(fl.FacLensError):
        listed.check_model(4)  # one value per layer
    selection = fl.identify_heads(torch.rand(4, 2), 1, 2, 0.5, 0.1)
    with pytest.raises(fl.FacLensError):
        fl.Gains.from_selection(selection, g_perc=(1.1, 1.2))
