"""The same reference checks on larger configs and longer sequences (``pytest -m slow``)."""

import copy

import pytest
import torch

import fac_lens as fl
from fac_lens.testing import QWEN_IMAGE, QWEN_VISION_END, QWEN_VISION_START, tiny_qwen2_5_vl
from tests.references import dynamic_reference, reference_logits, reference_ratios

pytestmark = pytest.mark.slow


def long_batch(grid_sizes=((1, 12, 16), (1, 16, 20))) -> dict:
    """Prompts with images of the given grid sizes (48 and 80 tokens by default), left-padded."""
    generator = torch.Generator().manual_seed(0)
    rows, pixels = [], []
    for t, h, w in grid_sizes:
        n = t * h * w
        pixels.append(torch.randn(n, 3 * 2 * 14 * 14, generator=generator))
        text = torch.randint(3, 250, (40,), generator=generator).tolist()
        rows.append(text[:20] + [QWEN_VISION_START] + [QWEN_IMAGE] * (n // 4) + [QWEN_VISION_END] + text[20:])
    length = max(map(len, rows))
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, row in enumerate(rows):
        ids[b, length - len(row) :] = torch.tensor(row)
        mask[b, length - len(row) :] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "pixel_values": torch.cat(pixels),
        "image_grid_thw": torch.tensor(grid_sizes),
    }  # pixel_values are cast to the model dtype


@pytest.fixture(scope="module")
def larger():
    """float64: over 8 sharp random layers, float32 rounding differences between SDPA and eager
    kernels grow to ~2e-5 in a single-query ratio; in float64 the comparison tests the math."""
    hf = tiny_qwen2_5_vl(seed=1, n_layers=8, n_heads=8, n_kv_heads=2, d_head=32, dtype=torch.float64)
    reference = copy.deepcopy(hf)
    reference.config.text_config._attn_implementation = "eager"
    reference.config.vision_config._attn_implementation = "eager"
    return fl.load(hf), reference


@pytest.mark.parametrize("query", ["all", "last", "text"])
def test_ratios_on_a_larger_model_and_longer_prompts(larger, query):
    """One prompt per forward (HF's float64 eager attention turns left padding into NaN)."""
    model, reference = larger
    prompts = [long_batch((grid,)) for grid in ((1, 12, 16), (1, 16, 20))]
    expected = torch.cat([reference_ratios(reference, p, query) for p in prompts])
    for method in ("indicator", "pattern"):
        got = fl.attention_ratios(model, prompts, query=query, method=method, progress=False)
        torch.testing.assert_close(got.per_sample.double(), expected, atol=1e-5, rtol=0)


def test_dynamic_on_a_larger_model(larger):
    model, reference = larger
    inputs = long_batch(((1, 12, 16),))
    cfg = dict(l_perc=3, l_reas=4, tau_perc=0.5, tau_reas=0.2, g_perc=1.4, g_reas=1.3)
    with dynamic_reference(reference, inputs["input_ids"], cfg, "last") as margins:
        expected = reference_logits(reference, inputs)
    assert min(margins) > 1e-4
    with torch.no_grad(), fl.rescale(model, fl.FacConfig(**cfg, query="last")):
        got = model.forward(inputs).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
