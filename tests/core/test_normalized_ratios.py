"""Ratios normalised by the share of image keys, against HF eager attention by hand."""

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import tiny_inputs
from tests.references import reference_attentions, reference_query_mask

pytestmark = pytest.mark.contract("normalized ratio")


def normalized_by_hand(reference, inputs, query) -> torch.Tensor:
    """mean over query rows (that see an image key) of mass_i / (visible image keys / visible keys)."""
    attentions = reference_attentions(reference, inputs)
    image_id = reference.config.image_token_id
    image = inputs["input_ids"] == image_id
    qmask = reference_query_mask(query, inputs["input_ids"], inputs["attention_mask"], image_id)
    batch = image.shape[0]
    out = torch.zeros(batch, len(attentions), attentions[0].shape[1], dtype=torch.float64)
    for layer, attn in enumerate(attentions):
        for b in range(batch):
            for h in range(attn.shape[1]):
                values = []
                for i in qmask[b].nonzero().flatten().tolist():
                    row = attn[b, h, i].double()
                    visible = row > 0
                    n_image = int((visible & image[b]).sum())
                    if n_image:
                        share = n_image / int(visible.sum())
                        values.append(float(row[image[b]].sum()) / share)
                out[b, layer, h] = sum(values) / len(values)
    return out


@pytest.mark.parametrize("query", ["all", "last"])
def test_image_share_normalisation_matches_by_hand(pair, batch, query):
    model, reference = pair
    got = fl.attention_ratios(model, batch, query=query, normalize="image_share", progress=False)
    torch.testing.assert_close(
        got.per_sample.double(), normalized_by_hand(reference, batch, query), atol=1e-4, rtol=1e-5
    )
    assert got.normalize == "image_share"


def test_identification_runs_on_normalised_ratios(pair, batch):
    model, _ = pair
    ratios = fl.attention_ratios(model, batch, normalize="image_share", progress=False)
    visual = ratios.visual
    tau_perc = float(visual[:2].max()) * 0.9  # may exceed 1 on this scale
    sel = fl.identify_heads(ratios, l_perc=1, l_reas=1, tau_perc=tau_perc, tau_reas=0.5)
    layer = torch.arange(model.n_layers)[:, None]
    assert torch.equal(sel.perception, (layer <= 1) & (visual >= tau_perc))
    assert torch.equal(sel.reasoning, (layer >= 1) & (visual <= 0.5))
    assert sel.counts["perception"] >= 1


def test_refusals():
    from tests.conftest import make_pair

    model, _ = make_pair("llava")
    inputs = tiny_inputs(model.hf)
    with pytest.raises(fl.FacLensError):
        fl.attention_ratios(model, inputs, normalize="tokens")
    with pytest.raises(fl.FacLensError):
        fl.attention_ratios(model, inputs, normalize="image_share", method="pattern")
    raw = fl.attention_ratios(model, inputs, progress=False)
    with pytest.raises(fl.FacLensError):
        fl.identify_heads(raw, 1, 1, tau_perc=1.5, tau_reas=0.1)  # raw ratios stay in [0, 1]
    normalized = fl.attention_ratios(model, inputs, normalize="image_share", progress=False)
    with pytest.raises(fl.FacLensError):
        _ = normalized.text
    with pytest.raises(fl.FacLensError):
        fl.HeadRatios.concat([raw, normalized])
