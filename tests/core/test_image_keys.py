"""Where the dynamic mode finds the image among the keys: derived from key lengths, never from how
transformers passes its KV cache (its keyword changed from ``past_key_values`` to ``cache`` in 5.24)."""

import inspect

import pytest
import torch
import transformers

import fac_lens as fl
from fac_lens.image_keys import ImageKeyTracker
from fac_lens.testing import tiny_inputs
from tests.conftest import make_pair

IMG = 7


def ids(*rows):
    return torch.tensor(rows)


def test_prefill_then_decoding_steps_keep_the_image_keys():
    tracker = ImageKeyTracker(IMG)
    tracker.start_pass(ids([1, IMG, IMG, 2]), has_pixels=True)
    assert tracker.keys(0, n_keys=4, n_query=4, sliding_window=None).tolist() == [[0, 1, 1, 0]]
    # a decoding step that generates the image id itself carries no image
    tracker.start_pass(ids([IMG]), has_pixels=False)
    assert tracker.keys(0, n_keys=5, n_query=1, sliding_window=None).tolist() == [[0, 1, 1, 0, 0]]
    tracker.start_pass(ids([3]), has_pixels=False)
    assert tracker.keys(1, n_keys=6, n_query=1, sliding_window=None).tolist() == [[0, 1, 1, 0, 0, 0]]


def test_a_new_prefill_in_the_same_block_starts_over():
    tracker = ImageKeyTracker(IMG)
    tracker.start_pass(ids([1, IMG, 2]), has_pixels=True)
    tracker.keys(0, 3, 3, None)
    tracker.start_pass(ids([IMG, 5]), has_pixels=True)
    assert tracker.keys(0, 2, 2, None).tolist() == [[1, 0]]


def test_a_cropped_cache_continues_from_the_keys_it_kept():
    tracker = ImageKeyTracker(IMG)
    tracker.start_pass(ids([IMG, IMG, 2, 3, 4]), has_pixels=True)
    tracker.keys(0, 5, 5, None)
    tracker.start_pass(ids([9]), has_pixels=False)  # the cache was cropped to 2 keys
    assert tracker.keys(0, 3, 1, None).tolist() == [[1, 1, 0]]


def test_sliding_window_layers_see_the_latest_keys():
    tracker = ImageKeyTracker(IMG)
    prompt = [IMG, IMG, IMG, 1, 2, 3, 4, 5]
    tracker.start_pass(ids(prompt), has_pixels=True)
    assert tracker.keys(0, 8, 8, sliding_window=4).tolist() == [[1, 1, 1, 0, 0, 0, 0, 0]]
    assert tracker.keys(1, 8, 8, sliding_window=None).shape == (1, 8)
    tracker.start_pass(ids([6]), has_pixels=False)
    # the window keeps window - 1 cached keys: the full window hides the length, so it continues
    assert tracker.keys(0, 4, 1, sliding_window=4).tolist() == [[0, 0, 0, 0]]
    assert tracker.keys(1, 9, 1, sliding_window=None).tolist() == [[1, 1, 1, 0, 0, 0, 0, 0, 0]]


def test_cache_filled_outside_the_block_is_refused_with_the_fix():
    tracker = ImageKeyTracker(IMG)
    tracker.start_pass(ids([5]), has_pixels=False)
    with pytest.raises(fl.FacLensError, match=r"received 6 cached keys.*saw only 0 tokens.*inside"):
        tracker.keys(0, 7, 1, None)


def test_keys_that_disagree_between_layers_name_transformers_and_the_fix():
    tracker = ImageKeyTracker(IMG)
    tracker.start_pass(ids([1, IMG, 2]), has_pixels=True)
    tracker.keys(0, 3, 3, None)
    tracker.start_pass(ids([4]), has_pixels=False)
    tracker.keys(0, 4, 1, None)
    with pytest.raises(fl.FacLensError, match=r"layer 1.*transformers \d.*requirements/lock.txt"):
        tracker.keys(1, 2, 1, None)
    with pytest.raises(fl.FacLensError, match=r"layer 2.*3 queries for a pass of 1 new tokens"):
        tracker.keys(2, 6, 3, None)


@pytest.mark.parametrize("keyword", ["past_key_values", "cache"])
@pytest.mark.parametrize("arch", ["llava", "gemma3"])  # gemma3: sliding-window layers first
def test_hand_decoding_under_either_cache_keyword_matches_generate(arch, keyword):
    """Decode step by step under a dynamic rescale, passing the cache under the old or the new
    keyword (5.24 takes both, ``past_key_values`` deprecated): the tokens equal fl.generate's, so
    the cache's keyword plays no part."""
    from transformers.cache_utils import Cache

    model, _ = make_pair(arch)
    if keyword == "cache" and keyword not in inspect.signature(model.hf.forward).parameters:
        pytest.skip(f"transformers {transformers.__version__} does not take the cache as {keyword}=")
    inputs = tiny_inputs(model.hf, batch=1, seed=3)
    config = fl.FacConfig(l_perc=0, l_reas=1, tau_perc=0.0, tau_reas=0.0, g_perc=1.8, g_reas=0.4)
    expected = fl.generate(model, inputs, max_new_tokens=5, fac=config).sequences[:, -5:]
    tokens = []
    with fl.rescale(model, config) as handle, torch.no_grad():
        out = model.hf(**model.normalize(inputs), use_cache=True)
        for _ in range(5):
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            tokens.append(token)
            (cache,) = [v for v in out.values() if isinstance(v, Cache)]
            mask = torch.ones(1, cache.get_seq_length() + 1, dtype=torch.long)
            out = model.hf(input_ids=token, attention_mask=mask, use_cache=True, **{keyword: cache})
    assert torch.equal(torch.cat(tokens, 1), expected)
    assert len(handle.pass_ratios) == 6
