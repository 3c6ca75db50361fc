"""select_config against an exhaustive search by hand; change points against a brute-force fit."""

import itertools
import math
import types

import numpy as np
import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs

GRID = {
    "l_perc": list(range(12)),
    "l_reas": list(range(12)),
    "tau_perc": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    "tau_reas": [0.0, 0.01, 0.02, 0.05],
}


def peaked(config, samples):
    """A unimodal, separable objective with its peak at (7, 3, 0.4, 0.01), one value per sample."""
    value = -((config.l_perc - 7) ** 2) - (config.l_reas - 3) ** 2
    value -= 100 * (config.tau_perc - 0.4) ** 2 + 1e4 * (config.tau_reas - 0.01) ** 2
    return [value + s for s in samples]


def test_search_finds_the_exhaustive_optimum_with_fewer_evaluations():
    model = types.SimpleNamespace(n_layers=12)
    found = fl.select_config(model, [0.0, 0.1, -0.1], peaked, grid=GRID, budget=200, progress=False)
    best, best_value = None, -math.inf
    for values in itertools.product(*GRID.values()):  # by hand: every point of the grid
        point = dict(zip(GRID, values, strict=True))
        value = -((point["l_perc"] - 7) ** 2) - (point["l_reas"] - 3) ** 2
        value -= 100 * (point["tau_perc"] - 0.4) ** 2 + 1e4 * (point["tau_reas"] - 0.01) ** 2
        if value > best_value:
            best, best_value = point, value
    chosen = {k: getattr(found.config, k) for k in GRID}
    assert chosen == best
    assert found.n_evaluations < math.prod(len(v) for v in GRID.values()) / 20
    assert found.validation.mean == pytest.approx(best_value)
    assert found.test is None


def test_budget_stops_the_search_and_test_is_scored_apart():
    model = types.SimpleNamespace(n_layers=12)
    seen = []

    def score(config, samples):
        seen.append(samples)
        return peaked(config, samples)

    found = fl.select_config(model, [0.0], score, test=[5.0, 6.0], grid=GRID, budget=4, progress=False)
    assert found.n_evaluations == 4
    assert found.test.mean == pytest.approx(np.mean(peaked(found.config, [5.0, 6.0])))
    assert sum(s == [5.0, 6.0] for s in seen) == 1  # the test split is scored once, after choosing


def test_bootstrap_interval_agrees_with_the_normal_approximation():
    values = [1.0] * 200 + [0.0] * 200
    interval = fl.config_search.bootstrap_interval(values, n_resamples=4000)
    half = 1.96 * math.sqrt(0.25 / 400)
    assert interval.mean == 0.5
    assert interval.low == pytest.approx(0.5 - half, abs=0.01)
    assert interval.high == pytest.approx(0.5 + half, abs=0.01)


def test_change_point_matches_brute_force_and_a_clear_step():
    generator = torch.Generator().manual_seed(0)
    per_sample = torch.rand(6, 9, 4, generator=generator)
    ratios = fl.HeadRatios(per_sample)
    trajectory = per_sample.mean(-1).mean(0).double().tolist()
    costs = {}
    for k in range(1, 9):  # by hand: squared error of the two-segment fit at every split
        left, right = trajectory[:k], trajectory[k:]
        costs[k] = sum((v - sum(left) / len(left)) ** 2 for v in left) + sum(
            (v - sum(right) / len(right)) ** 2 for v in right
        )
    assert fl.change_point(ratios).layer == min(costs, key=costs.get)
    step = torch.cat([torch.full((5, 5, 4), 0.4), torch.full((5, 7, 4), 0.05)], dim=1)
    step = step + 0.01 * torch.rand(step.shape, generator=generator)
    found = fl.change_point(fl.HeadRatios(step))
    assert found.layer == 5 and found.interval == (5, 5)
    assert found.before == pytest.approx(0.405, abs=0.01) and found.after == pytest.approx(0.055, abs=0.01)


def test_select_config_on_a_tiny_model_end_to_end():
    from tests.conftest import make_pair

    model, _ = make_pair("qwen2_vl")
    validation = [tiny_inputs(model.hf, batch=1, seed=s) for s in (1, 2)]
    test = [tiny_inputs(model.hf, batch=1, seed=s) for s in (3, 4)]
    ratios = fl.attention_ratios(model, validation, progress=False)

    def score(config, samples):  # log-probability of each sample's last token
        out = []
        with fl.rescale(model, config):
            for inputs in samples:
                with torch.no_grad():
                    logits = model.forward(inputs).logits[0, -2]
                out.append(float(torch.log_softmax(logits.double(), -1)[inputs["input_ids"][0, -1]]))
        return out

    found = fl.select_config(model, validation, score, test=test, ratios=ratios, budget=6, progress=False)
    assert found.n_evaluations <= 6
    assert found.validation.mean == pytest.approx(max(v for _, v in found.history))
    assert found.test.mean == pytest.approx(np.mean(score(found.config, test)))
    assert found.validation.low <= found.validation.mean <= found.validation.high


def test_refusals():
    model = types.SimpleNamespace(n_layers=12)
    with pytest.raises(fl.FacLensError):
        fl.select_config(model, [0.0], peaked, grid={"l_perc": [1]})  # axes missing, no ratios
    with pytest.raises(fl.FacLensError):
        fl.select_config(model, [0.0], peaked, grid={**GRID, "depth": [1]})
    with pytest.raises(fl.FacLensError):
        fl.select_config(model, [0.0], "accuracy", grid=GRID)
    with pytest.raises(fl.FacLensError):
        fl.change_point(torch.rand(3, 4))


def _last_token_logprob(logits: torch.Tensor, ids: torch.Tensor) -> float:
    return float(torch.log_softmax(logits[0, -2].double(), -1)[ids[0, -1]])


@pytest.mark.contract("config search")
def test_config_search_numbers_match_a_hand_written_pipeline(pair):
    """On every architecture: select_config scoring static FAC through fac_lens reports, for every
    setting it tried and for the chosen one on validation and test, the score an independent
    pipeline gives (S_v from HF eager attentions by hand, eq. 6 gains by hand, gains as o_proj
    pre-hooks on a plain HF copy); the change point of fac_lens's ratios is the brute-force split
    of the hand-computed trajectory."""
    from tests.references import gated, reference_logits, reference_ratios

    model, reference = pair
    n_layers = model.n_layers
    validation = [tiny_inputs(model.hf, batch=1, seed=s) for s in (1, 2)]
    test = [tiny_inputs(model.hf, batch=1, seed=3)]
    by_hand_ratios = {id(x): reference_ratios(reference, x, "all")[0] for x in (*validation, *test)}
    base = fl.FacConfig(l_perc=0, l_reas=0, tau_perc=0.0, tau_reas=0.0, g_perc=2.0, g_reas=0.5)
    grid = {
        "l_perc": list(range(n_layers)),
        "l_reas": list(range(n_layers)),
        "tau_perc": [0.05, 0.15, 0.3],
        "tau_reas": [0.05, 0.15, 0.3],
    }

    fac_ratios = {id(x): fl.attention_ratios(model, x, progress=False) for x in (*validation, *test)}

    def via_fac_lens(config, samples):  # the static pipeline: identify on vanilla S_v, then rescale
        out = []
        for inputs in samples:
            with fl.rescale(model, config.gains(fac_ratios[id(inputs)])), torch.no_grad():
                out.append(_last_token_logprob(model.forward(inputs).logits, inputs["input_ids"]))
        return out

    def by_hand(config, samples):
        out = []
        for inputs in samples:
            visual = by_hand_ratios[id(inputs)]  # [L, H] float64
            gains = torch.ones(visual.shape)
            for layer in range(visual.shape[0]):
                for head in range(visual.shape[1]):
                    if layer <= config.l_perc and visual[layer, head] >= config.tau_perc:
                        gains[layer, head] *= config.g_perc
                    if layer >= config.l_reas and visual[layer, head] <= config.tau_reas:
                        gains[layer, head] *= config.g_reas
            with gated(reference, gains):
                out.append(_last_token_logprob(reference_logits(reference, inputs), inputs["input_ids"]))
        return out

    found = fl.select_config(
        model, validation, via_fac_lens, test=test, grid=grid, base=base, budget=8, progress=False
    )
    assert 1 <= found.n_evaluations <= 8
    for config, value in found.history:
        assert value == pytest.approx(np.mean(by_hand(config, validation)), abs=1e-4)
    assert found.validation.mean == pytest.approx(max(v for _, v in found.history), abs=1e-9)
    assert found.validation.mean == pytest.approx(np.mean(by_hand(found.config, validation)), abs=1e-4)
    assert found.test.mean == pytest.approx(np.mean(by_hand(found.config, test)), abs=1e-4)

    ratios = fl.attention_ratios(model, validation, progress=False)
    trajectory = torch.stack([by_hand_ratios[id(x)] for x in validation]).mean(-1).mean(0).tolist()
    costs = {}
    for k in range(1, n_layers):  # squared error of the two-segment fit at every split, by hand
        left, right = trajectory[:k], trajectory[k:]
        costs[k] = sum((v - np.mean(left)) ** 2 for v in left) + sum((v - np.mean(right)) ** 2 for v in right)
    if n_layers > 1 and len(set(np.round(list(costs.values()), 9))) == len(costs):  # a unique best split
        assert fl.change_point(ratios).layer == min(costs, key=costs.get)
