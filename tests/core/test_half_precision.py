"""bfloat16 and float16 models against a float32 plain-HF reference, with stated tolerances.

fac_lens reduces in float32 (the indicator pass, gains times head outputs, log-softmax, gates), so
what remains is the model's own half-precision rounding, which the tolerances below bound:
bfloat16 keeps 8 significant bits (2^-9 ~ 2e-3 relative per rounding), float16 11 bits (2^-12 ~
2.4e-4) but a narrow range. The numbers measured on the tiny models are in each comment.
"""

import copy

import pytest
import torch

import fac_lens as fl
from fac_lens.errors import FacLensError
from fac_lens.testing import BUILDERS, tiny_inputs
from tests.core.test_contribution import hand_gate_gradient
from tests.references import gated, reference_logits, reference_ratios

FAST = ("qwen2_5_vl", "gemma3", "kimi_k25", "llava")
DTYPES = [
    pytest.param(torch.bfloat16, id="bf16"),
    pytest.param(torch.float16, id="fp16"),
]
# S_v is a mass in [0, 1]: rounding of q, k and hidden states moves it by at most 4.5e-3 (bf16) and
# 1e-3 (fp16) on these models; 4x margins.
RATIO_ATOL = {torch.bfloat16: 2e-2, torch.float16: 4e-3}
# Logits after a few layers of half-precision activations: max error / max |logit| measured 6%
# (bf16) and 0.9% (fp16); bounds relative to the largest logit.
LOGIT_REL = {torch.bfloat16: 0.15, torch.float16: 0.03}
# Gate gradients run back through every half-precision activation: max error / max |grad|
# measured 9% (bf16) and 0.8% (fp16).
GRAD_REL = {torch.bfloat16: 0.2, torch.float16: 0.03}


def half_and_reference(arch: str, dtype):
    hf = BUILDERS[arch](seed=0, dtype=torch.float32)
    reference = copy.deepcopy(hf)
    reference.config.text_config._attn_implementation = "eager"
    reference.config.vision_config._attn_implementation = "eager"
    return fl.load(hf, dtype=dtype), reference


def arch_cases():
    for arch in sorted(BUILDERS):
        for dtype in (torch.bfloat16, torch.float16):
            slow = dtype == torch.float16 and arch not in FAST
            yield pytest.param(
                arch, dtype, id=f"{arch}-{str(dtype)[6:]}", marks=pytest.mark.slow if slow else ()
            )


@pytest.mark.parametrize("arch_name, dtype", list(arch_cases()))
def test_half_precision_analyses_match_float32_reference(arch_name, dtype):
    model, reference = half_and_reference(arch_name, dtype)
    assert model.dtype == dtype
    batch = tiny_inputs(model.hf, batch=2, padded=True)

    ratios = fl.attention_ratios(model, batch, progress=False)
    assert ratios.per_sample.dtype == torch.float32
    expected = reference_ratios(reference, batch, "all").float()
    torch.testing.assert_close(ratios.per_sample, expected, atol=RATIO_ATOL[dtype], rtol=0)

    gains = fl.Gains(
        0.5 + torch.rand(model.n_layers, model.n_heads, generator=torch.Generator().manual_seed(0))
    )
    with torch.no_grad(), fl.rescale(model, gains):
        rescaled = model.forward(batch).logits.float()
    with gated(reference, gains.values):
        hand = reference_logits(reference, batch)
    mask = batch["attention_mask"].bool()
    bound = LOGIT_REL[dtype] * float(hand[mask].abs().max())
    torch.testing.assert_close(rescaled[mask], hand[mask], atol=bound, rtol=0)

    single = tiny_inputs(model.hf, batch=1)
    n = single["input_ids"].shape[1]
    if arch_name == "gemma3" and dtype == torch.float16:
        # Gemma 3's backward overflows in float16 in plain HF too: a clear refusal, not NaNs
        with pytest.raises(FacLensError, match="overflowed"):
            fl.contribution_map(model, single, position=slice(n - 3, n - 1), progress=False)
        return
    cm = fl.contribution_map(model, single, position=slice(n - 3, n - 1), chunk_size=2, progress=False)
    for t, p in enumerate(range(n - 3, n - 1)):
        expected = hand_gate_gradient(reference, single, int(single["input_ids"][0, p + 1]), p)
        bound = GRAD_REL[dtype] * float(expected.abs().max())
        torch.testing.assert_close(cm.per_token[t], expected, atol=bound, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_half_precision_generation_equals_plain_hf_in_the_same_dtype(dtype):
    """Vanilla generation through fac_lens is plain HF generate of the same half-precision model;
    static and dynamic rescaling run and change the trace's logits."""
    model, _ = half_and_reference("qwen2_5_vl", dtype)
    plain = copy.deepcopy(model.hf)
    inputs = tiny_inputs(model.hf, batch=1)
    got = fl.generate(model, inputs, 6, min_new_tokens=6)
    with model.unbridged(), torch.no_grad():
        model.reset_state()
        expected = model.hf.generate(
            **model.normalize(inputs), max_new_tokens=6, min_new_tokens=6, do_sample=False
        )
    assert torch.equal(got.sequences, expected.cpu())
    del plain
    ratios = fl.attention_ratios(model, inputs, progress=False)
    median = float(ratios.visual.median())
    cfg = fl.FacConfig(l_perc=1, l_reas=1, tau_perc=median, tau_reas=median, g_perc=1.5, g_reas=0.6)
    dynamic = fl.generate(model, inputs, 6, fac=cfg, min_new_tokens=6)
    assert len(dynamic.rescale.pass_ratios) == 6
    assert all(
        p.dtype == torch.float32 and bool(torch.isfinite(p).all()) for p in dynamic.rescale.pass_ratios
    )
