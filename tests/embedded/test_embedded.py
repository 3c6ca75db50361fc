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
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
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
