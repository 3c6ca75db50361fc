"""Span contribution maps with batched backward passes (``chunk_size``) against hand-gated gradients."""

import pytest
import torch

import fac_lens as fl
from fac_lens.errors import FacLensError
from fac_lens.testing import tiny_inputs
from tests.core.test_contribution import hand_gate_gradient


@pytest.mark.contract("contribution")
@pytest.mark.parametrize("chunk_size", [3, 64])
def test_chunked_span_map_equals_hand_gates_per_token(pair, chunk_size):
    """7 targets in chunks of 3 (uneven last chunk) or all at once: each token's map is the plain
    copy's dL_t/dg by autograd through pre-hooks written by hand (float64 gates)."""
    model, reference = pair
    single = tiny_inputs(model.hf, batch=1, seed=2)
    n = single["input_ids"].shape[1]
    positions = list(range(n - 8, n - 1))
    cm = fl.contribution_map(
        model, single, position=slice(n - 8, n - 1), chunk_size=chunk_size, progress=False
    )
    for t, p in enumerate(positions):
        expected = hand_gate_gradient(reference, single, int(single["input_ids"][0, p + 1]), p)
        # float32 autograd vs a float64-gated reference: the tolerance of the single-token test
        torch.testing.assert_close(cm.per_token[t], expected, atol=1e-5, rtol=1e-4)
    one_by_one = fl.contribution_map(model, single, position=slice(n - 8, n - 1), progress=False)
    # the vmapped backward sums in another order: float32 reassociation only
    torch.testing.assert_close(cm.per_token, one_by_one.per_token, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4", True])
def test_bad_chunk_size_is_refused(bad):
    from tests.conftest import make_pair

    model, _ = make_pair("qwen2_5_vl")
    single = tiny_inputs(model.hf, batch=1)
    with pytest.raises(FacLensError, match="chunk_size"):
        fl.contribution_map(model, single, position=slice(-3, -1), target=[1, 2], chunk_size=bad)
