"""CGD and AGLA against their equations written by hand, with tiny stand-in scorers built here
(the real ones, CLIP and BLIP-ITM Grad-CAM, are not bundled)."""

import numpy as np
import pytest
import torch

import fac_lens as fl
from fac_lens.baselines import AGLA, CGD
from fac_lens.baselines.agla import mask_image
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair
from tests.core.baseline_references import contrastive_greedy, last_logits
from tests.references import reference_logits

STEPS = 5
ENDS = {i for i in range(400) if i % 4 == 0}  # short "sentences" on random tiny models


class SumScorer:
    """Stand-in for CLIP: a similarity from the words of the text and the image's mean."""

    def score(self, image, texts):
        return torch.tensor(
            [(sum(int(w) for w in t.split()) % 11) / 11 + float(image.float().mean()) for t in texts]
        )


class CornerScorer:
    """Stand-in for BLIP-ITM Grad-CAM: the top-left corner of a 4 x 4 grid is relevant; for BLIP's
    ITC score (AGLA's adaptive kept fraction) a fixed cosine of 0.5."""

    def relevance(self, image, text):
        grid = torch.zeros(4, 4)
        grid[:2, :2] = 1.0
        grid[0, 0] = 2.0
        return grid

    def match(self, image, text):
        return 0.5


class RampScorer:
    """Relevance rising over a 4 x 4 grid (cell value = its index); ITC score 0.6: AGLA keeps
    1 - 0.6 / 2 = 0.7 of the image."""

    def relevance(self, image, text):
        return torch.arange(16, dtype=torch.float32).reshape(4, 4)

    def match(self, image, text):
        return 0.6


class RelevanceOnly:
    def relevance(self, image, text):
        return torch.ones(2, 2)


def decode(ids):
    return " ".join(str(i) for i in ids)


def cgd_by_hand(reference, inputs, image, steps, alpha, n, eos):
    """Sentence-level search recomputed from scratch: top-n first tokens, greedy to a sentence end,
    S = similarity + alpha * mean log p (the official lennorm_sum_log rank score, CLIP weight 1)."""
    accepted = []
    while len(accepted) < steps:
        budget = steps - len(accepted)
        first = last_logits(reference, inputs, torch.tensor([accepted], dtype=torch.long))[0].log_softmax(-1)
        proposals = []
        for token in first.topk(n).indices.tolist():
            tokens, logps = [token], [float(first[token])]
            while len(tokens) < budget and tokens[-1] not in ENDS and tokens[-1] not in eos:
                lp = last_logits(reference, inputs, torch.tensor([accepted + tokens]))[0].log_softmax(-1)
                nxt = int(lp.argmax())
                tokens.append(nxt)
                logps.append(float(lp[nxt]))
            proposals.append((tokens, sum(logps) / len(logps)))
        similarity = SumScorer().score(image, [decode(t) for t, _ in proposals])
        scores = [float(s) + alpha * lp for (_, lp), s in zip(proposals, similarity, strict=True)]
        best = proposals[int(np.argmax(scores))][0]
        accepted += best
        if best[-1] in eos:
            break
    return accepted[:steps]


@pytest.mark.contract("cgd")
def test_cgd_matches_hand_reference(arch, pair):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1)
    image = inputs["pixel_values"]
    eos = model.hf.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    before = reference_logits(reference, inputs)
    expected = cgd_by_hand(reference, inputs, image, STEPS, 0.3, 3, eos)
    method = CGD(scorer=SumScorer(), alpha=0.3, candidates=3)
    out = fl.generate(
        model, inputs, max_new_tokens=STEPS, method=method, images=[image], sentence_end=ENDS, decode=decode
    )
    assert out.new_tokens[0].tolist() == expected
    assert torch.allclose(model.hf(**model.normalize(inputs)).logits, before, atol=1e-4)


def agla_by_hand(alpha, beta):
    def combine(main, local):
        scores = main + alpha * local
        keep = main.softmax(-1) >= beta * main.softmax(-1).max(-1, keepdim=True).values
        return torch.where(keep, scores, torch.full_like(scores, float("-inf")))

    return combine


@pytest.mark.contract("agla")
def test_agla_matches_hand_reference(arch, pair):
    model, reference = pair
    inputs = tiny_inputs(model.hf, batch=1)
    local = dict(
        inputs,
        pixel_values=inputs["pixel_values"]
        * (torch.rand(inputs["pixel_values"].shape, generator=torch.Generator().manual_seed(1)) > 0.5),
    )
    before = reference_logits(reference, inputs)
    expected, gap = contrastive_greedy(reference, [inputs, local], STEPS, agla_by_hand(2.0, 0.05))
    assert gap > 1e-4
    out = fl.generate(
        model, inputs, max_new_tokens=STEPS, method=AGLA(alpha=2.0, beta=0.05), contrast_inputs=local
    )
    assert torch.equal(out.new_tokens, expected)
    assert torch.allclose(model.hf(**model.normalize(inputs)).logits, before, atol=1e-4)


def test_official_defaults():
    assert (CGD().alpha, CGD().candidates) == (0.01, 3)
    assert (AGLA().alpha, AGLA().beta, AGLA().keep) == (2.0, 0.5, None)


def test_agla_adaptive_keep_is_one_minus_half_the_match_score():
    from fac_lens.baselines.agla import adaptive_keep

    assert adaptive_keep(0.6) == pytest.approx(0.7)
    assert adaptive_keep(-1.0) == pytest.approx(1 - 1e-5)  # capped below 1, as officially
    assert adaptive_keep(1.0) == pytest.approx(0.5)
    with pytest.raises(fl.FacLensError, match="match score"):
        adaptive_keep(1.5)
    assert AGLA(scorer=RampScorer()).kept_fraction(None, "q") == pytest.approx(0.7)
    assert AGLA(scorer=RampScorer(), keep=0.25).kept_fraction(None, "q") == 0.25


def test_mask_image_keeps_the_most_relevant_pixels():
    image = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    masked = mask_image(image, CornerScorer().relevance(image, "q"), keep=4 / 64)
    expected = np.zeros_like(image)
    expected[:2, :2] = image[:2, :2]  # the 2 x 2 pixels under the top-left cell (relevance 2)
    assert np.array_equal(masked, expected)
    masked = mask_image(
        torch.tensor(image).permute(2, 0, 1), CornerScorer().relevance(image, "q"), keep=16 / 64
    )
    expected[:4, :4] = image[:4, :4]
    assert torch.equal(masked, torch.tensor(expected).permute(2, 0, 1))


def test_agla_builds_its_local_view_through_the_processor():
    from PIL import Image

    from fac_lens.embedded.train_tiny import build_model, build_processor

    processor = build_processor()
    model = fl.load(build_model(processor, seed=0).eval(), processor=processor)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (56, 56, 3), dtype=np.uint8))
    prompt = "what color is the shape ?"
    inputs = model.prepare([image], [prompt])
    by_hand = np.asarray(image).copy()
    keep = np.zeros((56, 56), dtype=bool)
    keep[:28, :28] = True  # relevance > 0 on the top-left quarter: the half kept is inside it
    masked = mask_image(image, CornerScorer().relevance(image, prompt), keep=0.25)
    by_hand[~keep] = 0
    assert np.array_equal(np.asarray(masked), by_hand)
    explicit = fl.generate(
        model, inputs, max_new_tokens=4, method=AGLA(), contrast_inputs=model.prepare([masked], [prompt])
    )
    scored = fl.generate(
        model,
        inputs,
        max_new_tokens=4,
        method=AGLA(scorer=CornerScorer(), keep=0.25),
        images=[image],
        prompts=[prompt],
    )
    assert torch.equal(explicit.sequences, scored.sequences)
    # keep=None: the official adaptive fraction 1 - s_ITC / 2 = 0.7 from the scorer's match score
    ramp = np.zeros((56, 56), dtype=bool)
    for cell in range(4, 16):  # the 70% most relevant pixels: cells 15..5 (11/16) and, tied, cell 4
        row, col = divmod(cell, 4)
        ramp[row * 14 : (row + 1) * 14, col * 14 : (col + 1) * 14] = True
    by_hand = np.asarray(image).copy()
    by_hand[~ramp] = 0
    kept = AGLA(scorer=RampScorer()).kept_fraction(image, prompt)
    assert np.array_equal(np.asarray(mask_image(image, RampScorer().relevance(image, prompt), kept)), by_hand)
    adaptive = fl.generate(
        model, inputs, max_new_tokens=4, method=AGLA(scorer=RampScorer()), images=[image], prompts=[prompt]
    )
    explicit = fl.generate(
        model,
        inputs,
        max_new_tokens=4,
        method=AGLA(),
        contrast_inputs=model.prepare([Image.fromarray(by_hand)], [prompt]),
    )
    assert torch.equal(adaptive.sequences, explicit.sequences)


def test_scored_methods_name_what_they_need():
    llava, _ = make_pair("llava")
    inputs = tiny_inputs(llava.hf, batch=1)
    with pytest.raises(fl.FacLensError, match="scorer"):
        fl.generate(llava, inputs, max_new_tokens=2, method=CGD())
    with pytest.raises(fl.FacLensError, match="contrast_inputs"):
        fl.generate(llava, inputs, max_new_tokens=2, method=AGLA())
    with pytest.raises(fl.FacLensError, match="relevance"):
        AGLA(scorer=SumScorer())
    with pytest.raises(fl.FacLensError, match="match"):  # keep=None (adaptive) needs match()
        AGLA(scorer=RelevanceOnly())
    AGLA(scorer=RelevanceOnly(), keep=0.5)  # a fixed fraction does not
    with pytest.raises(fl.FacLensError):
        CGD(alpha=-0.5)
