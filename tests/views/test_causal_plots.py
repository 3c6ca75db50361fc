"""The causal-analysis plots draw the values they are given on the given Axes (else the current
one), return it, and change no global matplotlib state."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import fac_lens as fl  # noqa: E402
from fac_lens import plotting as P  # noqa: E402
from fac_lens.config_search import ConfigSearch, Interval  # noqa: E402

G = torch.Generator().manual_seed(0)
MAP = torch.rand(3, 4, generator=G) - 0.5
EFFECTS = fl.ErasureEffects(MAP, MAP, MAP, MAP * 2, MAP[None], MAP[None])
CONC = fl.HeadConcentration(*(torch.rand(2, 3, 4, generator=G) for _ in range(4)))
PATCH = fl.PatchingResult(MAP, MAP, 1.0, 0.0, 5, None, 7)
RATIOS = fl.HeadRatios(torch.cat([torch.full((4, 3, 4), 0.4), torch.full((4, 3, 4), 0.05)], dim=1))
CONFIG = fl.FacConfig(
    l_perc=2, l_reas=3, tau_perc=0.2, tau_reas=0.1, g_perc=(1.1, 1.2, 1.3, 1, 1, 1), g_reas=1.3
)
SEARCH = ConfigSearch(
    CONFIG, Interval(0.5, 0.4, 0.6, 10), Interval(0.45, 0.3, 0.6, 10), [(CONFIG, 0.2), (CONFIG, 0.5)], {}
)
PLOTS = {
    "erasure": (lambda ax=None: P.plot_erasure(EFFECTS, ax=ax), MAP * 2),
    "concentration": (lambda ax=None: P.plot_concentration(CONC, ax=ax), CONC.entropy.mean(0)),
    "patching": (lambda ax=None: P.plot_patching(PATCH, ax=ax), MAP),
    "ablation": (lambda ax=None: P.plot_ablation_effect(MAP, 2 * MAP, ax=ax), MAP),
    "layer_gains": (lambda ax=None: P.plot_layer_gains(CONFIG, 6, ax=ax), None),
    "config_search": (lambda ax=None: P.plot_config_search(SEARCH, ax=ax), None),
    "change_point": (lambda ax=None: P.plot_change_point(RATIOS, ax=ax), None),
}


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plots_draw_on_the_given_axes_and_change_no_global_state(name):
    plot, expected = PLOTS[name]
    before = dict(plt.rcParams)
    fig, (given, other) = plt.subplots(1, 2)
    assert plot(ax=given) is given and given.has_data() and not other.has_data()
    if expected is not None:  # the heat map holds exactly the values given
        np.testing.assert_allclose(
            np.asarray(given.collections[0].get_array()).reshape(3, 4), expected.numpy(), rtol=1e-6
        )
    plt.sca(other)
    assert plot() is other
    assert dict(plt.rcParams) == before
    plt.close(fig)


def test_specific_content():
    fig, ax = plt.subplots()
    P.plot_layer_gains(CONFIG, 6, ax=ax)
    heights = [patch.get_height() for patch in ax.patches]
    assert heights[:3] == pytest.approx([1.1, 1.2, 1.3])  # perception band: layers 0-2
    assert heights[6 + 3 :] == pytest.approx([1.3, 1.3, 1.3])  # reasoning band: layers 3-5
    ax.clear()
    P.plot_change_point(RATIOS, ax=ax)
    assert any("change point: layer 3" in t.get_text() for t in ax.get_legend().get_texts())
    ax.clear()
    P.plot_config_search(SEARCH, ax=ax)
    assert list(ax.lines[1].get_ydata()) == [0.2, 0.5]
    plt.close(fig)
