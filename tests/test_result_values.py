"""Result dataclasses compare by identity (``==`` on tensors is ambiguous) and by value with
``allclose``."""

import dataclasses

import pytest
import torch

import fac_lens as fl
from fac_lens.case_study import CaseStudy
from fac_lens.compare import Comparison


def contribution(scale: float = 1.0) -> fl.ContributionMap:
    signed = torch.linspace(-1, 1, 12).reshape(3, 4) * scale
    return fl.ContributionMap(signed, signed.abs(), (7,), (5,), signed[None], torch.tensor([0.5]))


def results(offset: float = 0.0) -> dict:
    """One of each result that holds tensors, built twice from equal values."""
    per_sample = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 24 + offset
    ratios = fl.HeadRatios(per_sample, "all")
    selection = fl.identify_heads(ratios, 1, 2, 0.5, 0.3)
    return {
        "ratios": ratios,
        "selection": selection,
        "gains": fl.Gains(torch.ones(3, 4) + offset),
        "contribution": contribution(1.0 + offset),
    }


@pytest.mark.parametrize("kind", ["ratios", "selection", "gains", "contribution"])
def test_results_compare_by_identity_and_allclose_by_value(kind):
    a, b = results()[kind], results()[kind]
    assert a == a and a != b  # identity; no "Boolean value of Tensor is ambiguous"
    assert len({a, b}) == 2  # hashable by identity
    assert a.allclose(b) and b.allclose(a)
    assert not a.allclose(results(0.01)[kind])
    assert a.allclose(results(1e-9)[kind], atol=1e-6)
    assert not a.allclose(object())


def test_allclose_checks_shapes_and_non_tensor_fields():
    ratios = results()["ratios"]
    assert not ratios.allclose(fl.HeadRatios(ratios.per_sample, "last"))
    assert not ratios.allclose(fl.HeadRatios(ratios.per_sample[:1], "all"))
    cmap = contribution()
    assert not cmap.allclose(dataclasses.replace(cmap, targets=(8,)))


def test_containers_of_results_compare_without_raising():
    cmap = contribution()
    case = CaseStudy("q?", "<think> a </think> yes", "<think> b </think> no", "yes", cmap, cmap)
    twin = dataclasses.replace(case)
    assert case == case and case != twin
    assert Comparison(case) != Comparison(case)
    result = fl.GenerationResult(torch.ones(1, 3, dtype=torch.long), 2, ["x"])
    assert result != dataclasses.replace(result)
