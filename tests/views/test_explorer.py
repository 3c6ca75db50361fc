"""The explorer panel driven headless (set a control, read the counts and the figure) and fl.compare."""

from pathlib import Path

import pytest

pytest.importorskip("ipywidgets", reason="the explorer needs ipywidgets: pip install -e '.[notebook]'")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import fac_lens as fl  # noqa: E402
from fac_lens.data.sample import Sample  # noqa: E402
from fac_lens.data.synthetic import load_split  # noqa: E402
from fac_lens.errors import FacLensError  # noqa: E402

MODEL = Path("data/models/fac-tiny")
pytestmark = pytest.mark.skipif(not (MODEL / "model.safetensors").exists(), reason="fac-tiny not trained")


@pytest.fixture(scope="module")
def tiny():
    return fl.load(MODEL)


@pytest.fixture(scope="module")
def samples():
    return list(load_split("data/synthetic/test/test.jsonl"))[:4]


def _outlines(panel) -> int:
    from matplotlib.patches import Rectangle

    return sum(isinstance(p, Rectangle) and not p.get_fill() for p in panel.figure.axes[0].patches)


def test_moving_sliders_updates_counts_and_figure(tiny, samples):
    panel = fl.explorer(tiny, samples, progress=False)
    visual = fl.attention_ratios(
        tiny, [tiny.prepare(s.image, s.question) for s in samples], progress=False
    ).visual
    # the counts are eq. 5 on the mean ratio map, written by hand
    for tau_perc in (0.0, 0.55, 1.0):
        panel.sliders["tau_perc"].value = tau_perc
        config = panel.config()
        perception = int((visual[: config.l_perc + 1] >= config.tau_perc).sum())
        reasoning = int((visual[config.l_reas :] <= config.tau_reas).sum())
        assert f"perception: {perception} heads" in panel.counts.value
        assert f"reasoning: {reasoning} heads" in panel.counts.value
        assert _outlines(panel) == perception + reasoning
    panel.sliders["tau_perc"].value = 1.0
    panel.sliders["tau_reas"].value = 0.0
    assert "no heads selected" in panel.message.value
    before = panel.figure
    panel.sliders["l_reas"].value = 0
    assert panel.figure is not before
    # the per-sample view uses that sample's own ratios
    panel.sample.value = panel.sample.options[2]
    assert panel.ratios().n_samples == 1


def test_bad_samples_and_failed_runs_show_a_message(tiny, samples, monkeypatch):
    blank = Sample("no-image", None, "what color is it ?", "red", "attribute")
    panel = fl.explorer(tiny, [*samples[:2], blank], progress=False)
    panel.sample.value = panel.sample.options[-1]
    assert "no image" in panel.message.value
    panel.run()  # running the model on it reports instead of raising
    assert "no image" in panel.message.value and not panel.run_button.disabled
    panel.sample.value = panel.sample.options[1]

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    import sys

    monkeypatch.setattr(sys.modules["fac_lens.compare"], "case_study", broken)
    panel.run()
    assert "model run failed: RuntimeError: out of memory" in panel.message.value
    with pytest.raises(FacLensError, match="has an image"):
        fl.explorer(tiny, [blank], progress=False)


def test_run_button_shows_traces_and_maps(tiny, samples):
    panel = fl.explorer(tiny, samples[:2], max_new_tokens=24, progress=False)
    panel.sample.value = panel.sample.options[1]
    panel.run()
    comparison = panel.last_comparison
    assert comparison is not None and panel.message.value == ""
    assert "vanilla" in panel.traces.value and "rescaled" in panel.traces.value
    reference = fl.generate(tiny, tiny.prepare(samples[0].image, samples[0].question), max_new_tokens=24)
    assert " ".join(comparison.case.vanilla_tokens) == " ".join(reference.text[0].split())


def test_compare_marks_the_first_difference(tiny, samples):
    strong = fl.FacConfig(l_perc=2, l_reas=3, tau_perc=0.0, tau_reas=1.0, g_perc=3.0, g_reas=0.2)
    cmp = fl.compare(tiny, samples[1], fac=strong, max_new_tokens=24)
    vanilla, fac = cmp.case.vanilla_tokens, cmp.case.fac_tokens
    expected = next((i for i, (a, b) in enumerate(zip(vanilla, fac, strict=False)) if a != b), None)
    if expected is None and len(vanilla) != len(fac):
        expected = min(len(vanilla), len(fac))
    assert cmp.first_difference == expected
    assert expected is not None, "gains this strong should change the trace"
    html = cmp.html()
    assert html.count('class="fac-diff"') == 2  # the differing token in each column
    fig = cmp.figure()
    assert len(fig.axes) >= 3
    with pytest.raises(FacLensError, match="fac="):
        fl.compare(tiny, samples[0])


def test_case_study_maps_the_rescaled_answer_on_its_own_trace(tiny, samples):
    strong = fl.FacConfig(l_perc=2, l_reas=3, tau_perc=0.0, tau_reas=1.0, g_perc=3.0, g_reas=0.2)
    case = fl.case_study(tiny, samples[1].image, samples[1].prompt(), strong, max_new_tokens=24)
    inputs = tiny.prepare(samples[1].image, samples[1].prompt())
    rescaled = fl.generate(tiny, inputs, max_new_tokens=24, fac=strong)
    tokens = tiny.tokenizer.convert_ids_to_tokens(rescaled.sequences[0])
    ends = [i for i in range(rescaled.prompt_length, len(tokens)) if tokens[i] == "</think>"]
    answer = min(ends[-1] + 1, len(tokens) - 1) if ends else len(tokens) - 1
    assert case.after_own.positions == (answer - 1,)
    assert case.after_own.targets == (int(rescaled.sequences[0, answer]),)
    assert case.fac_answer_token == tokens[answer]
    assert case.to_dict()["top_heads_fac_own_trace"] == case.after_own.ranking(top=3)
    fig = fl.Comparison(case).figure()
    titles = [ax.get_title() for ax in fig.axes]
    assert any("own trace" in t for t in titles) and sum(ax.get_xlabel() == "head" for ax in fig.axes) == 4
