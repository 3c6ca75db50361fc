"""Result dataclasses compare by identity (``==`` on tensors is ambiguous) and by value with
``allclose``; the FAC field lists of the CLI, methods, store and tables follow ``FacConfig``."""

import argparse
import dataclasses

import pytest
import torch

import fac_lens as fl
from fac_lens.case_study import CaseStudy
from fac_lens.cli import _method_label, _overrides, build_parser, main
from fac_lens.compare import Comparison
from fac_lens.errors import FacLensError
from fac_lens.experiments import store, tables
from fac_lens.experiments.methods import LABELS, Method, method_for

CONFIG = fl.FacConfig(l_perc=1, l_reas=2, tau_perc=0.5, tau_reas=0.3, g_perc=1.2, g_reas=1.4)


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


# ---------------------------------------------------------------------------------------- field lists


def test_field_names_follow_the_dataclass():
    names = tuple(f.name for f in dataclasses.fields(fl.FacConfig))
    assert fl.FacConfig.field_names() == names
    assert fl.FacConfig.field_names(required=True) == ("l_perc", "l_reas", "tau_perc", "tau_reas")
    assert set(fl.FacConfig.field_names(numeric=True)) == {
        "l_perc", "l_reas", "tau_perc", "tau_reas", "g_perc", "g_reas", "beta"
    }  # fmt: skip


def test_every_fac_field_reaches_the_method_store_and_tables():
    fields = set(fl.FacConfig.field_names())
    assert set(store.CONFIG_KEYS) | set(store.UNFLATTENED) == fields
    assert set(store.CONFIG_KEYS) <= set(store.METHOD_KEYS) and set(store.CONFIG_KEYS) <= set(tables.CONFIG)
    config = CONFIG.replace(strategy="C", beta=0.5, target="reasoning", query="all")
    data = Method("static", config).to_dict()
    assert fields <= set(data) and all(data[k] == getattr(config, k) for k in fields)
    assert Method.from_dict(data).config == config


def test_cli_overrides_take_every_fac_field_given():
    args = argparse.Namespace(**{k: None for k in fl.FacConfig.field_names()}, mode="dynamic")
    args.tau_perc, args.strategy, args.query = 0.4, "B", "all"
    assert _overrides(args) == {"tau_perc": 0.4, "strategy": "B", "query": "all"}


# ---------------------------------------------------------------------------------------- method names


def test_method_labels_name_each_method_explicitly():
    assert LABELS == tables.METHOD_ORDER
    for strategy in "ABCD":
        method = method_for(f"strategy-{strategy}", CONFIG)
        assert method.mode == "dynamic" and method.config.strategy == strategy
        assert tables.method_label(method.name, method.config.strategy) == (
            "dynamic" if strategy == "A" else f"strategy-{strategy}"
        )
    assert method_for("strategy-B", CONFIG, mode="static").mode == "static"
    assert method_for("static", CONFIG).mode == "static"
    assert method_for("reasoning_only", CONFIG).config.target == "reasoning"
    assert method_for("vanilla", None) == Method.vanilla()
    with pytest.raises(FacLensError, match="strategy-A, strategy-B, strategy-C, strategy-D"):
        method_for("strategy", CONFIG)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["eval", *argv])


def test_cli_bare_strategy_is_an_error_naming_the_choices(tmp_path, capsys):
    assert _method_label(parse("--method", "strategy-C")) == "strategy-C"
    assert _method_label(parse("--method", "strategy", "--strategy", "A")) == "strategy-A"  # was C
    assert _method_label(parse("--method", "dynamic", "--strategy", "B")) == "dynamic"
    store_path = tmp_path / "s.sqlite"
    assert main(["eval", "--method", "strategy", "--store", str(store_path)]) == 2
    err = capsys.readouterr().err
    assert all(f"strategy-{s}" in err for s in "ABCD") and "--strategy" in err
    assert main(["eval", "--method", "strategy-B", "--strategy", "C", "--store", str(store_path)]) == 2
    assert "disagree" in capsys.readouterr().err
    assert not store_path.exists()
    with pytest.raises(fl.FacLensError, match="invalid choice: 'strategy-E'"):
        parse("--method", "strategy-E")
