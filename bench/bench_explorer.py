"""Explorer latency on fac-smol (30 layers x 9 heads, the larger embedded model): a slider move that
needs no model run (re-identification + the SVG grids, counts and trajectory), a head click (the
first one on a sample runs one forward for that sample's attention rows; later ones only draw), the
head grid's SVG at 28 x 28 and 64 x 64 heads, and how often opening the panel records ratios (once
per sample; zero with ``ratios=``).

Targets (issue 14): slider move <= 0.3 s, head click <= 0.5 s on fac-smol; ratios never recorded twice.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

import fac_lens as fl  # noqa: E402
from bench.common import record  # noqa: E402
from fac_lens.data.synthetic import load_split  # noqa: E402
from fac_lens.embedded import paths  # noqa: E402
from fac_lens.explorer import head_grid_svg  # noqa: E402

panel_module = importlib.import_module("fac_lens.explorer.panel")  # fl.explorer is the function


def counted(calls: list):
    """fl.attention_ratios, counting the samples it records."""
    original = panel_module.attention_ratios

    def wrapper(model, inputs, *args, **kwargs):
        inputs = list(inputs)
        calls.append(len(inputs))
        return original(model, inputs, *args, **kwargs)

    return original, wrapper


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="fac-smol")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=10)
    args = parser.parse_args()
    model = fl.load(args.model)
    samples = list(load_split(paths.synthetic_test()))[: args.samples]

    calls: list[int] = []
    original, wrapper = counted(calls)
    panel_module.attention_ratios = wrapper
    try:
        open_seconds = seconds(lambda: setattr(main, "panel", fl.explorer(model, samples, progress=False)))
        recorded_on_open = list(calls)
        ratios = main.panel._mean
        calls.clear()
        reopen_seconds = seconds(lambda: fl.explorer(model, samples, progress=False, ratios=ratios))
        recorded_on_reopen = list(calls)
    finally:
        panel_module.attention_ratios = original
    panel = main.panel
    panel.sample.value = panel.sample.options[1]

    slider = panel.sliders["tau_perc"]
    values = [round(0.3 + 0.6 * i / args.moves, 3) for i in range(args.moves)]
    moves = [seconds(lambda v=v: setattr(slider, "value", v)) for v in values]  # observe -> update()

    heads = [(layer % model.n_layers, (3 * layer) % model.n_heads) for layer in range(0, 3 * args.clicks, 3)]
    first_click = seconds(lambda: setattr(panel.pick, "value", "{},{}".format(*heads[0])))
    clicks = [seconds(lambda h=h: setattr(panel.pick, "value", f"{h[0]},{h[1]}")) for h in heads[1:]]

    grids = {}
    for n in (28, 64):
        visual = torch.rand(n, n, generator=torch.Generator().manual_seed(0))
        grids[f"{n}x{n}"] = statistics.median(
            seconds(lambda v=visual: head_grid_svg(v, v > 0.8, v < 0.1, 1 + (v > 0.8).float()))
            for _ in range(5)
        )
    met = {
        "slider": statistics.median(moves) <= 0.3,
        "click": statistics.median(clicks) <= 0.5,
        "ratios_once": recorded_on_open == [len(samples)] and recorded_on_reopen == [],
    }
    record(
        "explorer",
        {
            "setting": {
                "model": args.model,
                "samples": args.samples,
                "moves": args.moves,
                "clicks": args.clicks,
                "heads": [model.n_layers, model.n_heads],
            },  # fmt: skip
            "open_seconds": open_seconds,
            "reopen_with_ratios_seconds": reopen_seconds,
            "ratios_recorded": {"open": recorded_on_open, "reopen_with_ratios": recorded_on_reopen},
            "update_seconds": {"median": statistics.median(moves), "max": max(moves), "all": moves},
            "click_seconds": {"first": first_click, "median": statistics.median(clicks), "max": max(clicks)},
            "grid_svg_seconds": grids,
            "target": "slider move <= 0.3 s, head click <= 0.5 s (fac-smol), ratios recorded once",
            "met": all(met.values()),
            "met_each": met,
        },
    )


if __name__ == "__main__":
    main()
