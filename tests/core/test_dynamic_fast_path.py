"""The dynamic mode's per-step fast path against hand-written formulas.

A decoding step's visual mass comes from its one query's scores (``single_query_mass``) instead of
an SDPA value pass, and strategy A's gains from two ``where`` calls per layer; both are compared
with the definitions written out here in float64 (eq. 4's mass, eq. 6's gains).
"""

import pytest
import torch

import fac_lens as fl
from fac_lens.attention_probe import single_query_mass, visual_mass
from fac_lens.rescale import RescaleHandle, _DynamicState
from tests.conftest import make_pair


def hand_mass(q, k, mask, scale, image) -> torch.Tensor:
    """sum_{j in image} softmax_j(q . k_j * scale + mask_j), float64, GQA by repeating keys. [B, 1, H]."""
    q, k = q.double(), k.double()
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, dim=1)
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * scale
    if mask is not None:
        scores = (
            scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.double()
        )
    probs = torch.softmax(scores, -1)
    return (probs * image.double()[:, None, None, :]).sum(-1).transpose(1, 2)


@pytest.mark.parametrize("mask_kind", ["none", "bool", "additive"])
@pytest.mark.parametrize("heads, kv_heads", [(8, 8), (8, 2)])
def test_single_query_mass_is_the_softmax_mass_on_image_keys(mask_kind, heads, kv_heads):
    g = torch.Generator().manual_seed(0)
    batch, n_key, dim = 2, 37, 16
    q = torch.randn(batch, heads, 1, dim, generator=g) * 2
    k = torch.randn(batch, kv_heads, n_key, dim, generator=g) * 2
    image = (torch.rand(batch, n_key, generator=g) < 0.4).float()
    allowed = torch.rand(batch, 1, 1, n_key, generator=g) < 0.7
    allowed[..., -1] = True
    mask = {"none": None, "bool": allowed, "additive": torch.where(allowed, 0.0, -1e9)}[mask_kind]
    scale = 0.3
    got = single_query_mass(q, k, mask, scale, image)
    torch.testing.assert_close(got.double(), hand_mass(q, k, mask, scale, image), atol=1e-6, rtol=0)
    # and visual_mass takes the same path for a one-row pass (default scale 1/sqrt(D))
    module = torch.nn.Module()
    expected = hand_mass(q, k, mask, dim**-0.5, image)
    torch.testing.assert_close(
        visual_mass(module, q, k, mask, None, image).double(), expected, atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("target", ["both", "perception", "reasoning"])
def test_strategy_a_gains_per_layer_are_eq_6(target):
    """For every layer position relative to the bands: gains = g_perc on perception heads,
    g_reas on reasoning heads, their product on a head in both, 1 elsewhere; None means all 1."""
    model, _ = make_pair("qwen2_5_vl")
    cfg = fl.FacConfig(
        l_perc=1, l_reas=2, tau_perc=0.25, tau_reas=0.625, g_perc=1.16, g_reas=1.3, target=target
    )
    state = _DynamicState(model, cfg, RescaleHandle(config=cfg))
    visual = torch.tensor(
        [[0.0, 0.2499, 0.25, 0.45, 0.625, 0.6251, 1.0, float("nan")]]
    )  # thresholds exact in float32
    for layer in range(model.n_layers):
        perc = layer <= cfg.l_perc and target != "reasoning"
        reas = layer >= cfg.l_reas and target != "perception"
        expected = []
        for v in visual[0].tolist():
            gain = 1.0
            if perc and v >= cfg.tau_perc:
                gain *= torch.tensor(cfg.g_perc, dtype=torch.float32).item()
            if reas and v <= cfg.tau_reas:
                gain *= torch.tensor(cfg.g_reas, dtype=torch.float32).item()
            expected.append(gain)
        got = state._layer_gains(layer)(visual)
        if got is None:
            assert all(g == 1.0 for g in expected), layer
        else:
            assert got.dtype == torch.float32
            torch.testing.assert_close(got[0], torch.tensor(expected, dtype=torch.float32), atol=0, rtol=0)


@pytest.mark.parametrize("strategy", ["A", "C"])
def test_recording_only_the_bands_generates_the_same_tokens(strategy):
    """record="bands" skips S_v between the bands, whose gains never depend on it: the same tokens
    and the same S_v inside the bands, NaN between them (every pass: prefill and decoding)."""
    model, _ = make_pair("qwen2_5_vl")
    assert model.n_layers >= 3
    cfg = fl.FacConfig(
        l_perc=0,
        l_reas=model.n_layers - 1,
        tau_perc=0.2,
        tau_reas=0.5,
        g_perc=1.5,
        g_reas=0.7,
        strategy=strategy,
        beta=0.8,
    )
    from fac_lens.testing import tiny_inputs

    inputs = tiny_inputs(model.hf)
    every = fl.generate(model, inputs, max_new_tokens=5, fac=cfg)
    bands = fl.generate(model, inputs, max_new_tokens=5, fac=cfg, record="bands")
    assert torch.equal(every.sequences, bands.sequences)
    full, partial = every.rescale.pass_ratios, bands.rescale.pass_ratios
    assert len(full) == len(partial) == 5
    between = slice(1, model.n_layers - 1)
    for a, b in zip(full, partial, strict=True):
        assert torch.equal(a[:, [0, -1]], b[:, [0, -1]])
        assert b[:, between].isnan().all() and not a[:, between].isnan().any()


def test_record_must_be_all_or_bands():
    model, _ = make_pair("llava")
    cfg = fl.FacConfig(l_perc=0, l_reas=1, tau_perc=0.2, tau_reas=0.5)
    from fac_lens.testing import tiny_inputs

    with pytest.raises(fl.FacLensError, match="record="):
        fl.generate(model, tiny_inputs(model.hf), max_new_tokens=2, fac=cfg, record="some")
    with pytest.raises(fl.FacLensError, match="record="):
        with fl.rescale(model, cfg, record="none"):
            pass


def test_a_layer_whose_attention_bypasses_fac_lens_is_reported():
    """The gains are applied inside fac_lens's attention function: a layer whose attention ran
    elsewhere (so got no gains) makes the block raise instead of silently returning vanilla."""
    from fac_lens.attention_probe import PROBE_ATTR
    from fac_lens.testing import tiny_inputs

    model, _ = make_pair("llava")
    cfg = fl.FacConfig(l_perc=0, l_reas=1, tau_perc=0.2, tau_reas=0.5)
    inputs = model.normalize(tiny_inputs(model.hf))
    with pytest.raises(RuntimeError, match="layer 1: no gains"):
        with torch.no_grad(), fl.rescale(model, cfg):
            module = model.attention_modules[1]
            setattr(module, PROBE_ATTR, ())  # as if layer 1 ran another attention function
            model.hf(**inputs)
    assert PROBE_ATTR not in model.attention_modules[1].__dict__
