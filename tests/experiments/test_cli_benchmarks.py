"""``fac-lens eval`` and ``fac-lens figures`` on each benchmark's released layouts (tiny invented
copies written by tests/data/benchmark_fixtures.py), through ``--data`` (``--data-root`` alias)."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import pytest

from fac_lens.cli import main
from fac_lens.experiments.store import ResultStore

from ..data.benchmark_fixtures import BENCH, EXPECTED, build

MODEL = Path("data/models/fac-tiny")
pytestmark = pytest.mark.skipif(not (MODEL / "model.safetensors").exists(), reason="fac-tiny not trained")
SMALL = ["--max-new-tokens", "8", "--batch-size", "2", "--no-progress", "--calibration-n", "1"]


def _eval(tmp_path, name: str, source: str, flag: str = "--data") -> dict:
    store = tmp_path / "s.sqlite"
    args = [
        "eval",
        "--dataset",
        name,
        flag,
        source,
        "--method",
        "vanilla",
        "--limit",
        "2",
        "--store",
        str(store),
    ]
    assert main([*args, "--json", *SMALL]) == 0
    return {"store": ResultStore(store)}


def test_eval_on_mathvista_mini_from_the_hub_cache(tmp_path, capsys, monkeypatch):
    source, kwargs = build("mathvista-mini", "hub-cache", tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", kwargs["cache_dir"])
    store = _eval(tmp_path, "mathvista-mini", source)["store"]
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert "fac_lens: MathVista-mini from AI4Math/MathVista from the local HF cache" in err
    records = store.records()
    assert summary["n"] == len(records) == 2
    assert [r["answer"] for r in sorted(records, key=lambda r: r["sample_id"])] == [
        "B",
        "4",
    ]  # stored references
    assert summary["accuracy"] == sum(r["correct"] for r in records) / 2


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in BENCH if n != "mathvista-mini"])
def test_eval_on_every_other_benchmark(tmp_path, capsys, name):
    layout = "tsv" if BENCH[name]["tsv"] else "original"
    source, _ = build(name, layout, tmp_path)
    store = _eval(tmp_path, name, source, flag="--data-root")["store"]
    summary = json.loads(capsys.readouterr().out)
    records = store.records()
    assert summary["n"] == len(records) >= 1  # HallusionBench's TSV: 2 rows, one held out to calibrate
    references = {e[0] for e in EXPECTED[name]}
    assert {r["answer"] for r in records} <= references


@pytest.mark.slow
def test_pope_scores_of_an_eval_agree_with_the_summary(tmp_path, capsys):
    """POPE's accuracy and F1 from the stored records equal the harness's accuracy and binary F1."""
    from fac_lens.data.benchmarks.pope import pope_from_records

    source, _ = build("pope", "tsv", tmp_path)
    store = tmp_path / "s.sqlite"
    args = ["eval", "--dataset", "pope", "--data", source, "--method", "vanilla", "--limit", "5"]
    assert main([*args, "--store", str(store), "--json", *SMALL]) == 0
    summary = json.loads(capsys.readouterr().out)
    report = pope_from_records(ResultStore(store).records())
    assert report["all"]["n"] == summary["n"] == 5
    assert report["all"]["accuracy"] == pytest.approx(summary["accuracy"])
    assert report["all"]["f1"] == pytest.approx(summary["binary_f1"])
    assert set(report) == {"adversarial", "popular", "random", "all"}
    assert summary["pope"] == report  # the CLI reports POPE's own metrics


def test_eval_prints_popes_metrics(tmp_path, capsys):
    source, _ = build("pope", "tsv", tmp_path)
    args = ["eval", "--dataset", "pope", "--data", source, "--method", "vanilla", "--limit", "3"]
    assert main([*args, "--store", str(tmp_path / "s.sqlite"), *SMALL]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "POPE variant" in line)
    assert header.split()[2:] == ["acc", "prec", "recall", "F1", "yes"]
    overall = next(line for line in out.splitlines() if line.split()[:2] == ["POPE", "all"])
    assert all(0.0 <= float(v) <= 1.0 for v in overall.split()[2:])


@pytest.mark.slow
def test_figures_on_a_benchmark_release(tmp_path, capsys):
    source, _ = build("pope", "parquet", tmp_path)
    out = tmp_path / "figures"
    args = [
        "figures",
        "--dataset",
        "pope",
        "--data",
        source,
        "--limit",
        "2",
        "--l-percs",
        "1,2",
        "--l-reass",
        "3",
    ]
    args += ["--g-percs", "1.1", "--g-reass", "1.3", "--store", str(tmp_path / "s.sqlite"), "--out", str(out)]
    assert main([*args, "--json", *SMALL]) == 0
    written = json.loads(capsys.readouterr().out)["written"]
    assert written and all(Path(p).stat().st_size > 100 for p in written)
