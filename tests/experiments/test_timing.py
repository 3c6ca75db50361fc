"""The timing benchmark with a fake clock and a fake generate: schedule, per-token seconds,
overheads and the noise floor, all against hand-computed values."""

from types import SimpleNamespace

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch

import fac_lens as fl
from fac_lens.data.sample import Sample
from fac_lens.errors import FacLensError
from fac_lens.experiments import figures as F
from fac_lens.experiments import tables as T
from fac_lens.experiments.methods import Method
from fac_lens.experiments.timing import NOISE_FLOOR, TimingResult, benchmark, schedule

EOS, PAD = 2, 0
CONFIG = fl.FacConfig(l_perc=2, l_reas=3, tau_perc=0.6, tau_reas=0.5)
# generated ids per call (2 samples): vanilla 2 + 4 = 6 tokens, dynamic 3 + 4 = 7 (padding after EOS not counted)
VANILLA_IDS = torch.tensor([[5, EOS, PAD, PAD], [5, 5, 5, 5]])
DYNAMIC_IDS = torch.tensor([[5, 5, EOS, PAD], [5, 5, 5, 5]])
WARMUP = [9.0, 9.0, 9.0]  # untimed
# timed calls in the order of the schedule below
TIMED = [1.0, 1.4, 1.1, 2.0, 2.6, 1.9, 1.6, 1.0, 1.2, 2.4, 2.2, 1.8]


def test_schedule_rotates_the_method_order_per_repeat():
    assert schedule(["A", "B", "C"], repeats=3, n_batches=1) == [
        (0, 0, "A"), (0, 0, "B"), (0, 0, "C"),
        (1, 0, "B"), (1, 0, "C"), (1, 0, "A"),
        (2, 0, "C"), (2, 0, "A"), (2, 0, "B"),
    ]  # fmt: skip
    assert schedule(["A", "B"], repeats=2, n_batches=2) == [
        (0, 0, "A"), (0, 0, "B"), (0, 1, "A"), (0, 1, "B"),
        (1, 0, "B"), (1, 0, "A"), (1, 1, "B"), (1, 1, "A"),
    ]  # fmt: skip


def fake_run():
    now = [0.0]
    durations = iter(WARMUP + TIMED)
    calls = []
    seeds = []

    def clock():
        return now[0]

    def generate_fn(model, inputs, max_new_tokens, fac):
        seeds.append(torch.initial_seed())
        calls.append(("dynamic" if isinstance(fac, fl.FacConfig) else "vanilla", inputs["batch"]))
        now[0] += next(durations)
        return SimpleNamespace(new_tokens=DYNAMIC_IDS if fac is not None else VANILLA_IDS)

    model = SimpleNamespace(n_layers=6, prepare=lambda images, prompts: {"batch": prompts[0]})
    samples = [Sample(f"s{i}", None, f"b{i // 2}", "yes", "k") for i in range(6)]  # 3 batches of 2
    result = benchmark(
        model,
        samples,
        {"vanilla": Method.vanilla(), "dynamic": Method("dynamic", CONFIG)},
        batch_size=2,
        n_batches=2,
        repeats=2,
        warmup=1,
        seed=7,
        progress=False,
        clock=clock,
        generate_fn=generate_fn,
        eos_ids=[EOS],
    )
    return result, calls, seeds


def test_benchmark_interleaves_and_computes_per_token_seconds_and_overheads_by_hand():
    result, calls, seeds = fake_run()
    assert result.labels == ("vanilla", "dynamic", NOISE_FLOOR)
    # warm-up (every method on batch 0), then repeat 0: V, D, N per batch; repeat 1: D, N, V
    v, d = "vanilla", "dynamic"
    assert calls == [(v, "b0"), (d, "b0"), (v, "b0")] + [
        (v, "b0"), (d, "b0"), (v, "b0"), (v, "b1"), (d, "b1"), (v, "b1"),
        (d, "b0"), (v, "b0"), (v, "b0"), (d, "b1"), (v, "b1"), (v, "b1"),
    ]  # fmt: skip
    assert set(seeds) == {7}  # every call seeded
    m = result.measurements
    assert m["method"].tolist()[:3] == ["vanilla", "dynamic", NOISE_FLOOR]
    assert m["seconds"].tolist() == pytest.approx(TIMED)
    assert m["tokens"].tolist() == [6, 7, 6] * 2 + [7, 6, 6] * 2  # up to each EOS, padding excluded

    summary = result.summary().set_index("method")
    # vanilla: repeat 0 1.0 + 2.0 s, repeat 1 1.2 + 1.8 s; 12 tokens each
    assert summary.loc["vanilla", "seconds_per_batch"] == pytest.approx(1.5)
    assert summary.loc["vanilla", "seconds_per_token"] == pytest.approx(3.0 / 12)
    # dynamic: 1.4 + 2.6 and 1.6 + 2.4 s over 14 tokens: 2.0 s per batch, 4/14 s per token
    assert summary.loc["dynamic", "seconds_per_batch"] == pytest.approx(2.0)
    assert summary.loc["dynamic", "seconds_per_token"] == pytest.approx(4.0 / 14)
    assert summary.loc["dynamic", "overhead_batch_pct"] == pytest.approx(100 * (2.0 / 1.5 - 1))
    assert summary.loc["dynamic", "overhead_token_pct"] == pytest.approx(100 * ((4 / 14) / 0.25 - 1))
    # noise floor: vanilla again, 1.1 + 1.9 = 3.0 s (0 %) and 1.0 + 2.2 = 3.2 s (+6.667 %)
    noise = summary.loc[NOISE_FLOOR]
    assert noise["overhead_token_pct"] == pytest.approx(100 * (3.2 / 3.0 - 1) / 2)  # median of two
    assert noise["overhead_token_pct_q25"] == pytest.approx(100 * (3.2 / 3.0 - 1) * 0.25)
    assert noise["overhead_token_pct_q75"] == pytest.approx(100 * (3.2 / 3.0 - 1) * 0.75)
    assert noise["seconds_per_batch_q75"] == pytest.approx(1.5 + 0.75 * 0.1)
    assert result.noise_floor() == pytest.approx(100 / 30)


def test_table4_shows_median_iqr_and_the_noise_floor():
    result, _, _ = fake_run()
    table = T.table4(result)
    assert table.index.tolist() == ["vanilla", "dynamic", f"{NOISE_FLOOR} (noise floor)"]
    assert table.loc["vanilla", "overhead per token"] == "-"
    assert table.loc["dynamic", "seconds per batch"] == "2 [2, 2]"
    assert table.loc["dynamic", "overhead per batch"] == "+33.3% [+33.3, +33.3]"
    assert table.loc["dynamic", "overhead per token"] == "+14.3% [+14.3, +14.3]"
    assert table.loc[f"{NOISE_FLOOR} (noise floor)", "overhead per token"] == "+3.3% [+1.7, +5.0]"
    assert "noise floor" in T.to_markdown(table)
    with pytest.raises(FacLensError, match="TimingResult"):
        T.table4(pd.DataFrame({"run_id": ["x"]}))


def test_fig3_uses_the_timing_with_its_spread_and_noise_floor():
    # one batch of 10 tokens per call, three repeats
    seconds = {"vanilla": [1.0, 1.2, 1.4], "dynamic": [2.0, 2.0, 2.0], NOISE_FLOOR: [1.1, 1.2, 1.3]}
    rows = [
        {"repeat": r, "batch": 0, "method": m, "seconds": s[r], "tokens": 10}
        for r in range(3)
        for m, s in seconds.items()
    ]
    timing = TimingResult(pd.DataFrame(rows), tuple(seconds), {"repeats": 3})
    base = {"model": "m", "dataset": "d", "sweep": "eval", "seconds_per_batch": 99.0, "f1": float("nan")}
    summaries = pd.DataFrame(
        [
            {**base, "name": "vanilla", "mode": "none", "accuracy": 0.5},
            {**base, "name": "dynamic", "mode": "dynamic", "accuracy": 0.6},
        ]
    )
    fig, ax = plt.subplots()
    try:
        assert F.efficiency_scatter(summaries, ax=ax, timing=timing) is ax
        points = [c for c in ax.collections if not hasattr(c, "get_segments")]
        (vanilla,), (dynamic,) = (c.get_offsets() for c in points)
        assert vanilla[0] == pytest.approx((0.5 / 1.2) ** 2)  # the timing's median, not the run's 99 s
        assert dynamic[0] == pytest.approx((0.6 / 2.0) ** 2)
        (bars,) = [c for c in ax.collections if hasattr(c, "get_segments")]  # dynamic has no spread
        (segment,) = bars.get_segments()  # vanilla's IQR: 1.1 .. 1.3 s per batch
        assert sorted(segment[:, 0]) == pytest.approx([(0.5 / 1.3) ** 2, (0.5 / 1.1) ** 2])
        legend = ax.get_legend()
        texts = [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
        # dynamic per token: 100 * (2 / t - 1) for t = 1.0, 1.2, 1.4 -> median at t = 1.2
        assert any("dynamic (+66.7%/token)" in t for t in texts)
        # noise floor: +10, 0, -7.14 % -> median 0, quartiles -3.57 and +5.0
        assert any("noise floor (vanilla vs vanilla): +0.0%/token [-3.6, +5.0]" in t for t in texts)
    finally:
        plt.close(fig)


def test_benchmark_refuses_bad_input():
    model = SimpleNamespace(n_layers=6, prepare=lambda images, prompts: {})
    samples = [Sample("s0", None, "q", "yes", "k")]
    with pytest.raises(FacLensError, match="include 'vanilla'"):
        benchmark(model, samples, {"dynamic": Method("dynamic", CONFIG)}, progress=False)
    with pytest.raises(FacLensError, match="repeats"):
        benchmark(model, samples, {"vanilla": Method.vanilla()}, repeats=0, progress=False)
