"""Span contribution maps: time and peak memory vs trace length, chunk size and model size.

The cost model of :func:`fac_lens.contribution_map` (its docstring): one forward whose graph is kept,
then ``ceil(T / chunk_size)`` backwards, each holding ``chunk_size`` copies of the activation
gradients. Time ~ F + ceil(T / c) * B_c; peak ~ graph + c x one backward's gradients. This
benchmark measures both on two model widths, with the plain forward F as the unit.

Peak memory is the process's peak resident size during the call minus the resident size before it
(Linux ``VmHWM``, reset through ``/proc/self/clear_refs``). The allocator may reuse memory an earlier
call freed, which hides it from a later call's peak: rows run from the smallest expected peak
(short traces, small chunks) up, so each row's peak mostly needs new memory; read the numbers as
lower bounds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

SIZES = {  # 4 layers each; vocab 4096
    "small_128": dict(hidden=128, n_heads=8, n_kv_heads=4, intermediate=512),
    "wide_1024": dict(hidden=1024, n_heads=16, n_kv_heads=4, intermediate=2816),
}


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_window() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return rss()


def hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def with_trace(inputs: dict, n_trace: int, seed: int = 1) -> dict:
    """The prompt followed by ``n_trace`` random text tokens (a teacher-forced 'generated' trace)."""
    g = torch.Generator().manual_seed(seed)
    trace = torch.randint(4, 250, (1, n_trace), generator=g)
    ids = torch.cat([inputs["input_ids"], trace], dim=1)
    out = dict(inputs, input_ids=ids, attention_mask=torch.ones_like(ids))
    out["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(trace).int()], dim=1)
    return out


def measure(fn) -> tuple[float, float]:
    """(seconds, extra peak MiB) of one call."""
    base = peak_window()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return seconds, max(hwm() - base, 0) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--image-tokens", type=int, default=64)
    parser.add_argument("--text-tokens", type=int, default=32)
    parser.add_argument("--traces", type=int, nargs="*", default=[16, 64, 128])
    parser.add_argument("--chunks", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    import fac_lens as fl
    from bench.common import qwen_inputs, qwen_like, record

    rows = []
    for size in args.sizes:
        model = qwen_like(args.layers, **SIZES[size])
        lens = fl.load(model)
        prompt = qwen_inputs(model, args.image_tokens, args.text_tokens)
        for n_trace in args.traces:
            inputs = with_trace(prompt, n_trace)
            n = int(inputs["input_ids"].shape[1])
            span = slice(n - n_trace - 1, n - 1)

            def forward(inputs=inputs, lens=lens):
                with torch.no_grad():
                    lens.forward(inputs)

            forward()  # warm-up
            f_seconds, f_peak = measure(forward)
            for chunk in args.chunks:
                if chunk > n_trace:
                    continue
                call = lambda inputs=inputs, span=span, chunk=chunk, lens=lens: fl.contribution_map(  # noqa: E731
                    lens, inputs, position=span, chunk_size=chunk, progress=False
                )
                seconds, peak = measure(call)
                row = dict(
                    size=size,
                    tokens=n,
                    trace=n_trace,
                    chunk=chunk,
                    seconds=seconds,
                    extra_peak_MiB=peak,
                    forward_seconds=f_seconds,
                    forward_peak_MiB=f_peak,
                    backwards=-(-n_trace // chunk),
                    seconds_per_target=seconds / n_trace,
                    in_forwards=seconds / f_seconds,
                )
                rows.append(row)
                print(row, flush=True)
    record("span_contribution", {"setting": vars(args), "sizes": SIZES, "rows": rows})


if __name__ == "__main__":
    main()
