"""The embedded wing's figures change no global state; the demo (the README's main job) runs end
to end."""

import matplotlib
import matplotlib.pyplot as plt


def test_the_loss_figure_of_the_model_card_changes_no_global_state(tmp_path):
    from fac_lens.embedded.tiny_card import _loss_figure

    (tmp_path / "training_log.csv").write_text("step,smoothed_loss\n0,2.0\n1,1.5\n2,1.2\n")
    rc, figures = dict(matplotlib.rcParams), plt.get_fignums()
    _loss_figure(tmp_path)
    assert (tmp_path / "training_loss.png").stat().st_size > 1000
    assert dict(matplotlib.rcParams) == rc and plt.get_fignums() == figures


def test_demo_runs_on_fac_tiny_and_writes_its_figure(tmp_path):
    from fac_lens.embedded.demo import main

    out = tmp_path / "demo.png"
    rc = dict(matplotlib.rcParams)
    summary = main(["--out", str(out), "--samples", "16"])
    assert out.exists() and out.stat().st_size > 10_000
    assert dict(matplotlib.rcParams) == rc  # the theme is drawn inside rc_context
    assert summary["heads"]["total"] == 24  # fac-tiny: 6 layers x 4 heads
    assert len(summary["layer_visual_ratio"]) == 6
    assert 0.0 <= summary["vanilla"]["accuracy"] <= 1.0 and set(summary["fac"]["per_kind"]) == {
        "attribute",
        "count",
        "exist",
        "two_step",
    }
    assert summary["case"]["vanilla_trace"].startswith("<think>")
