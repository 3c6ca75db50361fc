"""Every baseline leaves the model bit-identical, with no hook, edit or attention function left,
after a normal generation and after one that fails."""

import pytest
import torch

import fac_lens as fl
from fac_lens.attention_probe import ATTENTION_NAME
from fac_lens.baselines import AGLA, CGD, PAI, VAF, VCD, MidLayer
from fac_lens.baselines.attention_edit import EDIT_ATTR
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair


class Scorer:
    def score(self, image, texts):
        return torch.zeros(len(texts))


def state(model):
    core = model.spec.multimodal_core(model.hf)
    return (
        len(core._forward_pre_hooks),
        sum(EDIT_ATTR in m.__dict__ for m in model.attention_modules),
        model.spec.text_config(model.hf)._attn_implementation,
    )


@pytest.fixture(scope="module", params=["llava", "gemma3"])
def model(request):
    return make_pair(request.param)[0]


METHODS = {
    "vcd": (VCD(), {}),
    "pai": (PAI(alpha=1.0), {}),
    "vaf": (VAF(beta=0.0), {}),
    "midlayer": (MidLayer(), {}),
    "agla": (AGLA(), {"contrast_inputs": "self"}),
    "cgd": (CGD(scorer=Scorer(), candidates=2), {"images": [None], "decode": str}),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_model_bit_identical_after_success_and_failure(model, name):
    method, extra = METHODS[name]
    inputs = model.normalize(tiny_inputs(model.hf, batch=1))
    extra = {k: (inputs if v == "self" else v) for k, v in extra.items()}
    with torch.no_grad():
        before = model.hf(**inputs).logits
    clean = state(model)
    assert clean == (0, 0, ATTENTION_NAME)
    fl.generate(model, inputs, max_new_tokens=3, method=method, **extra)
    with torch.no_grad():
        assert torch.equal(model.hf(**inputs).logits, before)
    assert state(model) == clean
    with pytest.raises(fl.FacLensError):  # HF refuses the unknown keyword inside the block
        fl.generate(model, inputs, max_new_tokens=3, method=method, not_a_generate_kwarg=1, **extra)
    with torch.no_grad():
        assert torch.equal(model.hf(**inputs).logits, before)
    assert state(model) == clean
