"""Shared fixtures: tiny random models of each architecture, built from configs in code."""

import copy
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

import fac_lens as fl  # noqa: E402
from fac_lens.testing import BUILDERS, tiny_inputs  # noqa: E402


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


# ------------------------------------------------------------------ the supported-models matrix
# Every test marked ``contract(part)`` and parametrized over ``arch`` reports its outcome here;
# tests/core/test_supported_models.py (run last) compares the README's matrix with what this session
# produced, and ``tools/supported_models.py`` writes the matrix (env FAC_LENS_CONTRACT_JSON: where
# the outcomes are saved at the end of the session).
CONTRACT_RESULTS = pytest.StashKey[dict]()
RUN_LAST = "test_supported_models.py"


def pytest_configure(config):
    config.stash[CONTRACT_RESULTS] = {}


def pytest_collection_modifyitems(config, items):
    """The matrix check runs after the contract tests whose outcomes it compares."""
    items.sort(key=lambda item: item.nodeid.split("::")[0].endswith(RUN_LAST))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    marker = item.get_closest_marker("contract")
    callspec = getattr(item, "callspec", None)
    arch = callspec.params.get("arch") if callspec is not None else None
    if marker is None or arch is None or (report.when != "call" and report.passed):
        return
    counts = item.config.stash[CONTRACT_RESULTS].setdefault(arch, {}).setdefault(marker.args[0], {})
    counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_sessionfinish(session):
    path = os.environ.get("FAC_LENS_CONTRACT_JSON")
    if path:
        import json

        with open(path, "w") as handle:
            json.dump(session.config.stash[CONTRACT_RESULTS], handle, indent=1, sort_keys=True)
