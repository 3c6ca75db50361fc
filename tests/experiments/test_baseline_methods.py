"""The baselines as experiment methods: run ids, round trips, labels, CLI flags."""

from types import SimpleNamespace

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
    "baseline",
    [
        VCD(alpha=0.5),
        PAI(gamma=1.0),
        PAI(beta=0.2),
        VAF(start=1, end=3),
        MidLayer(top_k=2),
        CGD(alpha=0.2),
        AGLA(),
        AGLA(keep=0.3),
    ],
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
    assert Method.of(PAI()).to_dict() != Method.of(PAI(beta=0.2)).to_dict()
    assert Method.of(AGLA()).to_dict() != Method.of(AGLA(keep=0.5)).to_dict()
    assert CGD(scorer=Scorer()).settings()["scorer"] == "Scorer"


def test_labels_and_method_for():
    assert set(BASELINE_NAMES) == {"vcd", "pai", "vaf", "midlayer", "cgd", "agla"}
    assert set(BASELINE_NAMES) <= set(LABELS)
    assert method_for("vcd", None).baseline == VCD()
    assert method_for("agla", None, scorer=None).baseline == AGLA()
    assert "alpha=1" in method_for("vcd", None).label()
    assert "alpha=0.2" in method_for("pai", None).label() and "beta=0.1" in method_for("pai", None).label()
    assert "keep=None" in method_for("agla", None).label()
    with pytest.raises(fl.FacLensError):
        Method("baseline")
    with pytest.raises(fl.FacLensError):
        make_baseline("nope")


def test_make_baseline_gives_the_official_defaults():
    """The defaults of the official repositories (see each module's docstring)."""
    assert make_baseline("pai").settings() == {
        "name": "pai",
        "alpha": 0.2,
        "start": None,
        "end": None,
        "gamma": 1.1,
        "beta": 0.1,
    }
    assert make_baseline("vaf").settings() == {
        "name": "vaf",
        "alpha": 0.15,
        "beta": 0.05,
        "start": None,
        "end": None,
    }
    assert make_baseline("midlayer").settings() == {
        "name": "midlayer",
        "alpha": 0.5,
        "top_k": None,
        "start": None,
        "end": None,
    }
    assert make_baseline("cgd").settings() == {"name": "cgd", "scorer": None, "alpha": 0.01, "candidates": 3}
    assert make_baseline("agla").settings() == {
        "name": "agla", "scorer": None, "alpha": 2.0, "beta": 0.5, "keep": None
    }  # fmt: skip
    assert make_baseline("vcd") == VCD()


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


def test_baseline_runs_in_the_store_become_table1_rows_and_fig3_points(tmp_path):
    """Runs stored with a baseline's method dict: Table 1 gets their rows, Fig. 3 their points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fac_lens.experiments import figures, tables
    from fac_lens.experiments.figure_suite import _table1_methods
    from fac_lens.experiments.store import ResultStore

    store = ResultStore(tmp_path / "s.sqlite")
    base = fl.FacConfig(l_perc=1, l_reas=2, tau_perc=0.2, tau_reas=0.1, g_perc=1.2, g_reas=1.3)
    methods = {
        "vanilla": Method.vanilla(),
        "dynamic": Method("dynamic", base),
        "vcd": Method.of(VCD()),
        "pai": Method.of(PAI()),
    }
    generation = {"max_new_tokens": 8, "batch_size": 2, "seed": 0}
    accuracy = {"vanilla": 0.5, "dynamic": 0.6, "vcd": 0.55, "pai": 0.52}
    for name, method in methods.items():
        run_id = store.ensure_run(
            model="m", dataset="synthetic", sweep="ablation", method=method.to_dict(), generation=generation
        )
        store.set_summary(
            run_id, {"n": 10, "accuracy": accuracy[name], "seconds_per_batch": 1.0 + len(name) / 10}
        )
    summaries = store.summaries()
    rows = _table1_methods(summaries)
    assert rows == ["vanilla", "dynamic", "vcd", "pai"]
    table = tables.table1(summaries, rows)
    assert [label for _, label in table.index] == rows
    assert table.loc[("m", "vcd"), ("synthetic", "accuracy")] == pytest.approx(0.55)
    fig, ax = plt.subplots()
    figures.efficiency_scatter(summaries, ax=ax)
    labels = (
        {t.get_text() for t in ax.get_legend().get_texts()}
        if ax.get_legend()
        else {c.get_label() for c in ax.collections}
    )
    assert any(label.startswith("vcd") for label in labels) and any(
        label.startswith("pai") for label in labels
    )
    plt.close(fig)


def test_timing_times_baselines_and_gives_scored_ones_the_images():
    """Table 4's timing: a baseline is one more timed method; CGD/AGLA get the raw images and prompts."""
    import torch

    from fac_lens.data.sample import Sample
    from fac_lens.experiments import tables
    from fac_lens.experiments.timing import benchmark

    seen = []
    now = [0.0]

    def generate_fn(model, inputs, max_new_tokens, fac, **extra):
        seen.append((getattr(fac, "name", None), sorted(extra)))
        now[0] += 1.0 if fac is None else 2.0
        return SimpleNamespace(new_tokens=torch.tensor([[5, 5]]))

    model = SimpleNamespace(n_layers=6, prepare=lambda images, prompts: {"batch": prompts[0]})
    samples = [Sample("s0", "img", "q", "yes", "k")]
    methods = {"vanilla": Method.vanilla(), "vcd": Method.of(VCD()), "cgd": Method.of(CGD(scorer=Scorer()))}
    result = benchmark(
        model, samples, methods, batch_size=1, n_batches=1, repeats=1, warmup=0, progress=False,
        clock=lambda: now[0], generate_fn=generate_fn, eos_ids=[2],
    )  # fmt: skip
    assert ("vcd", []) in seen and ("cgd", ["images", "prompts"]) in seen
    table = tables.table4(result)
    assert {"vcd", "cgd"} <= set(table.index)


def test_baseline_settings_are_a_summary_column_and_mixed_settings_are_refused(tmp_path):
    """A result names the settings that produced it: summaries() carries each baseline's
    hyper-parameters; one Table 1 cell with two VCD settings is refused, not averaged."""
    from fac_lens.experiments import tables
    from fac_lens.experiments.store import ResultStore

    store = ResultStore(tmp_path / "s.sqlite")
    generation = {"max_new_tokens": 8, "batch_size": 2, "seed": 0}
    for method, accuracy in ((Method.vanilla(), 0.5), (Method.of(VCD()), 0.55)):
        run_id = store.ensure_run(
            model="m", dataset="synthetic", sweep="eval", method=method.to_dict(), generation=generation
        )
        store.set_summary(run_id, {"n": 10, "accuracy": accuracy})
    summaries = store.summaries()
    assert summaries.loc[summaries["name"] == "vanilla", "baseline"].isna().all()
    vcd = summaries.loc[summaries["name"] == "vcd", "baseline"].tolist()
    assert vcd == ["alpha=1.0, beta=0.1, noise_step=500, seed=0"]
    assert tables.baseline_notes(summaries) == ["vcd: alpha=1.0, beta=0.1, noise_step=500, seed=0"]
    assert len(store.summaries(baseline=vcd[0])) == 1
    run_id = store.ensure_run(
        model="m",
        dataset="synthetic",
        sweep="eval",
        method=Method.of(VCD(alpha=0.5)).to_dict(),
        generation=generation,
    )
    store.set_summary(run_id, {"n": 10, "accuracy": 0.6})
    with pytest.raises(fl.FacLensError, match="baseline"):
        tables.table1(store.summaries(), ["vanilla", "vcd"])
