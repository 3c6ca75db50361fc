"""Head identification (eq. 5), gains (eq. 6, Appendix B) and presets, against loops by hand."""

import pytest
import torch

import fac_lens as fl


def hand_selection(visual, l_perc, l_reas, tau_perc, tau_reas):
    n_layers, n_heads = visual.shape
    perc = torch.zeros(n_layers, n_heads, dtype=torch.bool)
    reas = torch.zeros(n_layers, n_heads, dtype=torch.bool)
    for layer in range(n_layers):
        for head in range(n_heads):
            value = float(visual[layer, head])
            perc[layer, head] = layer <= l_perc and value >= tau_perc
            reas[layer, head] = layer >= l_reas and value <= tau_reas
    return perc, reas


@pytest.mark.parametrize(
    "l_perc,l_reas", [(3, 5), (5, 3), (4, 4), (0, 7), (7, 0)], ids=["gap", "overlap", "touch", "edges", "all"]
)
def test_identify_matches_hand_loop(l_perc, l_reas):
    visual = torch.rand(8, 6, generator=torch.Generator().manual_seed(1))
    sel = fl.identify_heads(visual, l_perc=l_perc, l_reas=l_reas, tau_perc=0.6, tau_reas=0.3)
    perc, reas = hand_selection(visual, l_perc, l_reas, 0.6, 0.3)
    assert torch.equal(sel.perception, perc) and torch.equal(sel.reasoning, reas)
    assert sel.counts["perception"] == int(perc.sum())
    assert sel.counts["reasoning"] == int(reas.sum())
    assert sel.counts["unlabeled"] == 48 - int((perc | reas).sum())
    assert sel.fractions["perception"] == pytest.approx(int(perc.sum()) / 48)
    assert torch.equal(sel.per_layer()["reasoning"], reas.sum(1))


def test_identify_from_head_ratios_uses_sample_mean():
    per_sample = torch.rand(5, 4, 3, generator=torch.Generator().manual_seed(2))
    ratios = fl.HeadRatios(per_sample)
    sel = fl.identify_heads(ratios, l_perc=1, l_reas=2, tau_perc=0.5, tau_reas=0.5)
    perc, reas = hand_selection(per_sample.mean(0), 1, 2, 0.5, 0.5)
    assert torch.equal(sel.perception, perc) and torch.equal(sel.reasoning, reas)


def test_thresholds_are_inclusive():
    visual = torch.tensor([[0.22, 0.2199], [0.01, 0.0101]])
    sel = fl.identify_heads(visual, l_perc=0, l_reas=1, tau_perc=0.22, tau_reas=0.01)
    assert sel.perception.tolist() == [[True, False], [False, False]]
    assert sel.reasoning.tolist() == [[False, False], [True, False]]


def hand_gains(sel, g_perc, g_reas, strategy, beta):
    n_layers, n_heads = sel.perception.shape
    out = torch.ones(n_layers, n_heads)
    for layer in range(n_layers):
        in_band = layer <= sel.l_perc or layer >= sel.l_reas
        for head in range(n_heads):
            p, r = bool(sel.perception[layer, head]), bool(sel.reasoning[layer, head])
            enhanced = (g_perc if p else 1.0) * (g_reas if r else 1.0)
            if strategy == "A":
                out[layer, head] = enhanced
            elif strategy == "B":
                out[layer, head] = beta if (in_band and not (p or r)) else 1.0
            elif strategy == "C":
                out[layer, head] = enhanced if (p or r) else beta
            else:
                out[layer, head] = enhanced if (p or r) else (beta if in_band else 1.0)
    return out


@pytest.mark.parametrize("strategy", ["A", "B", "C", "D"])
def test_strategies_match_appendix_b(strategy):
    visual = torch.rand(8, 4, generator=torch.Generator().manual_seed(3))
    sel = fl.identify_heads(visual, l_perc=2, l_reas=5, tau_perc=0.5, tau_reas=0.4)
    gains = fl.Gains.from_selection(sel, g_perc=1.16, g_reas=1.3, strategy=strategy, beta=0.7)
    torch.testing.assert_close(gains.values, hand_gains(sel, 1.16, 1.3, strategy, 0.7))
    if strategy == "A":  # eq. 6 verbatim
        eq6 = (
            1.16 * sel.perception.float()
            + 1.3 * sel.reasoning.float()
            + 1.0 * (~(sel.perception | sel.reasoning)).float()
        )
        torch.testing.assert_close(gains.values, eq6)


def test_one_class_ablations():
    visual = torch.rand(8, 4, generator=torch.Generator().manual_seed(4))
    sel = fl.identify_heads(visual, l_perc=3, l_reas=4, tau_perc=0.5, tau_reas=0.4)
    only_perc = fl.Gains.from_selection(sel, 1.2, 1.4, target="perception").values
    only_reas = fl.Gains.from_selection(sel, 1.2, 1.4, target="reasoning").values
    assert torch.equal(only_perc, torch.where(sel.perception, 1.2, 1.0))
    assert torch.equal(only_reas, torch.where(sel.reasoning, 1.4, 1.0))


def test_presets_are_table_5():
    ocean = fl.FacConfig.preset("Ocean-R1-7B-Instruct")
    assert (ocean.l_reas, ocean.tau_reas, ocean.g_reas) == (3, 0.01, 1.30)
    assert (ocean.l_perc, ocean.tau_perc, ocean.g_perc) == (7, 0.22, 1.16)
    kimi = fl.FacConfig.preset("kimi-vl")
    assert (kimi.l_reas, kimi.tau_reas, kimi.g_reas, kimi.l_perc, kimi.tau_perc, kimi.g_perc) == (
        5,
        0.01,
        1.40,
        10,
        0.27,
        1.20,
    )
    r1 = fl.FacConfig.preset("r1 onevision")
    assert (r1.l_reas, r1.tau_reas, r1.g_reas, r1.l_perc, r1.tau_perc, r1.g_perc) == (
        3,
        0.01,
        1.30,
        7,
        0.30,
        1.20,
    )
    assert fl.FacConfig.preset("ocean-r1", g_perc=1.0).g_perc == 1.0
    assert set(fl.FacConfig.presets()) == {"Kimi-VL-A3B-Thinking", "Ocean-R1-7B-Instruct", "R1-Onevision"}
    with pytest.raises(fl.FacLensError, match="presets"):
        fl.FacConfig.preset("llama")


def test_config_gains_equal_selection_gains():
    visual = torch.rand(8, 4, generator=torch.Generator().manual_seed(5))
    ratios = fl.HeadRatios(visual[None])
    cfg = fl.FacConfig(l_perc=3, l_reas=4, tau_perc=0.5, tau_reas=0.3, g_perc=1.1, g_reas=1.2, strategy="D")
    sel = fl.identify_heads(ratios, 3, 4, 0.5, 0.3)
    assert torch.equal(cfg.gains(ratios).values, fl.Gains.from_selection(sel, 1.1, 1.2, "D", cfg.beta).values)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(l_perc=8, l_reas=2, tau_perc=0.5, tau_reas=0.1), "l_perc=8"),
        (dict(l_perc=2, l_reas=-1, tau_perc=0.5, tau_reas=0.1), "l_reas=-1"),
        (dict(l_perc=2, l_reas=3, tau_perc=1.5, tau_reas=0.1), "tau_perc=1.5"),
        (dict(l_perc=2, l_reas=3, tau_perc=0.5, tau_reas=-0.1), "tau_reas=-0.1"),
    ],
)
def test_bad_boundaries_and_thresholds(kwargs, match):
    with pytest.raises(fl.FacLensError, match=match):
        fl.identify_heads(torch.rand(8, 4), **kwargs)


def test_bad_gains_and_shapes():
    with pytest.raises(fl.FacLensError, match="> 0"):
        fl.Gains(torch.tensor([[1.0, 0.0]]))
    with pytest.raises(fl.FacLensError, match="> 0"):
        fl.FacConfig(l_perc=1, l_reas=2, tau_perc=0.5, tau_reas=0.1, g_perc=-1.0)
    with pytest.raises(fl.FacLensError, match="n_layers, n_heads"):
        fl.Gains(torch.ones(3))
    with pytest.raises(fl.FacLensError, match="strategy"):
        fl.FacConfig(l_perc=1, l_reas=2, tau_perc=0.5, tau_reas=0.1, strategy="E")
    with pytest.raises(fl.FacLensError, match="n_layers, n_heads"):
        fl.identify_heads(torch.rand(2, 3, 4), 0, 1, 0.5, 0.5)
