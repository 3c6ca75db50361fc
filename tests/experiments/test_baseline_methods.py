"""The baselines as experiment methods: run ids, round trips, labels, CLI flags."""

import pytest

import fac_lens as fl
from fac_lens.baselines import AGLA, BASELINE_NAMES, CGD, PAI, VAF, VCD, MidLayer, make_baseline
from fac_lens.cli import main
from fac_lens.experiments.methods import LABELS, Method, method_for
from fac_lens.experiments.store import METHOD_KEYS
from fac_lens.experiments.sweeps import ablation_grid


class Scorer:
    def score(self, image, texts):
        raise AssertionError("not called here")


@pytest.mark.parametrize(
    "baseline", [VCD(alpha=0.5), PAI(gamma=1.0), VAF(start=1, end=3), MidLayer(top_k=2), CGD(alpha=0.2)]
)
def test_method_round_trip_and_run_keys(baseline):
    method = Method.of(baseline)
    data = method.to_dict()
    assert set(METHOD_KEYS) <= set(data)
    assert data["name"] == baseline.name and data["mode"] == "baseline"
    assert data["baseline"]["name"] == baseline.name
    back = Method.from_dict(data)
    assert back.to_dict() == data
    assert back.intervention(None) == baseline.__class__(
        **{k: v for k, v in data["baseline"].items() if k not in ("name", "scorer")}
    )


def test_settings_are_part_of_the_run_key():
    assert Method.of(VCD(alpha=1.0)).to_dict() != Method.of(VCD(alpha=2.0)).to_dict()
    assert CGD(scorer=Scorer()).settings()["scorer"] == "Scorer"


def test_labels_and_method_for():
    assert set(BASELINE_NAMES) == {"vcd", "pai", "vaf", "midlayer", "cgd", "agla"}
    assert set(BASELINE_NAMES) <= set(LABELS)
    assert method_for("vcd", None).baseline == VCD()
    assert method_for("agla", None, scorer=None).baseline == AGLA()
    assert "alpha=1" in method_for("vcd", None).label()
    with pytest.raises(fl.FacLensError):
        Method("baseline")
    with pytest.raises(fl.FacLensError):
        make_baseline("nope")


def test_ablation_grid_appends_the_baselines():
    base = fl.FacConfig(l_perc=1, l_reas=2, tau_perc=0.2, tau_reas=0.1, g_perc=1.2, g_reas=1.3)
    settings = ablation_grid(base, "dynamic", (VCD(), PAI()))
    assert [s.method.name for s in settings[-2:]] == ["vcd", "pai"]
    assert len(ablation_grid(base, "dynamic")) == len(settings) - 2


@pytest.mark.parametrize(
    "argv, match",
    [
        (["eval", "--method", "cgd"], "scorer"),
        (["eval", "--method", "vcd", "--g-perc", "1.2"], "no FAC setting"),
        (["figures", "--baselines", "vcd,nope"], "unknown"),
        (["figures", "--baselines", "agla"], "scorer"),
        (["eval", "--method", "agla", "--scorer", "nomodule_here:f"], "imported"),
    ],
)
def test_cli_refuses_bad_baseline_flags(argv, match, tmp_path, capsys):
    assert main([*argv, "--store", str(tmp_path / "s.sqlite")]) != 0
    assert match in capsys.readouterr().err
