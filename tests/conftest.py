"""Shared fixtures: tiny random models of each architecture, built from configs in code."""

import copy
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

import fac_lens as fl  # noqa: E402
from fac_lens.tiny import tiny_inputs, tiny_llava, tiny_qwen2_5_vl  # noqa: E402

BUILDERS = {"qwen2_5_vl": tiny_qwen2_5_vl, "llava": tiny_llava}


@pytest.fixture(params=sorted(BUILDERS))
def arch(request) -> str:
    return request.param


def make_pair(arch: str, dtype=torch.float32, seed: int = 0):
    """(LensModel, reference): the reference is an untouched plain-HF deep copy in eager mode."""
    hf = BUILDERS[arch](seed=seed, dtype=dtype)
    reference = copy.deepcopy(hf)
    reference.config.text_config._attn_implementation = "eager"
    reference.config.vision_config._attn_implementation = "eager"
    return fl.load(hf), reference


@pytest.fixture
def pair(arch):
    return make_pair(arch)


@pytest.fixture
def batch(pair):
    model, _ = pair
    return tiny_inputs(model.hf, batch=2, padded=True)


@pytest.fixture
def single(pair):
    model, _ = pair
    return tiny_inputs(model.hf, batch=1)
