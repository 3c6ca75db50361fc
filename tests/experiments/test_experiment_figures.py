"""Paper figures and tables from hand-made run summaries: what is drawn, the values, the bad inputs."""

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fac_lens.errors import FacLensError  # noqa: E402
from fac_lens.experiments import figures as F  # noqa: E402
from fac_lens.experiments import tables as T  # noqa: E402
from fac_lens.ratios import HeadRatios  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # seaborn's cmap.set_bad

DEFAULT = {"l_perc": 7, "l_reas": 3, "tau_perc": 0.22, "tau_reas": 0.01, "g_perc": 1.16, "g_reas": 1.3}


def run(name="dynamic", dataset="hb", sweep="eval", model="m", accuracy=0.5, **kw):
    """One summaries row with every column of the spec (FAC defaults for the FAC methods)."""
    fac = name not in ("vanilla",)
    row = {
        "run_id": f"r{np.random.default_rng().integers(1 << 40):x}",
        "model": model,
        "dataset": dataset,
        "sweep": sweep,
        "code_version": "v1",
        "name": name,
        "mode": {"vanilla": "none", "static": "static"}.get(name, "dynamic"),
        "strategy": None,
        **{k: (v if fac else None) for k, v in DEFAULT.items()},
        "query": "last" if fac else None,
        "n_perception": None,
        "n_reasoning": None,
        "n": 100,
        "accuracy": accuracy,
        "f1": float("nan"),
        "binary_f1": float("nan"),
        "per_kind": {},
        "errors": {},
        "seconds_per_batch": 2.0,
        "seconds_total": 50.0,
        "max_new_tokens": 64,
        "batch_size": 4,
        "seed": 0,
    }
    row.update(kw)
    return row


def frame(*rows):
    return pd.DataFrame(list(rows))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def new_ax():
    return plt.subplots()[1]


# ------------------------------------------------------------------------------------------ Figure 3


def test_efficiency_scatter_one_point_per_method_with_hand_computed_x():
    df = frame(
        run("vanilla", accuracy=0.5, seconds_per_batch=2.0),
        run("dynamic", accuracy=0.6, seconds_per_batch=2.0, seed=0),
        run("dynamic", accuracy=0.7, seconds_per_batch=2.2, seed=1),  # seeds are averaged
        run("static", accuracy=0.55, seconds_per_batch=1.0),
        run("dynamic", sweep="boundary", l_perc=2, accuracy=0.9),  # a sweep cell, not the evaluation
        run("vanilla", dataset="other"),
    )
    ax = new_ax()
    assert F.efficiency_scatter(df, dataset="hb", ax=ax) is ax
    points = {c.get_label(): c.get_offsets()[0] for c in ax.collections}
    assert set(points) == {"vanilla", "static", "dynamic"}
    assert np.allclose(points["dynamic"], [(0.65 / 2.1) ** 2, 0.65])
    assert np.allclose(points["vanilla"], [(0.5 / 2.0) ** 2, 0.5])
    with pytest.raises(FacLensError, match="pass dataset="):
        F.efficiency_scatter(df)


def test_efficiency_scatter_names_strategies_and_rejects_bad_timings():
    df = frame(
        run("vanilla"),
        run("strategy", strategy="A", accuracy=0.6),
        run("strategy", strategy="C", accuracy=0.4),
    )
    ax = F.efficiency_scatter(df)
    assert sorted(c.get_label() for c in ax.collections) == ["strategy-A", "strategy-C", "vanilla"]
    with pytest.raises(FacLensError, match="seconds_per_batch must be > 0"):
        F.efficiency_scatter(frame(run("vanilla", seconds_per_batch=0.0)))
    with pytest.raises(FacLensError, match="no runs of method 'static'"):
        F.efficiency_scatter(df, methods=["vanilla", "static"])


# ------------------------------------------------------------------------------------------ Figure 4


def boundary_frame():
    acc = {(3, 2): 0.50, (3, 4): 0.52, (5, 2): 0.61, (7, 2): 0.58}
    rows = [run(sweep="boundary", l_perc=p, l_reas=r, accuracy=a) for (p, r), a in acc.items()]
    rows += [
        run(sweep="eval", l_perc=5, l_reas=4, accuracy=0.66),  # shared with the evaluation: joins the grid
        run(sweep="gains", l_perc=7, l_reas=4, g_perc=1.5, accuracy=0.99),  # other fixed settings: not a cell
        run("vanilla", sweep="boundary", accuracy=0.40),
        run(sweep="boundary", dataset="cl", l_perc=3, l_reas=2, accuracy=0.3),
    ]
    return frame(*rows)


def test_boundary_heatmap_cells_blank_where_missing_and_values():
    df = boundary_frame()
    ax = new_ax()
    assert F.boundary_heatmap(df, "hb", ax=ax) is ax
    mesh = ax.collections[0]
    values = np.ma.masked_invalid(mesh.get_array()).reshape(3, 2)  # rows l_perc 3,5,7; columns l_reas 2,4
    assert values.size == 6 and values.mask.sum() == 1 and values.mask[2, 1]
    assert values[1, 1] == pytest.approx(0.66) and values[0, 1] == pytest.approx(0.52)
    assert len([t for t in ax.texts if t.get_text()]) == 5  # annotated non-missing cells
    assert "ell_{reas}" in ax.get_xlabel() and "ell_{perc}" in ax.get_ylabel()

    rel = F.boundary_heatmap(df, "hb", relative_to_vanilla=True, ax=new_ax())
    diff = np.ma.masked_invalid(rel.collections[0].get_array()).reshape(3, 2)
    assert diff[1, 0] == pytest.approx(0.61 - 0.40)


def test_boundary_heatmap_bad_inputs_name_the_fix():
    df = boundary_frame()
    with pytest.raises(FacLensError, match="fac-lens sweep --grid boundary --dataset nope"):
        F.boundary_heatmap(df, "nope")
    with pytest.raises(FacLensError, match="vanilla run"):
        F.boundary_heatmap(df, "cl", relative_to_vanilla=True)
    with pytest.raises(FacLensError, match="summaries is empty"):
        F.boundary_heatmap(df.iloc[:0], "hb")
    mixed = pd.concat([df, frame(run(sweep="boundary", l_perc=9, l_reas=9, tau_perc=0.3))])
    with pytest.raises(FacLensError, match="filter summaries to one setting"):
        F.boundary_heatmap(mixed, "hb")
    with pytest.raises(FacLensError, match="metric 'f1' is NaN"):
        F.boundary_heatmap(df, "hb", metric="f1")


def test_boundary_heatmaps_one_panel_per_dataset():
    fig = F.boundary_heatmaps(boundary_frame())
    panels = [ax for ax in fig.axes if ax.get_xlabel().startswith("reasoning boundary")]
    assert len(panels) == 2
    assert sorted(ax.get_title().split(" ")[0] for ax in panels) == ["cl", "hb"]


# ------------------------------------------------------------------------------------------ Figure 5


def gains_frame():
    rows = [
        run(dataset="a", sweep="gains", g_reas=gr, g_perc=gp, accuracy=acc)
        for gr, gp, acc in ((1.3, 1.0, 0.5), (1.3, 1.16, 0.6), (1.1, 1.16, 0.55))
    ]
    rows += [
        run(dataset="b", sweep="gains", g_reas=1.5, g_perc=1.16, accuracy=0.3),
        run(dataset="b", sweep="eval", accuracy=0.35),  # the default setting, labelled by the evaluation
        run("vanilla", dataset="a", accuracy=0.45),
    ]
    return frame(*rows)


def threshold_rows():
    settings = ((0.01, 0.22, 0.6, 12, 30), (0.01, 0.3, 0.5, 8, 30), (0.05, 0.22, 0.4, 12, 90))
    return [
        run(
            sweep="thresholds",
            dataset=d,
            tau_reas=tr,
            tau_perc=tp,
            accuracy=acc,
            n_perception=n_p,
            n_reasoning=n_r,
            heads_perception_mean=n_p - 0.5,  # dynamic runs: per-pass mean and std
            heads_perception_std=1.0,
            heads_reasoning_mean=n_r / 3,
            heads_reasoning_std=2.0,
        )
        for d in ("a", "b")
        for tr, tp, acc, n_p, n_r in settings
    ]


def test_gain_curves_one_line_per_dataset_on_sorted_settings():
    df = gains_frame()
    ax = new_ax()
    assert F.gain_curves(df, ax=ax) is ax
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["(1.1, 1.16)", "(1.3, 1)", "(1.3, 1.16)", "(1.5, 1.16)"]
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"a", "b", "a vanilla"}  # b has no vanilla run
    assert list(lines["b"].get_xdata()) == [2, 3] and np.allclose(lines["b"].get_ydata(), [0.35, 0.3])
    assert np.allclose(lines["a"].get_ydata(), [0.55, 0.5, 0.6])
    assert lines["a vanilla"].get_ydata()[0] == pytest.approx(0.45)

    rel = F.gain_curves(df, dataset="a", relative_to_vanilla=True, ax=new_ax())
    assert np.allclose(rel.lines[0].get_ydata(), [0.10, 0.05, 0.15])
    with pytest.raises(FacLensError, match="vanilla run"):
        F.gain_curves(df, dataset="b", relative_to_vanilla=True)
    with pytest.raises(FacLensError, match="--grid thresholds"):
        F.threshold_curves(df)


def test_threshold_curves_and_head_counts():
    df = frame(*threshold_rows())
    ax = new_ax()
    assert F.threshold_curves(df, ax=ax, vanilla=False) is ax
    assert len(ax.lines) == 2  # datasets a and b
    assert [t.get_text() for t in ax.get_xticklabels()] == ["(0.01, 0.22)", "(0.01, 0.3)", "(0.05, 0.22)"]
    assert np.allclose(ax.lines[0].get_ydata(), [0.6, 0.5, 0.4])

    ax = new_ax()
    assert F.head_counts(df, ax=ax) is ax
    perception, perception_bars, reasoning, reasoning_bars = ax.collections
    assert len(perception.get_offsets()) == len(reasoning.get_offsets()) == 6
    xy = np.asarray(perception.get_offsets())
    assert sorted(xy[:, 1]) == [7.5, 7.5, 11.5, 11.5, 11.5, 11.5]  # per-pass means, not n_perception
    positions = np.array([0, 1, 2, 0, 1, 2]) - 0.12
    assert np.all(np.abs(xy[:, 0] - positions) <= 0.06 + 1e-9)  # small jitter around the setting
    for (x, y), segment in zip(xy, perception_bars.get_segments(), strict=True):
        assert np.allclose(segment, [[x, y - 1.0], [x, y + 1.0]])  # +-1 std
    rx, ry = np.asarray(reasoning.get_offsets()).T
    assert all(
        np.allclose(seg, [[a, b - 2.0], [a, b + 2.0]])
        for (a, b), seg in zip(zip(rx, ry, strict=True), reasoning_bars.get_segments(), strict=True)
    )
    assert np.allclose(ax.lines[1].get_ydata(), [10, 10, 30])  # mean reasoning heads per setting

    no_counts = df.assign(
        n_perception=None, n_reasoning=None, heads_perception_mean=None, heads_reasoning_mean=None
    )
    with pytest.raises(FacLensError, match="no head counts"):
        F.head_counts(no_counts)


def test_head_counts_static_runs_show_their_one_count_and_dynamic_runs_need_per_pass_counts():
    rows = [
        run(sweep="thresholds", name="static", tau_reas=0.01, tau_perc=0.22, n_perception=12, n_reasoning=30),
        run(sweep="thresholds", name="static", tau_reas=0.01, tau_perc=0.3, n_perception=8, n_reasoning=31),
    ]
    ax = F.head_counts(frame(*rows), ax=new_ax())
    assert len(ax.collections) == 2  # two classes, no spread bars
    assert sorted(np.asarray(ax.collections[0].get_offsets())[:, 1]) == [8, 12]
    assert sorted(np.asarray(ax.collections[1].get_offsets())[:, 1]) == [30, 31]
    # a dynamic run stored without per-pass counts is not drawn with the static count of the ratio map
    old_dynamic = run(sweep="thresholds", tau_reas=0.01, tau_perc=0.22, n_perception=99, n_reasoning=99)
    with pytest.raises(FacLensError, match="no head counts"):
        F.head_counts(frame(old_dynamic))


def test_figure5_three_panels_and_missing_sweeps():
    fig = F.figure5(pd.concat([gains_frame(), frame(*threshold_rows())]))
    assert len(fig.axes) == 3 and all(ax.axison for ax in fig.axes)
    partial = F.figure5(gains_frame())
    assert len(partial.axes) == 3
    assert [ax.axison for ax in partial.axes] == [True, False, False]
    assert "--grid thresholds" in partial.axes[1].texts[0].get_text().replace("\n", " ")
    with pytest.raises(FacLensError, match="nothing to draw"):
        F.figure5(frame(run("vanilla")))


def test_curves_ask_for_a_model_when_several():
    both = pd.concat([gains_frame(), gains_frame().assign(model="m2")])
    with pytest.raises(FacLensError, match="pass model="):
        F.gain_curves(both)
    assert len(F.gain_curves(both, model="m2").lines) == 3


# ------------------------------------------------------------------------------------------ arrays


def test_ratio_trajectory_mean_line_and_boundaries():
    per_sample = np.random.default_rng(0).random((4, 5, 3))
    ax = new_ax()
    assert F.ratio_trajectory(per_sample, l_perc=1, l_reas=3, ax=ax) is ax
    assert np.allclose(ax.lines[0].get_ydata(), per_sample.mean(-1).mean(0), atol=1e-6)
    assert {line.get_xdata()[0] for line in ax.lines[1:]} == {1, 3}
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    spread = per_sample.mean(-1).std(0, ddof=1)
    assert band.max() == pytest.approx((per_sample.mean(-1).mean(0) + spread).max(), abs=1e-6)
    with pytest.raises(FacLensError, match=r"\[n_samples, n_layers, n_heads\]"):
        F.ratio_trajectory(per_sample[0])
    with pytest.raises(FacLensError, match=r"l_reas=9 is outside"):
        F.ratio_trajectory(per_sample, l_reas=9)
    from_ratios = F.ratio_trajectory(
        HeadRatios(torch.as_tensor(per_sample, dtype=torch.float32)), ax=new_ax()
    )
    assert np.allclose(from_ratios.lines[0].get_ydata(), ax.lines[0].get_ydata(), atol=1e-6)


def test_head_class_map_outlines_each_class():
    visual = np.random.default_rng(1).random((4, 3))
    perception = np.zeros((4, 3), bool)
    perception[0, :2] = True
    reasoning = np.zeros((4, 3), bool)
    reasoning[3, 1] = True
    ax = new_ax()
    assert F.head_class_map(visual, perception, reasoning, ax=ax) is ax
    outlined = [p for p in ax.patches if not p.get_fill()]
    assert len(outlined) == 3
    assert np.allclose(ax.collections[0].get_array().reshape(4, 3), visual, atol=1e-6)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["perception (2)", "reasoning (1)", "other (9)"]
    with pytest.raises(FacLensError, match="shaped like visual"):
        F.head_class_map(visual, perception[:2], reasoning)
    with pytest.raises(FacLensError, match=r"\[n_layers, n_heads\]"):
        F.head_class_map(visual[None], perception, reasoning)


def test_contribution_before_after_shared_scale_and_difference():
    rng = np.random.default_rng(2)
    before, after = rng.normal(size=(5, 4)), 3 * rng.normal(size=(5, 4))
    fig = F.contribution_before_after(before, after, title="case 1")
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "head"]
    assert len(panels) == 3
    assert panels[0].collections[0].get_clim() == panels[1].collections[0].get_clim()
    bound = max(np.abs(before).max(), np.abs(after).max())
    assert panels[0].collections[0].get_clim() == pytest.approx((-bound, bound))
    assert np.allclose(panels[2].collections[0].get_array().reshape(5, 4), after - before, atol=1e-5)
    assert fig.get_suptitle() == "case 1"
    importance = F.contribution_before_after(before, after, absolute=True)
    assert importance.axes[0].collections[0].get_clim()[0] == 0.0
    with pytest.raises(FacLensError, match="same"):
        F.contribution_before_after(before, after[:, :3])
    with pytest.raises(FacLensError, match=r"\[n_layers, n_heads\]"):
        F.contribution_before_after(before[0], after[0])


# ------------------------------------------------------------------------------------------ tables


def eval_frame():
    return frame(
        run("vanilla", dataset="hb", accuracy=0.50, f1=0.40, seconds_per_batch=2.0),
        run("dynamic", dataset="hb", accuracy=0.60, f1=0.55, seconds_per_batch=2.1),
        run("dynamic", dataset="hb", sweep="boundary", l_perc=2, accuracy=0.95, seconds_per_batch=9.0),
        run("vanilla", dataset="mv", accuracy=0.30, seconds_per_batch=4.0),
        run("dynamic", dataset="mv", accuracy=0.36, seconds_per_batch=3.0),
        run("dynamic", dataset="mv", accuracy=0.38, seconds_per_batch=3.2, seed=1),
    )


def test_table1_picks_evaluation_runs_and_f1_only_where_defined():
    t = T.table1(eval_frame())
    # mv's dynamic cell has two seeds: its std column appears
    assert list(t.columns) == [("hb", "accuracy"), ("hb", "f1"), ("mv", "accuracy"), ("mv", "accuracy_std")]
    assert list(t.index) == [("m", "vanilla"), ("m", "dynamic")]
    assert t.loc[("m", "dynamic"), ("hb", "accuracy")] == pytest.approx(0.60)
    assert t.loc[("m", "dynamic"), ("mv", "accuracy")] == pytest.approx(0.37)
    # sample std of 0.36 and 0.38: sqrt(((0.01)^2 + (0.01)^2) / (2 - 1))
    assert t.loc[("m", "dynamic"), ("mv", "accuracy_std")] == pytest.approx(math.sqrt(2e-4))
    assert math.isnan(t.loc[("m", "vanilla"), ("mv", "accuracy_std")])  # one seed
    assert t.loc[("m", "vanilla"), ("hb", "f1")] == pytest.approx(0.40)
    with pytest.raises(FacLensError, match=r"no runs of method\(s\) \['static'\]"):
        T.table1(eval_frame(), methods=("vanilla", "static"))
    unlabelled = eval_frame().assign(sweep="boundary")
    with pytest.raises(FacLensError, match="2 different configurations.*l_perc"):
        T.table1(unlabelled)


def test_table2_ablation_rows_and_matching_full_run():
    df = pd.concat(
        [
            eval_frame(),
            frame(
                run(
                    "perception_only", dataset="hb", sweep="ablation", accuracy=0.55, l_reas=None, g_reas=None
                ),
                run(
                    "reasoning_only", dataset="hb", sweep="ablation", accuracy=0.57, l_perc=None, g_perc=None
                ),
                run("static", dataset="hb", sweep="eval", accuracy=0.1),
            ),
        ]
    )
    t = T.table2(df)
    assert [m for _, m in t.index] == [
        "vanilla",
        "w/o reasoning rescaling",
        "w/o perception rescaling",
        "full (dynamic)",
    ]
    assert list(t[("hb", "accuracy")]) == pytest.approx([0.50, 0.55, 0.57, 0.60])
    assert list(t.columns) == [("hb", "accuracy"), ("hb", "f1")]  # only datasets with ablation runs
    with pytest.raises(FacLensError, match="--grid ablation"):
        T.table2(eval_frame())


def test_markdown_and_latex_rendering():
    t = T.table1(eval_frame())
    md = T.to_markdown(t).strip().splitlines()
    assert md[0] == "| model | method | hb accuracy | hb f1 | mv accuracy | mv accuracy_std |"
    assert md[1] == "|:---|:---|---:|---:|---:|---:|"
    assert len(md) == 2 + len(t)
    assert md[3] == "| m | dynamic | 0.600 | 0.550 | 0.370 | 0.014 |"
    assert "0.6000" in T.to_markdown(t, floatfmt=".4f")
    latex = T.to_latex(pd.DataFrame({"change_pct": ["2.10 (+5.0%)"]}))
    assert "\\begin{tabular}" in latex and "\\end{tabular}" in latex
    assert "(+5.0\\%)" in latex and "change\\_pct" in latex
    nan_md = T.to_markdown(pd.DataFrame({"x": [1.0, math.nan]}))
    assert nan_md.splitlines()[-1] == "| - |"


def test_tables_reject_bad_frames():
    with pytest.raises(FacLensError, match="pandas DataFrame"):
        T.table1([{"model": "m"}])
    with pytest.raises(FacLensError, match="summaries is empty.*fac-lens eval"):
        T.table1(eval_frame().iloc[:0])
    with pytest.raises(FacLensError, match=r"lacks the column\(s\) \['accuracy'"):
        T.table1(eval_frame().drop(columns=["accuracy"]))
    with pytest.raises(FacLensError, match="DataFrame"):
        T.to_markdown("not a table")


# ------------------------------------------------------------------------------------------ the writer


class SuiteExperiment:
    """What ``figure_suite.write_all`` reads of an Experiment: names, summaries, the ratio map, and
    the store's records (the same four samples for every run)."""

    model_name, dataset_name, weights = "m", "hb", None

    def __init__(self, rows):
        self.rows = rows
        self.store = SimpleNamespace(records=lambda run_id: sample_records([1, 0, 1, 1]))

    def summaries(self):
        return frame(*self.rows)

    def ratios(self):
        return HeadRatios(torch.rand(4, 5, 3, generator=torch.Generator().manual_seed(0)))


@pytest.fixture
def svg_backend():
    """A backend other than the Agg the test modules select, as a notebook's inline backend would be."""
    previous = matplotlib.get_backend()
    plt.switch_backend("svg")
    yield
    plt.switch_backend(previous)


def test_write_all_leaves_the_backend_and_rcparams_as_they_were(tmp_path, monkeypatch, svg_backend):
    from fac_lens.config import FacConfig
    from fac_lens.experiments import figure_suite

    rows = [
        run("vanilla", sweep="ablation", accuracy=0.5, f1=0.4),
        run("dynamic", sweep="ablation", accuracy=0.6, f1=0.5),
        *(run(sweep="boundary", l_perc=p, l_reas=r, accuracy=a) for p, r, a in ((2, 3, 0.5), (3, 4, 0.6))),
        *(run(sweep="gains", g_reas=g, accuracy=a) for g, a in ((1.1, 0.55), (1.3, 0.6))),
        *threshold_rows(),
    ]
    members = {
        sweep: [r["run_id"] for r in rows if r["sweep"] == sweep]
        for sweep in ("ablation", "boundary", "gains", "thresholds")
    }
    maps = np.random.default_rng(3).normal(size=(2, 5, 3))
    monkeypatch.setattr(figure_suite, "case_arrays", lambda *_: (*maps, {"sample_id": "s0", "target": "yes"}))
    base = FacConfig(l_perc=1, l_reas=3, tau_perc=0.5, tau_reas=0.4)

    backend, rc, code = matplotlib.get_backend(), dict(matplotlib.rcParams), matplotlib.colors.to_rgba("b")
    written = figure_suite.write_all(SuiteExperiment(rows), base, tmp_path, members)
    assert len([p for p in written if p.suffix == ".png"]) == 6
    assert matplotlib.get_backend() == backend == "svg"
    assert [k for k in rc if matplotlib.rcParams[k] != rc[k]] == []
    assert matplotlib.colors.to_rgba("b") == code and plt.get_fignums() == []


# ------------------------------------------------------------------------------------------ uncertainty


def sample_records(correct, answers=None):
    """Records of samples s0, s1, ... (yes/no answers when given; else free-form)."""
    out = []
    for i, ok in enumerate(correct):
        answer = answers[i] if answers else "7"
        wrong = {"yes": "no", "no": "yes"}.get(answer, "8")
        out.append(
            {"sample_id": f"s{i}", "correct": bool(ok), "answer": answer, "choices": [],
             "predicted": answer if ok else wrong}
        )  # fmt: skip
    return out


def test_table1_difference_to_vanilla_with_interval_and_mcnemar():
    vanilla = [1, 1, 0, 0, 0, 0, 1, 0, 1, 0]
    dynamic = [1, 0, 1, 1, 1, 1, 1, 0, 1, 0]
    df = frame(
        run("vanilla", dataset="mv", accuracy=0.4, run_id="v"),
        run("dynamic", dataset="mv", accuracy=0.7, run_id="d"),
    )
    source = {"v": sample_records(vanilla), "d": sample_records(dynamic)}.__getitem__
    t = T.table1(df, records=source, n_resamples=500, seed=4)
    row = t.loc[("m", "dynamic"), "mv"]
    assert row["delta_accuracy"] == pytest.approx(0.7 - 0.4)
    # discordant: b = 1 (s1: vanilla only), c = 4 (s2..s5: dynamic only); p = 2 * (1 + 5) / 2^5
    assert row["mcnemar_p"] == pytest.approx(2 * 6 / 32)
    diff = np.array(dynamic, float) - np.array(vanilla, float)
    draws = np.random.default_rng(4).integers(0, 10, size=(500, 10))
    resampled = [diff[d].mean() for d in draws]
    low, high = np.percentile(resampled, [2.5, 97.5])
    assert (row["delta_accuracy_low"], row["delta_accuracy_high"]) == pytest.approx((low, high))
    assert row["delta_accuracy_low"] <= row["delta_accuracy"] <= row["delta_accuracy_high"]
    assert t.loc[("m", "vanilla"), "mv"][list(T.DELTA_COLUMNS["accuracy"])].isna().all()
    text = T.table_text(t)
    assert text.loc[("m", "dynamic"), ("mv", "Δ accuracy")] == (
        f"+0.300 [{low:+.3f}, {high:+.3f}] p={2 * 6 / 32:.2g}"
    )
    assert text.loc[("m", "vanilla"), ("mv", "Δ accuracy")] == "-"


def test_table_differences_pair_seeds_and_show_mean_and_std():
    answers = ["yes", "no", "yes", "no"]
    df = frame(
        run("vanilla", accuracy=0.5, f1=0.5, run_id="v0", seed=0),
        run("vanilla", accuracy=0.5, f1=0.5, run_id="v1", seed=1),
        run("dynamic", accuracy=1.0, f1=1.0, run_id="d0", seed=0),
        run("dynamic", accuracy=0.75, f1=0.7, run_id="d1", seed=1),
    )
    source = {
        "v0": sample_records([1, 1, 0, 0], answers),
        "v1": sample_records([1, 0, 1, 0], answers),
        "d0": sample_records([1, 1, 1, 1], answers),
        "d1": sample_records([1, 1, 1, 0], answers),
    }.__getitem__
    t = T.table1(df, records=source, n_resamples=200)
    row = t.loc[("m", "dynamic"), "hb"]
    # pairs (seed, sample): 8 of them; vanilla right on 4, dynamic on 7; b = 0, c = 3
    assert row["delta_accuracy"] == pytest.approx(7 / 8 - 4 / 8)
    assert row["mcnemar_p"] == pytest.approx(2 / 8)
    assert row["accuracy"] == pytest.approx(0.875) and row["accuracy_std"] == pytest.approx(
        math.sqrt(2 * 0.125**2)
    )
    assert not math.isnan(row["delta_f1"])
    text = T.table_text(t)
    assert text.loc[("m", "dynamic"), ("hb", "accuracy")] == f"0.875 ± {math.sqrt(2 * 0.125**2):.3f}"
    assert list(text.columns) == [("hb", "accuracy"), ("hb", "Δ accuracy"), ("hb", "f1"), ("hb", "Δ f1")]


def test_table_difference_without_common_samples_names_the_fix():
    df = frame(run("vanilla", dataset="mv", run_id="v"), run("dynamic", dataset="mv", run_id="d"))
    source = {
        "v": sample_records([1, 0]),
        "d": [{**r, "sample_id": "x" + r["sample_id"]} for r in sample_records([1, 0])],
    }
    with pytest.raises(FacLensError, match="no common samples"):
        T.table1(df, records=source.__getitem__)


def noisy_boundary_frame():
    """Boundary cells: (3, 2) as vanilla on every sample (inside the noise), (5, 2) right everywhere."""
    return frame(
        run("vanilla", sweep="boundary", accuracy=0.5, run_id="v"),
        run(sweep="boundary", l_perc=3, l_reas=2, accuracy=0.5, run_id="same"),
        run(sweep="boundary", l_perc=5, l_reas=2, accuracy=1.0, run_id="better"),
    )


NOISY_RECORDS = {
    "v": sample_records([1, 0] * 20),
    "same": sample_records([1, 0] * 20),  # identical: difference 0, interval [0, 0]
    "better": sample_records([1] * 40),  # +0.5 on 20 discordant samples: interval far from 0
}


def test_boundary_heatmap_hatches_the_cells_inside_the_noise():
    ax = F.boundary_heatmap(
        noisy_boundary_frame(), "hb", ax=new_ax(), records=NOISY_RECORDS.__getitem__, n_resamples=200
    )
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert [(p.get_x(), p.get_y()) for p in hatched] == [(0, 0)]  # row l_perc=3, column l_reas=2
    assert "inside the noise" in ax.get_legend().get_texts()[0].get_text()
    plain = F.boundary_heatmap(noisy_boundary_frame(), "hb", ax=new_ax())
    assert not [p for p in plain.patches if p.get_hatch()] and plain.get_legend() is None
    with pytest.raises(FacLensError, match="'accuracy' and 'f1'"):
        F.boundary_heatmap(
            noisy_boundary_frame(), "hb", metric="seconds_per_batch", records=NOISY_RECORDS.__getitem__
        )


def test_gain_curves_hollow_markers_inside_the_noise():
    df = frame(
        run("vanilla", sweep="gains", dataset="a", accuracy=0.5, run_id="v"),
        run(sweep="gains", dataset="a", g_reas=1.1, accuracy=0.5, run_id="same"),
        run(sweep="gains", dataset="a", g_reas=1.3, accuracy=1.0, run_id="better"),
    )
    ax = F.gain_curves(df, ax=new_ax(), records=NOISY_RECORDS.__getitem__, n_resamples=200)
    filled, hollow = ax.collections  # significant points first, then those inside the noise
    assert np.allclose(filled.get_offsets(), [[1, 1.0]]) and np.allclose(hollow.get_offsets(), [[0, 0.5]])
    assert np.allclose(hollow.get_facecolors()[0], [1, 1, 1, 1])  # white: hollow
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("inside the noise (95% interval" in text for text in labels)
    fig = F.figure5(df, records=NOISY_RECORDS.__getitem__, n_resamples=200)
    assert len(fig.axes[0].collections) == 2
    without_vanilla = df[df["name"] != "vanilla"]
    with pytest.raises(FacLensError, match="marking the noise needs a vanilla run"):
        F.gain_curves(without_vanilla, records=NOISY_RECORDS.__getitem__)


def test_table1_columns_in_the_papers_order_with_f1_where_defined():
    order = [
        "mathvista-mini[:8]",
        "mathvision-mini",
        "hallusionbench",
        "clevr",
        "mmstar",
        "seed-bench",
        "synthetic",
    ]
    with_f1 = {"hallusionbench", "mmstar", "seed-bench"}  # yes/no or multiple choice: the paper's F1 columns
    rows = [
        run(name, dataset=d, f1=0.5 if d in with_f1 else float("nan"))
        for d in reversed(order)
        for name in ("vanilla", "dynamic")
    ]
    t = T.table1(frame(*rows))
    assert list(t.columns) == [
        (d, m) for d in order for m in (("accuracy", "f1") if d in with_f1 else ("accuracy",))
    ]
    assert T.order_datasets(["SEED-Bench", "seedbench[:4]", "b", "a", "MathVista"]) == [
        "MathVista", "SEED-Bench", "seedbench[:4]", "a", "b",
    ]  # fmt: skip
