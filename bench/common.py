"""Shared helpers for the benchmarks: model builders at realistic layer sizes, timing, recording."""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def qwen_like(
    n_layers: int,
    hidden: int,
    n_heads: int,
    n_kv_heads: int,
    intermediate: int,
    vocab: int = 4096,
    seed: int = 0,
):
    """A random Qwen2.5-VL with the given text-decoder sizes (HF's init), SDPA attention."""
    from fac_lens.testing import tiny_qwen2_5_vl

    model = tiny_qwen2_5_vl(
        seed=seed,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        d_head=hidden // n_heads,
        intermediate=intermediate,
        vocab=vocab,
        init=0.02,
    )
    model.config.text_config._attn_implementation = "sdpa"
    return model


def qwen_inputs(model, n_image_tokens: int, n_text: int, seed: int = 0) -> dict:
    """One prompt: text, an image of ``n_image_tokens`` merged tokens (real grid), text."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    side = int(round(n_image_tokens**0.5))
    h, w = 2 * side, 2 * (n_image_tokens // side)
    n_merged = (h * w) // 4
    ids = (
        torch.randint(4, 250, (n_text // 2,), generator=g).tolist()
        + [cfg.vision_start_token_id]
        + [cfg.image_token_id] * n_merged
        + [cfg.vision_end_token_id]
        + torch.randint(4, 250, (n_text - n_text // 2,), generator=g).tolist()
    )
    input_ids = torch.tensor([ids])
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": torch.randn(h * w, 3 * 2 * 14 * 14, generator=g),
        "image_grid_thw": torch.tensor([[1, h, w]]),
        "mm_token_type_ids": (input_ids == cfg.image_token_id).int(),
    }


SEVEN_B_LAYER = dict(hidden=3584, n_heads=28, n_kv_heads=4, intermediate=18944)


def seven_b_like(n_layers: int, vocab: int = 4096):
    """Decoder layers with Qwen2.5-VL-7B proportions: 28 heads of 128, 4 KV heads, MLP 18944."""
    return qwen_like(n_layers, vocab=vocab, **SEVEN_B_LAYER)


def setting(args, inputs: dict, **extra) -> dict:
    """The settings a result was measured with: arguments, prompt length, layer sizes, dtype."""
    return {
        **vars(args),
        "tokens": int(inputs["input_ids"].shape[1]),
        **SEVEN_B_LAYER,
        "dtype": "float32",
        **extra,
    }


def plain_forward(plain, inputs: dict):
    """A plain SDPA forward of the unwrapped model (the baseline), as a zero-argument callable."""

    def run():
        plain.model.rope_deltas = None
        with torch.no_grad():
            plain(**inputs)

    return run


def time_against(variants: dict, base: str, repeats: int) -> tuple[dict, dict]:
    """Interleaved timings of every variant and each median relative to ``base``'s."""
    timings = interleaved(variants, repeats)
    reference = timings[base]["median_s"]
    return timings, {name: t["median_s"] / reference for name, t in timings.items()}


def plain_and_lens(model):
    """(plain HF copy with SDPA, fac_lens LensModel around the original)."""
    import fac_lens as fl

    plain = copy.deepcopy(model)
    return plain, fl.load(model)


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def interleaved(variants: dict, repeats: int, warmup: int = 1) -> dict[str, dict]:
    """Time each variant ``repeats`` times, round-robin so drift hits all alike; median and runs."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    runs = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            runs[name] += timed(fn, 1)
    return {name: {"median_s": statistics.median(r), "runs_s": r} for name, r in runs.items()}


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }


def record(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    command = " ".join(["python -m", f"bench.{Path(sys.argv[0]).stem}", *sys.argv[1:]])
    payload = {"benchmark": name, "command": command, "machine": machine(), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps({k: v for k, v in payload.items() if k != "machine"}, indent=2))
    return path
