"""PAI against its equations applied by hand inside plain HF eager attention (full recomputation)."""

import pytest
import torch

import fac_lens as fl
from fac_lens.baselines import PAI
from fac_lens.baselines.attention_edit import EDIT_ATTR
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair
from tests.core.baseline_references import contrastive_greedy, edited_view
from tests.references import reference_logits

STEPS = 4


@pytest.fixture(scope="module")
def llava():
    return make_pair("llava")


def pai_edit(alpha: float, layers: range, n_prompt: int):
    """a + alpha |a| on image keys, for the rows PAI edits: with a KV cache every token is the last
    query of its own pass, so in a full recomputation the rows from the last prompt token on."""

    def edit(layer, stage, tensor, image):
        if stage != "scores" or layer not in layers:
            return tensor
        out = tensor.clone()
        rows = slice(n_prompt - 1, None)
        out[:, :, rows] = tensor[:, :, rows] + alpha * tensor[:, :, rows].abs() * image[:, None, None, :]
        return out

    return edit


def text_only_by_hand(inputs: dict, image_token_id: int) -> dict:
    ids = inputs["input_ids"][inputs["input_ids"] != image_token_id][None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def guidance_by_hand(gamma: float, beta: float):
    """The official CFG.py: guidance on log-probabilities, -inf where log p(y|v,x) < log beta + max."""

    def combine(main, text):
        lp, lq = torch.log_softmax(main, -1), torch.log_softmax(text, -1)
        out = lq + gamma * (lp - lq)
        cutoff = torch.log(torch.tensor(beta)) + lp.max(-1, keepdim=True).values
        return out.masked_fill(lp < cutoff, float("-inf"))

    return combine


@pytest.mark.contract("pai")
def test_pai_matches_hand_reference(arch, pair):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1)
    n_prompt = inputs["input_ids"].shape[1]
    before = reference_logits(reference, inputs)
    method = PAI(alpha=2.0, start=1, end=None, gamma=1.5, beta=0.2)
    edit = pai_edit(2.0, range(1, model.n_layers), n_prompt)
    text = text_only_by_hand(inputs, reference.config.image_token_id)
    views = [edited_view(reference, inputs, edit), lambda tokens: _plain(reference, text, tokens)]
    expected, gap = contrastive_greedy(reference, views, STEPS, guidance_by_hand(1.5, 0.2))
    assert gap > 1e-4
    out = fl.generate(model, inputs, max_new_tokens=STEPS, method=method)
    assert torch.equal(out.new_tokens, expected)
    after = model.hf(**model.normalize(inputs)).logits
    assert torch.equal(after, model.hf(**model.normalize(inputs)).logits)
    assert torch.allclose(after, before, atol=1e-4)
    assert not any(EDIT_ATTR in m.__dict__ for m in model.attention_modules)


def _plain(reference, inputs, tokens):
    from tests.core.baseline_references import last_logits

    return last_logits(reference, inputs, tokens)


@pytest.mark.contract("pai")
def test_pai_attention_edit_alone(arch, pair):
    """gamma = 1: the attention edit only; the logits of the prompt's forward match by hand."""
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1)
    n_prompt = inputs["input_ids"].shape[1]
    edit = pai_edit(1.0, range(0, 2), n_prompt)
    expected, gap = contrastive_greedy(reference, [edited_view(reference, inputs, edit)], STEPS, lambda x: x)
    assert gap > 1e-4
    out = fl.generate(model, inputs, max_new_tokens=STEPS, method=PAI(alpha=1.0, start=0, end=2, gamma=1.0))
    assert torch.equal(out.new_tokens, expected)


def test_official_defaults():
    method = PAI()
    assert (method.alpha, method.gamma, method.beta) == (0.2, 1.1, 0.1)
    from fac_lens.baselines.pai import PAPER_LAYERS

    assert PAPER_LAYERS == (2, 32)


def test_guidance_is_cut_to_the_plausible_set():
    """A token the guidance favours but the image prompt finds implausible (p < beta max p) is cut."""
    from fac_lens.baselines.pai import guidance_scores

    main = torch.tensor([[4.0, 2.0, -1.0, 0.0]])  # token 2 is implausible under beta = 0.1
    text = torch.tensor([[4.0, 2.0, -9.0, 0.0]])  # ... but far more likely with the image than without
    unguarded = guidance_by_hand(3.0, 1e-12)(main, text)
    assert int(unguarded.argmax()) == 2
    scores = guidance_scores(main, text, 3.0, 0.1)
    assert torch.allclose(scores, guidance_by_hand(3.0, 0.1)(main, text))
    assert torch.isinf(scores[0, 2]) and int(scores.argmax()) == 0
    generator = torch.Generator().manual_seed(0)
    main, text = torch.randn(3, 50, generator=generator) * 3, torch.randn(3, 50, generator=generator) * 3
    assert torch.allclose(guidance_scores(main, text, 1.1), guidance_by_hand(1.1, 0.1)(main, text))


def test_pai_applied_is_bit_identical_after_and_on_error(llava):
    model, _ = llava
    inputs = model.normalize(tiny_inputs(model.hf, batch=1))
    before = model.hf(**inputs).logits
    with pytest.raises(RuntimeError), PAI(alpha=1.0, start=0).applied(model):
        edited = model.hf(**inputs).logits
        assert not torch.allclose(edited, before)
        raise RuntimeError("boom")
    assert torch.equal(model.hf(**inputs).logits, before)
    assert not any(EDIT_ATTR in m.__dict__ for m in model.attention_modules)


@pytest.mark.parametrize(
    "bad",
    [
        dict(alpha=-0.1),
        dict(start=5, end=3),
        dict(start=0, end=99),
        dict(gamma=-1),
        dict(beta=0),
        dict(beta=2),
    ],
)
def test_pai_refuses_bad_settings(llava, bad):
    model, _ = llava
    inputs = tiny_inputs(model.hf, batch=1)
    with pytest.raises(fl.FacLensError):
        fl.generate(model, inputs, max_new_tokens=2, method=PAI(**bad))
