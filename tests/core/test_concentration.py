"""Attention concentration (entropy, variance of rows) against HF eager attention by hand."""

import math

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.references import reference_attentions, reference_query_mask

pytestmark = pytest.mark.contract("concentration")


def concentration_by_hand(reference, inputs, query) -> dict[str, torch.Tensor]:
    """Seed 004 B.2 row by row from output_attentions; visible keys are those with a > 0."""
    attentions = reference_attentions(reference, inputs)
    image_id = reference.config.image_token_id
    image = inputs["input_ids"] == image_id
    qmask = reference_query_mask(query, inputs["input_ids"], inputs["attention_mask"], image_id)
    batch = image.shape[0]
    n_layers, n_heads = len(attentions), attentions[0].shape[1]
    out = {k: torch.zeros(batch, n_layers, n_heads, dtype=torch.float64) for k in fl.concentration.FIELDS}
    for layer, attn in enumerate(attentions):
        for b in range(batch):
            for h in range(n_heads):
                sums = dict.fromkeys(out, 0.0)
                counts = dict.fromkeys(out, 0)
                for i in qmask[b].nonzero().flatten().tolist():
                    row = attn[b, h, i].double()
                    for prefix, keep in (("", row > 0), ("image_", (row > 0) & image[b])):
                        p = row[keep]
                        if len(p) == 0 or float(p.sum()) == 0:
                            continue
                        p = p / p.sum()
                        entropy = -sum(float(x) * math.log(float(x)) for x in p if x > 0)
                        variance = float(((p - 1 / len(p)) ** 2).sum()) / len(p)
                        sums[prefix + "entropy"] += entropy
                        sums[prefix + "variance"] += variance
                        counts[prefix + "entropy"] += 1
                        counts[prefix + "variance"] += 1
                for name in out:
                    out[name][b, layer, h] = sums[name] / counts[name] if counts[name] else float("nan")
    return out


@pytest.mark.parametrize("query", ["all", "last"])
def test_concentration_matches_eager_attention_by_hand(pair, batch, query):
    model, reference = pair
    got = fl.attention_concentration(model, batch, query=query, progress=False)
    expected = concentration_by_hand(reference, batch, query)
    for name, value in expected.items():
        torch.testing.assert_close(getattr(got, name).double(), value, atol=2e-5, rtol=1e-4, msg=name)
    assert got.query == query and got.n_samples == 2


def test_small_blocks_give_the_same_result(monkeypatch):
    from tests.conftest import make_pair

    model, _ = make_pair("qwen2_vl")
    inputs = tiny_inputs(model.hf, batch=2, padded=True)
    whole = fl.attention_concentration(model, inputs, progress=False)
    monkeypatch.setattr(fl.concentration, "BLOCK_ELEMENTS", 1)  # one query row at a time
    rowwise = fl.attention_concentration(model, inputs, progress=False)
    assert whole.allclose(rowwise, atol=1e-6)
    assert torch.isfinite(whole.mean("entropy")).all()


def test_bad_input_is_refused():
    from tests.conftest import make_pair

    model, _ = make_pair("llava")
    with pytest.raises(fl.FacLensError):
        fl.attention_concentration(model, 3)
    with pytest.raises(fl.FacLensError):
        fl.attention_concentration(model, tiny_inputs(model.hf), query="middle")
