"""Plots draw on the given Axes and return it; the demo (the README's main job) runs end to end."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import fac_lens as fl  # noqa: E402
from fac_lens.plotting import plot_contribution, plot_head_map, plot_layer_trajectory  # noqa: E402


def test_head_map_outlines_each_identified_head():
    visual = torch.rand(6, 4, generator=torch.Generator().manual_seed(0))
    sel = fl.identify_heads(visual, l_perc=2, l_reas=3, tau_perc=0.6, tau_reas=0.3)
    fig, ax = plt.subplots()
    returned = plot_head_map(fl.HeadRatios(visual[None]), sel, ax=ax)
    assert returned is ax
    n_outlined = len([p for p in ax.patches if not p.get_fill()])
    assert n_outlined == sel.counts["perception"] + sel.counts["reasoning"]
    data = ax.collections[0].get_array().reshape(6, 4)
    assert torch.allclose(torch.as_tensor(data, dtype=torch.float32), visual)
    plt.close(fig)


def test_trajectory_and_contribution_plots_return_their_axes():
    ratios = fl.HeadRatios(torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(1)))
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_layer_trajectory(ratios, l_perc=1, l_reas=3, ax=a) is a
    mean, _ = ratios.layer_trajectory()
    assert torch.allclose(torch.as_tensor(a.lines[0].get_ydata(), dtype=torch.float32), mean)
    assert {line.get_xdata()[0] for line in a.lines[1:]} == {1, 3}
    assert plot_contribution(torch.rand(5, 4) - 0.5, ax=b) is b
    plt.close(fig)


def test_demo_runs_on_fac_tiny_and_writes_its_figure(tmp_path):
    from fac_lens.embedded.demo import main

    out = tmp_path / "demo.png"
    summary = main(["--out", str(out), "--samples", "16"])
    assert out.exists() and out.stat().st_size > 10_000
    assert summary["heads"]["total"] == 24  # fac-tiny: 6 layers x 4 heads
    assert len(summary["layer_visual_ratio"]) == 6
    assert 0.0 <= summary["vanilla"]["accuracy"] <= 1.0 and set(summary["fac"]["per_kind"]) == {
        "attribute",
        "count",
        "exist",
        "two_step",
    }
    assert summary["case"]["vanilla_trace"].startswith("<think>")
