"""VAF/ClearSight and the heads-guided middle-layer method against their equations applied by hand
inside plain HF eager attention (full recomputation, no KV cache)."""

import pytest
import torch

import fac_lens as fl
from fac_lens.baselines import VAF, MidLayer
from fac_lens.baselines.attention_edit import EDIT_ATTR
from fac_lens.baselines.vaf import system_mask_from_prefix, template_prefix
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair
from tests.core.baseline_references import contrastive_greedy, edited_view, midlayer_edit, vaf_edit
from tests.references import reference_logits

STEPS = 4


@pytest.fixture(scope="module")
def llava():
    return make_pair("llava")


@pytest.mark.contract("vaf")
def test_vaf_matches_hand_reference(arch, pair):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1)
    system = torch.zeros(inputs["input_ids"].shape)
    system[:, :2] = 1  # the first two prompt tokens play the system prompt
    before = reference_logits(reference, inputs)
    layers = range(0, model.n_layers)
    edit = vaf_edit(0.8, 0.5, layers, system)
    expected, gap = contrastive_greedy(reference, [edited_view(reference, inputs, edit)], STEPS, lambda x: x)
    assert gap > 1e-4
    method = VAF(alpha=0.8, beta=0.5, start=0, end=model.n_layers)
    out = fl.generate(model, inputs, max_new_tokens=STEPS, method=method, system_mask=system)
    assert torch.equal(out.new_tokens, expected)
    assert torch.allclose(model.hf(**model.normalize(inputs)).logits, before, atol=1e-4)
    assert not any(EDIT_ATTR in m.__dict__ for m in model.attention_modules)


@pytest.mark.contract("midlayer")
@pytest.mark.parametrize("top_k", [None, 1])
def test_midlayer_matches_hand_reference(arch, pair, top_k):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1)
    before = reference_logits(reference, inputs)
    layers = range(0, model.n_layers)
    edit = midlayer_edit(3.0, top_k, layers, inputs["input_ids"].shape[1])
    expected, gap = contrastive_greedy(reference, [edited_view(reference, inputs, edit)], STEPS, lambda x: x)
    assert gap > 1e-4
    method = MidLayer(alpha=3.0, top_k=top_k, start=0, end=model.n_layers)
    out = fl.generate(model, inputs, max_new_tokens=STEPS, method=method)
    assert torch.equal(out.new_tokens, expected)
    assert torch.allclose(model.hf(**model.normalize(inputs)).logits, before, atol=1e-4)
    assert not any(EDIT_ATTR in m.__dict__ for m in model.attention_modules)


def test_default_layers_scale_to_depth(llava):
    from fac_lens.baselines import midlayer, vaf
    from fac_lens.baselines.layers import resolve_layers

    assert vaf.PAPER_LAYERS == (9, 15)  # official: layers i with 8 < i < 15
    assert midlayer.PAPER_LAYERS == (5, 19)  # official: --guide-range 5,18, end inclusive
    assert resolve_layers("VAF", None, None, vaf.PAPER_LAYERS, 32) == range(9, 15)
    assert resolve_layers("MidLayer", None, None, midlayer.PAPER_LAYERS, 32) == range(5, 19)
    assert resolve_layers("VAF", None, None, vaf.PAPER_LAYERS, 2) == range(1, 2)
    with pytest.raises(fl.FacLensError, match="layers"):
        resolve_layers("VAF", 3, 99, vaf.PAPER_LAYERS, 4)


def test_official_defaults():
    assert (VAF().alpha, VAF().beta) == (0.15, 0.05)  # enh_para 1.15, sup_para 0.95
    assert (MidLayer().alpha, MidLayer().top_k) == (0.5, None)


def test_vaf_edit_is_multiplicative_on_rows_after_the_image():
    """No absolute value: a negative image score becomes more negative; rows up to the last image
    token are untouched; a generated token's row (one query, KV cache) is edited."""
    from fac_lens.baselines.attention_edit import Keys
    from fac_lens.baselines.vaf import Amplify

    image = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]])
    system = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    z = torch.tensor([[-2.0, 3.0, -1.0, 4.0, 5.0, -6.0]]).expand(6, 6)[None, None]  # [1, 1, 6, 6]
    out = Amplify(0.5, 0.25).scores(z.clone(), Keys(image, system))
    edited = torch.tensor([-1.5, 2.25, -1.5, 6.0, 5.0, -6.0])
    assert torch.equal(out[0, 0, :4], z[0, 0, :4])  # rows 0..3: up to the last image token
    assert torch.equal(out[0, 0, 4], edited) and torch.equal(out[0, 0, 5], edited)
    step = Amplify(0.5, 0.25).scores(z[:, :, -1:].clone(), Keys(image, system))
    assert torch.equal(step[0, 0, 0], edited)


def test_midlayer_edits_pre_softmax_last_row_with_mean_abs_over_heads():
    from fac_lens.baselines.attention_edit import Keys
    from fac_lens.baselines.midlayer import HeadsGuided

    image = torch.tensor([[0.0, 1.0, 1.0]])
    z = torch.tensor([[[1.0, -2.0, 4.0], [3.0, 6.0, -2.0]]])[:, :, None].expand(1, 2, 2, 3).clone()
    out = HeadsGuided(0.5, None).scores(z.clone(), Keys(image, torch.zeros_like(image)))
    assert torch.equal(out[:, :, 0], z[:, :, 0])  # only the last query row
    assert torch.equal(out[0, :, 1], torch.tensor([[1.0, 0.0, 5.5], [3.0, 8.0, -0.5]]))
    top = HeadsGuided(0.5, 1).scores(z.clone(), Keys(image, torch.zeros_like(image)))
    assert torch.equal(top[0, :, 1], torch.tensor([[1.0, 1.0, 5.0], [3.0, 9.0, -1.0]]))  # head 1: 8 > 6


def test_template_prefix_is_the_templates_system_part():
    from fac_lens.embedded.train_tiny import build_processor

    processor = build_processor()
    prefix = template_prefix(processor)
    words = processor.tokenizer.convert_ids_to_tokens(prefix)
    assert words == ["<|im_start|>", "user"]  # fac-tiny's template has no system text
    ids = torch.tensor([[0, 0, *prefix, 5, 6]])
    mask = system_mask_from_prefix(ids, torch.tensor([[0, 0, 1, 1, 1, 1]]), prefix)
    assert mask.tolist() == [[0, 0, 1, 1, 0, 0]]


def test_vaf_without_template_names_the_fix(llava):
    model, _ = llava
    with pytest.raises(fl.FacLensError, match="system_mask"):
        fl.generate(model, tiny_inputs(model.hf, batch=1), max_new_tokens=2, method=VAF(start=0, end=1))


@pytest.mark.parametrize("bad", [dict(alpha=-1), dict(beta=2.0)])
def test_vaf_refuses_bad_settings(bad):
    with pytest.raises(fl.FacLensError):
        VAF(**bad)


def test_midlayer_refuses_bad_top_k():
    with pytest.raises(fl.FacLensError):
        MidLayer(top_k=0)
