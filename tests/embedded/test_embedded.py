"""The embedded models and data are found from the package, not from the working directory."""

import subprocess
import sys

import pytest

import fac_lens as fl
from fac_lens.data.datasets import load_samples
from fac_lens.embedded import paths
from fac_lens.experiments.fingerprint import model_fingerprint
from fac_lens.model_sources import folder_kind, resolve

pytestmark = pytest.mark.skipif(
    not (paths.fac_tiny() / "model.safetensors").exists(), reason="fac-tiny not trained: make train-tiny"
)


def test_load_by_name_from_another_directory(tmp_path):
    code = (
        "import fac_lens as fl\n"
        "from fac_lens.data.datasets import load_samples\n"
        "m = fl.load('fac-tiny')\n"
        "s = load_samples('synthetic', limit=2)\n"
        "print(m.n_layers, m.n_heads, len(s), s[0].id)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    first = load_samples("synthetic", limit=1)[0]
    assert out.stdout.split() == ["6", "4", "2", first.id]


def test_names_resolve_to_the_package_data_folder():
    assert resolve("fac-tiny") == str(paths.fac_tiny())
    assert paths.fac_tiny().parent.parent == paths.data_dir()
    assert resolve("some/other/folder") == "some/other/folder"
    assert model_fingerprint("fac-tiny") is None  # a name is not a folder: runners resolve it first
    assert model_fingerprint(resolve("fac-tiny")) is not None
    assert folder_kind(paths.fac_tiny()) is None  # a plain checkpoint folder


def test_a_missing_data_folder_says_where_it_looked_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FAC_LENS_DATA", str(tmp_path))
    with pytest.raises(fl.FacLensError, match=r"fac-tiny is not at .*FAC_LENS_DATA"):
        fl.load("fac-tiny")
    with pytest.raises(fl.FacLensError, match=r"synthetic test split is not at"):
        load_samples("synthetic")


def test_sample_prompt_is_what_the_harness_and_views_ask():
    sample = load_samples("synthetic", limit=1)[0]
    assert sample.prompt() == sample.question  # no options
    from dataclasses import replace

    mc = replace(sample, choices=("red", "blue"))
    assert mc.prompt() == f"{sample.question}\nA. red\nB. blue\nAnswer with the option's letter."


def test_smol_study_reports_each_method_against_vanilla_with_its_interval():
    from fac_lens.embedded.smol.study import _difference, _versus_vanilla

    def records(correct):
        return [
            {"sample_id": str(i), "correct": c, "answer": "x", "predicted": None}
            for i, c in enumerate(correct)
        ]

    vanilla = records([True, False, True, True])
    method = records([True, True, False, False])  # -1 of 4; vanilla-only right 2, method-only right 1
    row = _versus_vanilla(method, vanilla)["vs_vanilla"]
    assert row["accuracy"][0] == -0.25 and row["accuracy"][1] <= -0.25 <= row["accuracy"][2]
    assert row["mcnemar_p"] == 1.0  # 2 * P[Binomial(3, 1/2) <= 1] = 2 * 4/8
    assert _versus_vanilla(vanilla, vanilla) == {} and _difference({}) == "-"
    low, high = (100 * v for v in row["accuracy"][1:])
    assert _difference({"vs_vanilla": row}) == f"-25.0 [{low:+.1f}, {high:+.1f}] pt, p=1"
