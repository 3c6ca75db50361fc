"""The explorer driven headless (set a control, click a head, run, read what the panel shows), its
pure functions, and fl.compare. References: eq. 5 by hand, a plain HF copy of fac-tiny (eager
attention, o_proj columns scaled by hand), greedy decoding read back from teacher forcing."""

import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("ipywidgets", reason="the explorer needs ipywidgets: pip install -e '.[notebook]'")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import fac_lens as fl  # noqa: E402
from fac_lens.data.sample import Sample  # noqa: E402
from fac_lens.data.synthetic import load_split  # noqa: E402
from fac_lens.errors import FacLensError  # noqa: E402
from fac_lens.explorer import answer_probabilities, head_grid_svg  # noqa: E402
from fac_lens.explorer.grid import cell_size, label_every  # noqa: E402
from tests.references import fold_by_hand, reference_attentions, with_mm_types  # noqa: E402

MODEL = Path("data/models/fac-tiny")
pytestmark = pytest.mark.skipif(not (MODEL / "model.safetensors").exists(), reason="fac-tiny not trained")
CELL = re.compile(r'<rect class="fac-cell fac-(\w+)" data-layer="(\d+)" data-head="(\d+)"')


@pytest.fixture(scope="module")
def tiny():
    return fl.load(MODEL)


@pytest.fixture(scope="module")
def plain():
    """fac-tiny as plain transformers loads it (no fac_lens), eager attention."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration.from_pretrained(MODEL, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def samples():
    return list(load_split("data/synthetic/test/test.jsonl"))[:4]


def classes_in(svg: str) -> dict[str, set]:
    """Which (layer, head) cells an SVG grid draws in each class."""
    found: dict[str, set] = {"perception": set(), "reasoning": set(), "other": set()}
    for cls, layer, head in CELL.findall(svg):
        found[cls].add((int(layer), int(head)))
    return found


def by_hand(visual: torch.Tensor, config) -> tuple[set, set]:
    """Eq. 5 written out: perception heads and reasoning heads of a [L, H] map."""
    perception, reasoning = set(), set()
    for layer in range(visual.shape[0]):
        for head in range(visual.shape[1]):
            if layer <= config.l_perc and visual[layer, head] >= config.tau_perc:
                perception.add((layer, head))
            if layer >= config.l_reas and visual[layer, head] <= config.tau_reas:
                reasoning.add((layer, head))
    return perception, reasoning


# ----------------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize("shape", [(6, 4), (30, 9), (28, 28), (64, 64)])
def test_head_grid_scales_and_tells_each_head(shape):
    n_layers, n_heads = shape
    generator = torch.Generator().manual_seed(0)
    visual = torch.rand(shape, generator=generator)
    perception = visual > 0.8
    reasoning = visual < 0.1
    gains = 1 + 0.16 * perception.float() + 0.3 * reasoning.float()
    svg = head_grid_svg(visual, perception, reasoning, gains, picked=(n_layers - 1, 0))
    found = classes_in(svg)
    assert len(found["perception"]) + len(found["reasoning"]) + len(found["other"]) == n_layers * n_heads
    assert found["perception"] == {tuple(x) for x in perception.nonzero().tolist()}
    assert found["reasoning"] == {tuple(x) for x in reasoning.nonzero().tolist()}
    # hover text of one head, with the numbers written by hand
    layer, head = n_layers // 2, n_heads - 1
    cls = "perception" if perception[layer, head] else "reasoning" if reasoning[layer, head] else "other"
    tip = f"layer {layer}, head {head}: S_v = {float(visual[layer, head]):.3f}, class {cls}, gain {float(gains[layer, head]):.3f}"
    assert f"<title>{tip}</title>" in svg
    # readable: cells of at least 6 px inside ~560 px; labels at least 12 px apart
    cell = cell_size(n_layers, n_heads)
    assert 6 <= cell and n_heads * cell <= 600
    assert label_every(n_layers, cell) * cell >= 12 and label_every(n_heads, cell) * cell >= 12
    assert svg.count('class="fac-picked"') == 1


# ------------------------------------------------------------------------------------------ panel


def test_moving_controls_updates_counts_grids_and_thresholds(tiny, samples):
    panel = fl.explorer(tiny, samples, progress=False)
    visual = fl.attention_ratios(
        tiny, [tiny.prepare(s.image, s.prompt()) for s in samples], progress=False
    ).visual
    for tau_perc in (0.0, 0.55, 1.0):
        panel.sliders["tau_perc"].value = tau_perc
        config = panel.fac_config
        perception, reasoning = by_hand(visual, config)
        assert f"perception: {len(perception)} heads" in panel.counts.value
        assert f"reasoning: {len(reasoning)} heads" in panel.counts.value
        drawn = classes_in(panel.grid.value)
        assert drawn["perception"] == perception and drawn["reasoning"] == reasoning
        assert f"tau_perc = {config.tau_perc:.3f}" in panel.trajectory.value  # the threshold is drawn
    # gains and beta change the gain grid at once (no run needed): strategy B attenuates in-band others
    panel.sliders["tau_perc"].value = 0.5
    panel.strategy.value = panel.strategy.options[1]
    panel.sliders["beta"].value = 0.5
    config = panel.fac_config
    assert config.strategy == "B" and config.beta == 0.5
    expected = config.gains(config.select(fl.HeadRatios(visual[None]))).values
    for layer, head in [(0, 0), (2, 1), (tiny.n_layers - 1, tiny.n_heads - 1)]:
        assert (
            f"layer {layer}, head {head}: gain = {float(expected[layer, head]):.3f}" in panel.gain_grid.value
        )
    panel.sliders["tau_perc"].value = 1.0
    panel.sliders["tau_reas"].value = 0.0
    assert "no heads selected" in panel.message.value
    assert panel.sliders["tau_perc"].readout_format == ".3f"  # a 0.005 step shows 3 decimals
    # one sample: its own ratios; the config property is the run's setting
    panel.sample.value = panel.sample.options[2]
    assert panel.ratios().n_samples == 1
    assert isinstance(panel.config, fl.FacConfig) and panel.config == panel.fac_config
    panel.mode.value = "static"
    static = panel.config
    assert isinstance(static, fl.Gains)
    torch.testing.assert_close(static.values, panel.fac_config.gains(panel.ratios()).values)


def test_the_sample_is_shown_with_its_image_and_full_question(tiny, samples):
    two_step = next(s for s in load_split("data/synthetic/test/test.jsonl") if s.kind == "two_step")
    panel = fl.explorer(tiny, [samples[0], two_step], progress=False)
    panel.sample.value = panel.sample.options[2]
    assert two_step.question in panel.info.value.replace("&#x27;", "'")  # never cut
    assert f"<code class='fac-truth'>{two_step.answer}</code>" in panel.info.value
    assert "two_step" in panel.info.value
    assert panel.image.value[:8] == b"\x89PNG\r\n\x1a\n" and panel.image.layout.display == ""


def test_clicking_a_head_shows_where_it_looks(tiny, plain, samples):
    panel = fl.explorer(tiny, samples[:2], progress=False)
    panel.sample.value = panel.sample.options[1]
    panel.pick.value = "4,1"  # what the grid's onclick writes
    assert panel.picked == (4, 1) and "L4 H1" in panel.pick_label.value
    assert 'class="fac-picked"' in panel.grid.value
    # the overlay's cells are the plain model's eager attention of the last prompt token
    inputs = tiny.prepare(samples[0].image, samples[0].prompt())
    row = reference_attentions(plain, with_mm_types(plain, inputs))[4][0, 1, -1]  # [N]
    image = inputs["input_ids"][0] == plain.config.image_token_id
    _, h, w = inputs["image_grid_thw"][0].tolist()
    expected = row[image].view(h // 2, w // 2)
    cells = re.findall(r"<title>row (\d+), col (\d+): ([0-9.e-]+)</title>", panel.head_view.value)
    shown = torch.zeros(expected.shape, dtype=torch.float64)
    for r, c, v in cells:
        shown[int(r), int(c)] = float(v)
    assert len(cells) == expected.numel()
    torch.testing.assert_close(shown, expected.double(), atol=1e-5, rtol=0)
    assert panel.head_view.value.count("class='fac-token'") >= 2  # the prompt's tokens, shaded
    assert f"{float(row[image].sum()):.3f}" in panel.pick_label.value


def test_mean_view_refuses_to_run_and_bad_samples_show_a_message(tiny, samples, monkeypatch):
    blank = Sample("no-image", None, "what color is it ?", "red", "attribute")
    panel = fl.explorer(tiny, [*samples[:2], blank], progress=False)
    panel.run()  # "all samples (mean)" is selected: nothing runs
    assert "pick one sample" in panel.message.value and panel.last_run is None
    panel.sample.value = panel.sample.options[-1]
    assert "no image" in panel.message.value
    panel.run()
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


def test_precomputed_ratios_are_not_recorded_again(tiny, samples, monkeypatch):
    ratios = fl.attention_ratios(tiny, [tiny.prepare(s.image, s.prompt()) for s in samples], progress=False)
    import sys

    def refuse(*args, **kwargs):
        raise AssertionError("ratios recorded again")

    monkeypatch.setattr(sys.modules["fac_lens.explorer.panel"], "attention_ratios", refuse)
    panel = fl.explorer(tiny, samples, progress=False, ratios=ratios)
    perception, reasoning = by_hand(ratios.visual, panel.fac_config)
    assert f"perception: {len(perception)} heads" in panel.counts.value
    with pytest.raises(FacLensError, match="one row per sample"):
        fl.explorer(tiny, samples[:2], progress=False, ratios=ratios)


def test_dynamic_run_steps_probabilities_and_stale_marking(tiny, samples):
    panel = fl.explorer(tiny, samples[:2], max_new_tokens=12, progress=False)
    panel.sample.value = panel.sample.options[1]
    panel.sliders["tau_perc"].value = 0.3
    panel.run()
    run = panel.last_run
    assert run is not None and panel.message.value == "", panel.message.value
    case = run.comparison.case
    n_generated = len(case.fac_ids) - case.prompt_length
    # one pass per generated token (prefill + decoding steps), one slider step each
    assert len(case.fac_passes) == n_generated == len(run.steps)
    assert panel.step.max == max(n_generated - 1, 1)  # the slider never has min == max
    config = panel.fac_config
    for step in (0, panel.step.max):
        panel.step.value = step
        perception, reasoning = by_hand(case.fac_passes[step], config)
        drawn = classes_in(panel.grid.value)
        assert drawn["perception"] == perception and drawn["reasoning"] == reasoning
        assert f"perception: {len(perception)} heads" in panel.counts.value
    # the traces and the probabilities are shown; stale once a control moves, fresh when moved back
    assert "vanilla" in panel.traces.value and "rescaled" in panel.traces.value
    assert "p rescaled" in panel.probabilities.value
    assert "fac-stale" not in panel.results._dom_classes
    panel.sliders["g_perc"].value = 2.0
    assert "fac-stale" in panel.results._dom_classes and "stale" in panel.run_note.value
    panel.sliders["tau_perc"].value = 0.0  # stale: the grids follow the controls again
    perception, _ = by_hand(panel.ratios().visual, panel.fac_config)
    assert f"perception: {len(perception)} heads" in panel.counts.value
    panel.sliders["tau_perc"].value = 0.3
    panel.sliders["g_perc"].value = config.g_perc
    assert "fac-stale" not in panel.results._dom_classes


def test_answer_probabilities_static_against_hand_scaled_plain_model(tiny, plain, samples):
    import copy

    inputs = tiny.prepare(samples[0].image, samples[0].prompt())
    gains = torch.ones(tiny.n_layers, tiny.n_heads)
    gains[1, 2], gains[4, 0] = 1.6, 0.5
    candidates = list(range(len(tiny.tokenizer)))
    probs = answer_probabilities(
        tiny, inputs, inputs["input_ids"].shape[1] - 1, candidates, fl.Gains(gains), 1
    )
    scaled = copy.deepcopy(plain)
    fold_by_hand(scaled, gains)
    with torch.no_grad():
        before = plain(**with_mm_types(plain, inputs)).logits[0, -1].softmax(-1)
        plain.model.rope_deltas = None
        after = scaled(**with_mm_types(scaled, inputs)).logits[0, -1].softmax(-1)
    vocab = len(candidates)
    torch.testing.assert_close(probs.before.double(), before[:vocab].double(), atol=1e-5, rtol=0)
    torch.testing.assert_close(probs.after.double(), after[:vocab].double(), atol=1e-5, rtol=0)
    diff = probs.logit_difference()
    assert diff[0] == pytest.approx(float(probs.logits_before[0] - probs.logits_before[1]))


def test_answer_probabilities_dynamic_agree_with_greedy_generation(tiny, samples):
    """Scored on the rescaled model's own trace, the rescaled distribution's argmax at every step is
    the token dynamic generation chose there."""
    config = fl.FacConfig(l_perc=2, l_reas=3, tau_perc=0.3, tau_reas=0.6, g_perc=1.5, g_reas=1.3)
    inputs = tiny.prepare(samples[1].image, samples[1].prompt())
    result = fl.generate(tiny, inputs, max_new_tokens=6, fac=config)
    sequence = {
        k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")
    }
    sequence["input_ids"] = result.sequences
    candidates = list(range(len(tiny.tokenizer)))
    start = result.prompt_length
    for step in range(result.new_tokens.shape[1]):
        probs = answer_probabilities(tiny, sequence, start - 1 + step, candidates, config, start)
        assert int(probs.after.argmax()) == int(result.sequences[0, start + step])


def test_batch_check_scores_both_runs(tiny, samples):
    panel = fl.explorer(tiny, samples[:3], max_new_tokens=24, progress=False)
    panel.check_batch()
    result = panel.last_batch
    assert result is not None, panel.batch_result.value
    from fac_lens.data.answers import is_correct

    vanilla = [
        is_correct(fl.generate(tiny, tiny.prepare(s.image, s.prompt()), max_new_tokens=24).text[0], s)
        for s in samples[:3]
    ]
    assert result.n == 3 and result.vanilla == pytest.approx(sum(vanilla) / 3)
    d = result.comparison.accuracy
    assert d.value == pytest.approx(result.method - result.vanilla) and d.low <= d.value <= d.high
    assert "95% CI" in panel.batch_result.value
    assert "vanilla</b>:" in panel.info.value or panel.sample.value == panel.sample.options[0]


# ---------------------------------------------------------------------------------------- compare


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
    assert torch.equal(case.fac_ids, rescaled.sequences[0])
    fig = fl.Comparison(case).figure(
        selection=strong.select(fl.attention_ratios(tiny, inputs, progress=False))
    )
    titles = [ax.get_title() for ax in fig.axes]
    assert any("own trace" in t for t in titles) and sum(ax.get_xlabel() == "head" for ax in fig.axes) == 4
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any("amplifying raises p" in label for label in labels)  # the sign is explained
