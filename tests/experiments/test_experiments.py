"""The evaluation harness, methods and sweeps, checked against plain HF generation and hand counts."""

import math
from pathlib import Path

import pytest
import torch

import fac_lens as fl
from fac_lens.calibration import calibrated_config
from fac_lens.data.sample import Sample
from fac_lens.data.synthetic import load_split
from fac_lens.errors import FacLensError
from fac_lens.experiments.fingerprint import samples_digest
from fac_lens.experiments.harness import evaluate_batches, score, summarize
from fac_lens.experiments.methods import Method
from fac_lens.experiments.store import ResultStore
from fac_lens.experiments.sweeps import (
    Setting,
    boundary_grid,
    grid,
    reference_ratios,
    run_sweep,
    threshold_grid,
)

MODEL = Path("data/models/fac-tiny")
TEST = Path("data/synthetic/test/test.jsonl")
pytestmark = pytest.mark.skipif(not (MODEL / "model.safetensors").exists(), reason="fac-tiny not trained")
CONFIG = fl.FacConfig(l_perc=2, l_reas=3, tau_perc=0.6, tau_reas=0.5, g_perc=1.16, g_reas=1.3)


@pytest.fixture(scope="module")
def tiny():
    return fl.load(MODEL)


@pytest.fixture(scope="module")
def samples():
    return list(load_split(TEST))[:6]


def _first_word_after_think(trace: str):
    tail = trace.split("</think>")
    return tail[1].split()[0] if len(tail) > 1 and tail[1].split() else None


def test_harness_traces_equal_plain_hf_generate(tiny, samples):
    records = evaluate_batches(
        tiny, samples, Method.vanilla(), batch_size=3, max_new_tokens=40, progress=False
    )
    for start in (0, 3):
        batch = samples[start : start + 3]
        inputs = tiny.prepare([s.image for s in batch], [s.question for s in batch])
        with torch.no_grad():
            ids = tiny.hf.generate(
                **inputs, max_new_tokens=40, do_sample=False, pad_token_id=tiny.tokenizer.pad_token_id
            )
        texts = tiny.tokenizer.batch_decode(ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        for record, text, sample in zip(records[start : start + 3], texts, batch, strict=True):
            assert record["sample_id"] == sample.id
            assert record["trace"] == " ".join(text.split())
            assert record["correct"] == (_first_word_after_think(text) == sample.answer)
    summary = summarize(records)
    assert summary["n"] == 6
    assert summary["accuracy"] == sum(r["correct"] for r in records) / 6


def test_static_method_equals_hand_gains(tiny, samples):
    ratios = reference_ratios(tiny, samples, n=4, progress=False)
    method = Method("static", CONFIG)
    records = evaluate_batches(
        tiny, samples[:2], method, ratios, batch_size=2, max_new_tokens=30, progress=False
    )
    gains = CONFIG.gains(ratios)
    out = fl.generate(
        tiny,
        tiny.prepare([s.image for s in samples[:2]], [s.question for s in samples[:2]]),
        max_new_tokens=30,
        fac=gains,
    )
    assert [r["trace"] for r in records] == [" ".join(t.split()) for t in out.text]


def test_summary_metrics_by_hand():
    def rec(kind, answer, predicted, seconds=2.0, size=2, choices=()):
        return {
            "kind": kind,
            "answer": answer,
            "choices": list(choices),
            "predicted": predicted,
            "correct": predicted == answer,
            "error": None if predicted == answer else "perception",
            "batch_seconds": seconds,
            "batch_size": size,
            "seconds": seconds / size,
        }

    records = [
        rec("exist", "yes", "yes"),
        rec("exist", "yes", "no"),
        rec("exist", "no", "no", 4.0),
        rec("count", "two", "three", 4.0),
    ]
    s = summarize(records, n_skipped=3)
    assert s["accuracy"] == 0.5 and s["n"] == 4 and s["n_skipped"] == 3
    # yes/no samples: tp=1 (yes,yes), fn=1 (yes->no), fp=0 -> binary F1 = 2/(2+0+1)
    assert s["binary_f1"] == pytest.approx(2 / 3)
    assert math.isnan(s["f1"])  # yes/no mixed with a free-form answer: no App. G scheme
    yes_no = summarize(records[:3])
    # classes yes (support 2): tp1 fp0 fn1 -> 2/3; no (support 1): tp1 fp1 fn0 -> 2/3
    assert yes_no["f1"] == pytest.approx((2 * 2 / 3 + 1 * 2 / 3) / 3)
    choice = summarize([rec("mc", "A", "A", choices="xy"), rec("mc", "B", "A", choices="xy")])
    # A (support 1): tp1 fp1 fn0 -> 2/3; B (support 1): tp0 -> 0
    assert choice["f1"] == pytest.approx((2 / 3 + 0) / 2) and math.isnan(choice["binary_f1"])
    assert s["per_kind"] == {"count": 0.0, "exist": 2 / 3}
    assert s["seconds_per_batch"] == pytest.approx(3.0)  # two batches: 2 s and 4 s
    assert s["errors"] == {"perception": 2}
    assert math.isnan(summarize([rec("count", "two", "two")])["f1"])


def test_score_other_benchmarks_uses_answer_extraction():
    mc = Sample("q1", None, "which?", "B", "mc", choices=("cat", "dog"), source="MMStar")
    assert "A. cat\nB. dog" in mc.prompt()
    assert score(mc, "<think> it barks </think> The answer is (B)")[:2] == ("B", True)
    yn = Sample("q2", None, "is it?", "no", "hallucination", source="HallusionBench")
    assert score(yn, "No, it is not.")[:2] == ("no", True)


def test_method_round_trip_and_names():
    assert Method.vanilla().to_dict()["name"] == "vanilla"
    for method, name in (
        (Method("dynamic", CONFIG), "dynamic"),
        (Method("static", CONFIG), "static"),
        (Method("dynamic", CONFIG.replace(target="perception")), "perception_only"),
        (Method("dynamic", CONFIG.replace(target="reasoning")), "reasoning_only"),
        (Method("dynamic", CONFIG.replace(strategy="C")), "strategy"),
    ):
        data = method.to_dict()
        assert data["name"] == name
        assert Method.from_dict(data) == method
    with pytest.raises(FacLensError, match="vanilla"):
        Method("none", CONFIG)
    with pytest.raises(FacLensError, match="ratio map"):
        Method("static", CONFIG).intervention(None)


def test_grids_and_calibration(tiny, samples):
    ratios = reference_ratios(tiny, samples, n=4, progress=False)
    assert len(boundary_grid(CONFIG, 6)) == 36
    assert {(s.method.config.l_perc, s.method.config.l_reas) for s in boundary_grid(CONFIG, 6)} == {
        (p, r) for p in range(6) for r in range(6)
    }
    settings = threshold_grid(CONFIG, ratios=ratios)
    band = ratios.visual[: CONFIG.l_perc + 1].flatten().sort().values
    # torch.quantile's linear interpolation written by hand for q = 0.75
    pos = 0.75 * (len(band) - 1)
    expected = band[int(pos)] + (band[int(pos) + 1] - band[int(pos)]) * (pos - int(pos))
    assert round(float(expected), 3) in {s.method.config.tau_perc for s in settings}
    config = calibrated_config(ratios)
    assert (config.l_perc, config.l_reas) == (2, 3)
    selection = config.select(ratios)
    assert 0 < selection.counts["perception"] <= 12 and 0 < selection.counts["reasoning"] <= 12
    with pytest.raises(FacLensError, match="empty"):
        grid("boundary", CONFIG, 6, l_percs=[])
    with pytest.raises(FacLensError, match="unknown grid"):
        grid("nope", CONFIG, 6)


def test_sweep_resumes_reuses_and_refuses_bad_boundaries(tiny, samples, tmp_path, monkeypatch):
    ratios = reference_ratios(tiny, samples, n=4, progress=False)
    store = ResultStore(tmp_path / "r.sqlite")
    identity = CONFIG.replace(g_perc=1.0, g_reas=1.0)  # static gains of 1: the same outputs as vanilla
    settings = [
        Setting("vanilla", Method.vanilla()),
        Setting("gains", Method("static", identity)),
        Setting("gains", Method("dynamic", CONFIG)),
    ]
    kwargs = dict(ratios=ratios, batch_size=2, max_new_tokens=24, progress=False)
    with pytest.raises(FacLensError, match="outside the model"):
        run_sweep(
            tiny,
            samples[:4],
            [Setting("boundary", Method("dynamic", CONFIG.replace(l_perc=6)))],
            store,
            "fac-tiny",
            "t",
            **kwargs,
        )
    assert store.runs() == [] and store.records() == []
    # interrupted in the dynamic run's first batch, then run again: only the missing batches are
    # generated, and nothing is duplicated (a run is of these samples: their content is in its id)
    import fac_lens.experiments.sweeps as sweeps

    calls = []
    real = sweeps.run_batch

    def interrupted_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweeps, "run_batch", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(tiny, samples[:4], settings, store, "fac-tiny", "t", **kwargs)
    # warm-up and vanilla's two batches; the identity-gain static run copied vanilla's
    assert len(calls) == 4 and len(store.records()) == 8 and store.summaries().empty
    first = {(r["run_id"], r["sample_id"]): r for r in store.records()}
    run_ids = run_sweep(tiny, samples[:4], settings, store, "fac-tiny", "t", **kwargs)
    assert len(calls) == 7  # warm-up + the two batches of dynamic
    records = store.records()
    assert len(records) == 12 and len({(r["run_id"], r["sample_id"]) for r in records}) == 12
    assert all(first[key] == r for r in records if (key := (r["run_id"], r["sample_id"])) in first)
    vanilla, static, dynamic = run_ids
    traces = {rid: [r["trace"] for r in store.records(rid)] for rid in run_ids}
    assert traces[static] == traces[vanilla]
    reference = evaluate_batches(
        tiny, samples[:4], Method("dynamic", CONFIG), batch_size=2, max_new_tokens=24, progress=False
    )
    assert traces[dynamic] == [r["trace"] for r in sorted(reference, key=lambda r: r["sample_id"])]
    summaries = store.summaries()
    assert len(summaries) == 3 and set(summaries["n"]) == {4}


def test_a_model_retrained_in_place_gets_its_own_runs_and_ratio_map(tmp_path):
    """Runs are keyed by model name; the weights fingerprint keeps a retrained model (same folder,
    new weights) from reusing the old model's stored results."""
    import shutil

    from safetensors.torch import load_file, save_file

    from fac_lens.experiments.fingerprint import model_fingerprint
    from fac_lens.experiments.runner import Experiment

    folder = tmp_path / "fac-tiny"
    shutil.copytree(MODEL, folder)
    store = tmp_path / "store.sqlite"
    options = dict(limit=2, max_new_tokens=8, batch_size=2, progress=False)
    first = Experiment.open(folder, "synthetic", store, **options)
    vanilla = first.evaluate(Method.vanilla())
    first.ratios(n=2)
    fingerprint = model_fingerprint(folder)
    assert fingerprint == first.weights and model_fingerprint(folder) == fingerprint  # stable
    assert model_fingerprint(tmp_path / "no-such-folder") is None

    weights = load_file(str(folder / "model.safetensors"))
    name = next(k for k in weights if k.endswith("lm_head.weight") or k.endswith("embed_tokens.weight"))
    weights[name] = torch.zeros_like(weights[name])  # "retrained": a model that answers nothing useful
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    second = Experiment.open(folder, "synthetic", store, **options)
    assert second.weights != fingerprint and second.model_name == first.model_name
    again = second.evaluate(Method.vanilla())
    assert again["run_id"] != vanilla["run_id"]  # a new run, not the stored one
    records = {r["sample_id"]: r["trace"] for r in second.store.records(again["run_id"])}
    old_records = {r["sample_id"]: r["trace"] for r in second.store.records(vanilla["run_id"])}
    assert records != old_records  # generated by the new weights
    second.ratios(n=2)
    ratio_maps = sorted(a["name"].rsplit(":", 1)[1] for a in second.store.arrays(kind="ratios_per_sample"))
    assert ratio_maps == sorted([first.weights, second.weights])  # one map per set of weights


def test_text_only_questions_are_skipped_and_counted_in_the_summary(tmp_path):
    """HallusionBench's visual_input "0" questions have no image: evaluation leaves them out (it used
    to crash in prepare) and every summary says how many."""
    from fac_lens.experiments.runner import Experiment
    from tests.data.test_answer_handling import hallusion_record, make_hallusion, png, write_json

    make_hallusion(tmp_path / "hb")
    write_json(tmp_path / "cal" / "HallusionBench.json", [hallusion_record("2", "0", "1", "1")])
    png(tmp_path / "cal" / "hallusion_bench/VS/chart/2_0.png")  # a separate calibration split
    options = dict(max_new_tokens=4, batch_size=2, progress=False, calibration=tmp_path / "cal")
    exp = Experiment.open(MODEL, "hallusionbench", tmp_path / "s.sqlite", tmp_path / "hb", **options)
    assert exp.n_skipped == 2 and len(exp.samples) == 2
    summary = exp.evaluate(Method.vanilla())
    assert (summary["n"], summary["n_skipped"]) == (2, 2)
    assert not math.isnan(summary["f1"]) and not math.isnan(summary["binary_f1"])  # yes/no: both F1s


def _length_by_hand(ids: list[int], eos: set[int]) -> int:
    for position, token in enumerate(ids):
        if token in eos:
            return position + 1
    return len(ids)


def test_stored_per_pass_head_counts_equal_a_count_by_hand(tiny, samples, tmp_path):
    """The records of a dynamic run hold, per sample, the heads identified in each forward pass
    before its EOS: recounted here from the per-pass ratios of a plain fl.generate with eq. 5."""
    import statistics

    store = ResultStore(tmp_path / "r.sqlite")
    settings = [Setting("eval", Method("dynamic", CONFIG)), Setting("eval", Method.vanilla())]
    dynamic, vanilla = run_sweep(
        tiny, samples[:4], settings, store, "fac-tiny", "t", batch_size=2, max_new_tokens=40, progress=False
    )
    stored = {r["sample_id"]: r for r in store.records(dynamic)}
    eos = {tiny.tokenizer.eos_token_id}
    c = CONFIG
    lengths, all_perc, all_reas = [], [], []
    for start in (0, 2):
        batch = samples[start : start + 2]
        out = fl.generate(
            tiny, tiny.prepare([s.image for s in batch], [s.prompt() for s in batch]), 40, fac=CONFIG
        )
        passes = out.rescale.pass_ratios
        for b, sample in enumerate(batch):
            n = _length_by_hand(out.new_tokens[b].tolist(), eos)
            lengths.append(n)
            perc, reas = [], []
            for ratios in passes[:n]:
                visual = ratios[b].tolist()  # [n_layers][n_heads]
                perc.append(sum(v >= c.tau_perc for layer in visual[: c.l_perc + 1] for v in layer))
                reas.append(sum(v <= c.tau_reas for layer in visual[c.l_reas :] for v in layer))
            record = stored[sample.id]
            assert record["generated_tokens"] == n
            assert record["head_counts"] == {"perception": perc, "reasoning": reas}
            all_perc += perc
            all_reas += reas
    assert min(lengths) < 40  # some trace ended before max_new_tokens: its later passes are left out
    assert len(all_perc) == sum(lengths) and len(set(all_perc + all_reas)) > 1  # counts vary
    summary = store.summary(dynamic)
    assert summary["heads_perception_mean"] == pytest.approx(statistics.fmean(all_perc))
    assert summary["heads_perception_std"] == pytest.approx(statistics.pstdev(all_perc))
    assert summary["heads_reasoning_mean"] == pytest.approx(statistics.fmean(all_reas))
    assert summary["heads_reasoning_std"] == pytest.approx(statistics.pstdev(all_reas))
    records = store.records(dynamic)
    assert summary["seconds_per_token"] == pytest.approx(sum(r["seconds"] for r in records) / sum(lengths))
    assert all(r["head_counts"] is None and r["generated_tokens"] > 0 for r in store.records(vanilla))
    assert math.isnan(store.summary(vanilla)["heads_perception_mean"])


def test_calibration_split_is_disjoint_recorded_and_part_of_the_run_id(tmp_path):
    import hashlib

    from fac_lens.experiments.runner import Experiment

    store = tmp_path / "s.sqlite"
    options = dict(limit=2, max_new_tokens=6, batch_size=2, progress=False)
    exp = Experiment.open(MODEL, "synthetic", store, calibration_n=3, **options)
    validation = [f"validation-{i:06d}" for i in range(3)]
    assert exp.calibration.ids == validation and not {s.id for s in exp.samples} & set(validation)
    # the calibrated setting is the one of the validation ratio map, not of the evaluated samples
    from fac_lens.data.synthetic import samples as synthetic_samples

    by_hand = reference_ratios(exp.model, list(synthetic_samples("validation", 3)), progress=False)
    config = exp.base_config()
    assert config == calibrated_config(by_hand)
    assert torch.equal(exp.ratios().per_sample, by_hand.per_sample)
    (array,) = exp.store.arrays(kind="ratios_per_sample")
    assert array["meta"]["sample_ids"] == validation

    static = exp.evaluate(Method("static", config))
    vanilla = exp.evaluate(Method.vanilla())
    recorded = exp.store.run(static["run_id"])["generation"]["calibration"]
    digest = hashlib.sha256("\n".join(validation).encode()).hexdigest()
    content = samples_digest(list(synthetic_samples("validation", 3)))
    assert recorded == {"split": "synthetic:validation", "n": 3, "ids_sha256": digest, "sha256": content}
    assert "calibration" not in exp.store.run(vanilla["run_id"])["generation"]  # vanilla uses none

    other = Experiment.open(MODEL, "synthetic", store, calibration_n=2, **options)
    assert other.calibration.ids == validation[:2]
    again = other.evaluate(Method("static", config))  # same setting, another calibration split
    assert again["run_id"] != static["run_id"]
    assert len(other.store.records(again["run_id"])) == 2  # generated for this run, not served
    assert other.evaluate(Method.vanilla())["run_id"] == vanilla["run_id"]

    with pytest.raises(FacLensError, match="shares 2 sample id"):
        Experiment.open(MODEL, "synthetic", store, calibration=TEST, **options)
