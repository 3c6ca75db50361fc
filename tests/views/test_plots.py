"""Plots draw on the given Axes (else the current one) and return it, in one palette, changing no
global state."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

import fac_lens as fl  # noqa: E402
from fac_lens.experiments import figures as F  # noqa: E402
from fac_lens.plotting import (  # noqa: E402
    PALETTE,
    contribution_before_after,
    plot_contribution,
    plot_head_map,
    plot_layer_trajectory,
)

RATIOS = fl.HeadRatios(torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(3)))
SELECTION = fl.identify_heads(RATIOS, l_perc=1, l_reas=3, tau_perc=0.5, tau_reas=0.5)
MASKS = (SELECTION.perception.numpy(), SELECTION.reasoning.numpy())
PLOTS = {
    "head_map": lambda ax=None: plot_head_map(RATIOS, SELECTION, ax=ax),
    "layer_trajectory": lambda ax=None: plot_layer_trajectory(RATIOS, 1, 3, ax=ax),
    "contribution": lambda ax=None: plot_contribution(torch.rand(5, 4) - 0.5, ax=ax),
    "ratio_trajectory": lambda ax=None: F.ratio_trajectory(RATIOS.per_sample.numpy(), 1, 3, ax=ax),
    "head_class_map": lambda ax=None: F.head_class_map(RATIOS.visual.numpy(), *MASKS, ax=ax),
}


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plots_draw_on_the_given_axes_else_the_current_one(name):
    others = plt.get_fignums()  # figures earlier tests left open
    fig, (given, current) = plt.subplots(1, 2)
    assert PLOTS[name](ax=given) is given and given.has_data()
    plt.sca(current)
    assert not current.has_data()
    assert PLOTS[name]() is current and current.has_data()
    assert plt.get_fignums() == [*others, fig.number]  # no figure of its own
    plt.close(fig)


def test_one_palette_for_perception_and_reasoning():
    fig, (a, b, c) = plt.subplots(1, 3)
    plot_head_map(RATIOS, SELECTION, ax=a)
    F.head_class_map(RATIOS.visual.numpy(), *MASKS, ax=b)
    for ax in (a, b):
        edges = {tuple(p.get_edgecolor()) for p in ax.patches if not p.get_fill()}
        assert edges == {to_rgba(PALETTE["perception"]), to_rgba(PALETTE["reasoning"])}
    plot_layer_trajectory(RATIOS, 1, 3, ax=c)
    boundaries = {line.get_xdata()[0]: to_rgba(line.get_color()) for line in c.lines[1:]}
    assert boundaries == {1: to_rgba(PALETTE["perception"]), 3: to_rgba(PALETTE["reasoning"])}
    plt.close(fig)


def test_before_after_draws_into_the_given_figure():
    others = plt.get_fignums()
    fig = plt.figure()
    before, after = np.ones((5, 4)), np.zeros((5, 4))
    assert contribution_before_after(before, after, fig=fig) is fig
    assert len([ax for ax in fig.axes if ax.get_xlabel() == "head"]) == 3
    assert plt.get_fignums() == [*others, fig.number]
    plt.close(fig)


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
