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
from tests.core.baseline_references import contrastive_greedy, edited_view
from tests.references import reference_logits

STEPS = 4


@pytest.fixture(scope="module")
def llava():
    return make_pair("llava")


def vaf_edit(alpha, beta, layers, system):
    """z + alpha|z| on image keys, z - beta|z| on system keys, all rows, in ``layers``."""

    def edit(layer, stage, z, image):
        if stage != "scores" or layer not in layers:
            return z
        sys_keys = torch.zeros(image.shape)
        sys_keys[:, : system.shape[1]] = system
        sys_keys = sys_keys[:, -z.shape[-1] :]
        return z + alpha * z.abs() * image[:, None, None] - beta * z.abs() * sys_keys[:, None, None]

    return edit


def midlayer_edit(alpha, top_k, layers, n_prompt):
    """Rows from the last prompt token on (each one the last query of its pass under a KV cache):
    a_h += alpha * mean over guide heads of a_g, on image keys."""

    def edit(layer, stage, a, image):
        if stage != "weights" or layer not in layers:
            return a
        out = a.clone()
        for row in range(n_prompt - 1, a.shape[2]):
            img = a[:, :, row, :] * image[:, None, :]  # [B, H, K]
            for b in range(a.shape[0]):
                heads = list(range(a.shape[1]))
                if top_k is not None:
                    heads = sorted(heads, key=lambda h: -float(img[b, h].sum()))[:top_k]
                guide = sum(img[b, h] for h in heads) / len(heads)
                out[b, :, row, :] = a[b, :, row, :] + alpha * guide
        return out

    return edit


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
    from fac_lens.baselines.layers import resolve_layers

    assert resolve_layers("VAF", None, None, (8, 15), 32) == range(8, 15)
    assert resolve_layers("VAF", None, None, (8, 15), 2) == range(0, 1)
    with pytest.raises(fl.FacLensError, match="layers"):
        resolve_layers("VAF", 3, 99, (8, 15), 4)


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
