"""Explorer latency: how long a slider move that needs no model run takes (re-identification +
redraw of the head map, counts and trajectory from cached ratios), on fac-tiny.

Target (issue 5): well under a second; we aim at <= 0.3 s per update.
"""

from __future__ import annotations

import argparse
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import fac_lens as fl  # noqa: E402
from bench.common import record  # noqa: E402
from fac_lens.data.synthetic import load_split  # noqa: E402
from fac_lens.embedded import paths  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="fac-tiny")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    model = fl.load(args.model)
    samples = list(load_split(paths.synthetic_test()))[: args.samples]
    start = time.perf_counter()
    panel = fl.explorer(model, samples, progress=False)
    open_seconds = time.perf_counter() - start
    slider = panel.sliders["tau_perc"]
    values = [round(0.3 + 0.6 * i / args.moves, 3) for i in range(args.moves)]
    seconds = []
    for value in values:
        start = time.perf_counter()
        slider.value = value  # observe -> update(): identification and redraw
        seconds.append(time.perf_counter() - start)
    record(
        "explorer",
        {
            "setting": {"model": args.model, "samples": args.samples, "moves": args.moves},
            "open_seconds": open_seconds,
            "update_seconds": {"median": statistics.median(seconds), "max": max(seconds), "all": seconds},
            "target": "slider update without a model run <= 0.3 s",
            "met": statistics.median(seconds) <= 0.3,
        },
    )


if __name__ == "__main__":
    main()
