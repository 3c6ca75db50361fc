"""The locked set of versions, the ranges in pyproject.toml, and the release check's verdicts."""

import os
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import check_releases as cr  # noqa: E402

LOCK_TEXT = (REPO / "requirements" / "lock.txt").read_text()
PYPROJECT_TEXT = (REPO / "pyproject.toml").read_text()
HOOKED = ("torch", "transformers", "transformer-lens")


def test_every_hooked_library_has_an_upper_bound_that_admits_its_locked_version():
    ranges, pins = cr.allowed_ranges(PYPROJECT_TEXT), cr.locked_versions(LOCK_TEXT)
    for name in HOOKED:
        assert any(spec.operator in ("<", "<=") for spec in ranges[name]), f"{name}: no upper bound"
        assert ranges[name].contains(Version(pins[name])), f"{name} {pins[name]} outside {ranges[name]}"


def test_the_lock_pins_every_dependency_exactly():
    pins = cr.locked_versions(LOCK_TEXT)
    for name in cr.allowed_ranges(PYPROJECT_TEXT):
        assert name in pins, f"{name} is a dependency but not in requirements/lock.txt (run make lock)"
    lines = [line for line in LOCK_TEXT.splitlines() if line.strip() and not line.startswith("#")]
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
    assert not any(line.startswith(("nvidia-", "fac-lens")) for line in lines)


@pytest.mark.skipif(os.environ.get("FAC_LENS_UNLOCKED") == "1", reason="make test-latest runs unlocked")
def test_the_installed_versions_are_the_locked_ones():
    pins = cr.locked_versions(LOCK_TEXT)
    for name in (*HOOKED, "accelerate", "numpy", "jupyterlab", "ipywidgets"):
        installed = version(name).split("+")[0]
        assert installed == pins[name], f"{name} {installed} installed, {pins[name]} locked: run make setup"


def test_parsers_read_pins_and_ranges():
    assert cr.locked_versions("# c\nTorch==2.13.0+cpu\ntransformer_lens == 4.3.0 ; python_version>'3'\n") == {
        "torch": "2.13.0+cpu",
        "transformer-lens": "4.3.0",
    }
    ranges = cr.allowed_ranges('[project]\ndependencies = ["transformers>=5.23,<5.25", "numpy"]\n')
    assert ranges == {"transformers": SpecifierSet(">=5.23,<5.25"), "numpy": SpecifierSet("")}


def test_newest_release_skips_prereleases_yanked_and_junk():
    releases = {
        "5.24.0": [{"yanked": False}],
        "5.25.0rc1": [{"yanked": False}],
        "5.26.0": [{"yanked": True}],
        "not-a-version": [],
        "5.9.0": [],
    }
    assert cr.newest_release(releases) == Version("5.24.0")
    assert cr.newest_release({}) is None


def test_verdicts_say_what_to_do():
    allowed = SpecifierSet(">=5.23,<5.25")
    assert cr.verdict("5.24.0", allowed, Version("5.24.0")) == "up to date"
    assert "inside the allowed range" in cr.verdict("5.23.0", allowed, Version("5.24.0"))
    outside = cr.verdict("5.24.0", allowed, Version("5.25.0"))
    assert "outside the allowed range" in outside and "make test-latest" in outside
    assert "index not reachable" in cr.verdict("5.24.0", allowed, None)
    assert "make lock" in cr.verdict(None, allowed, Version("5.24.0"))
