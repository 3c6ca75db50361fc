"""GPU validation at real size: Qwen2.5-VL-7B (Ocean-R1, R1-Onevision) and Kimi-VL-A3B, bfloat16.

    python -m bench.gpu_validation              # one GPU, unattended, about 6-9 minutes on an H200
    python -m bench.gpu_validation --dry-run    # CPU, 2 layers, short sequences, float32: checks the script

Random weights (HF init) with the published configs' sizes, built directly on the device. Each
model is measured against plain HF on the same device (the unwrapped HF modules, SDPA):

- ratio recording at ~3000 tokens (2500 image tokens): ``fl.attention_ratios`` vs a plain forward
  vs transformer-lens ``run_with_cache`` of every ``hook_pattern`` (time, extra peak memory);
- 256-token greedy generation: plain HF generate, fac_lens vanilla / static / folded / dynamic;
- one contribution map (last position) and one 64-token span map (chunk sizes 1 and 16).

Kimi-VL-A3B runs on transformers' native Kimi-K2.5 classes (MoonViT + DeepSeek-V3 MLA/MoE decoder)
with Kimi-VL-A3B's sizes: the classes a ``kimi_vl`` checkpoint maps onto. Writes
``bench/results/gpu_validation[_dryrun].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

import fac_lens as fl

RESULTS = Path(__file__).parent / "results"

QWEN_IDS = dict(
    image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653
)


def qwen2_5_vl_7b(n_layers: int | None, vision_layers: int | None, vocab: int | None = None):
    """Qwen2.5-VL-7B-Instruct's config (the base of Ocean-R1 and R1-Onevision)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    text = dict(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=n_layers or 28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=vocab or 152064,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        max_position_embeddings=128000,
        rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151645,
        pad_token_id=151643,
    )
    vision = dict(
        depth=vision_layers or 32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=3584,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[i for i in (7, 15, 23, 31) if i < (vision_layers or 32)] or [0],
        tokens_per_second=2,
    )
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **QWEN_IDS, tie_word_embeddings=False)
    return Qwen2_5_VLForConditionalGeneration, config, "Ocean-R1-7B-Instruct"


def kimi_vl_a3b(n_layers: int | None, vision_layers: int | None, vocab: int | None = None):
    """Kimi-VL-A3B-Thinking's sizes: MoonViT (27 x 1152) + a 27-layer DeepSeek-V3 decoder, MLA
    (KV rank 512, no Q compression, nope 128 + rope 64 query/key heads, value heads 128) and
    64 routed experts (6 per token) + 2 shared after one dense layer."""
    from transformers import Kimi_K25Config, Kimi_K25ForConditionalGeneration

    text = dict(
        model_type="deepseek_v3",
        hidden_size=2048,
        intermediate_size=11264,
        moe_intermediate_size=1408,
        num_hidden_layers=n_layers or 27,
        num_attention_heads=16,
        num_key_value_heads=16,
        n_shared_experts=2,
        n_routed_experts=64,
        num_experts_per_tok=6,
        n_group=1,
        topk_group=1,
        routed_scaling_factor=2.446,
        first_k_dense_replace=1,
        kv_lora_rank=512,
        q_lora_rank=None,
        qk_nope_head_dim=128,
        qk_rope_head_dim=64,
        v_head_dim=128,
        vocab_size=vocab or 163840,
        rms_norm_eps=1e-5,
        rope_theta=800000.0,
        max_position_embeddings=131072,
        tie_word_embeddings=False,
        bos_token_id=163584,
        eos_token_id=163585,
        pad_token_id=163839,
    )
    vision = dict(
        patch_size=14,
        pos_emb_height=64,
        pos_emb_width=64,
        pos_emb_time=4,
        num_attention_heads=16,
        num_hidden_layers=vision_layers or 27,
        hidden_size=1152,
        intermediate_size=4304,
        merge_kernel_size=[2, 2],
    )
    config = Kimi_K25Config(
        text_config=text,
        vision_config=vision,
        projection_hidden_size=1152,
        **QWEN_IDS,
        tie_word_embeddings=False,
    )
    return Kimi_K25ForConditionalGeneration, config, "Kimi-VL-A3B-Thinking"


MODELS = {"qwen2_5_vl_7b": qwen2_5_vl_7b, "kimi_vl_a3b": kimi_vl_a3b}


def build(
    name: str,
    n_layers: int | None,
    vision_layers: int | None,
    device: torch.device,
    dtype,
    vocab: int | None = None,
):
    model_class, config, preset = MODELS[name](n_layers, vision_layers, vocab)
    if vocab is not None:  # a trimmed vocabulary: special ids move to its top
        ids = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
        for offset, key in enumerate(ids, start=1):
            setattr(config, key, vocab - offset)
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(config.text_config, key, vocab - 8)
    config.text_config._attn_implementation = "sdpa"
    config.vision_config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        hf = model_class._from_config(config, dtype=dtype)
    return hf.eval(), preset


def inputs_for(hf, image_tokens: int, text_tokens: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Text, one image of ``image_tokens`` merged tokens on a real patch grid, text."""
    config = hf.config
    vision = config.vision_config
    g = torch.Generator().manual_seed(seed)
    top = min(30000, config.text_config.vocab_size - 16)  # random text ids, clear of special ones
    side = max(int(round(image_tokens**0.5)), 1)
    h, w = 2 * side, 2 * max(image_tokens // side, 1)
    if config.model_type == "qwen2_5_vl":
        pixels = torch.randn(h * w, 3 * vision.temporal_patch_size * vision.patch_size**2, generator=g)
    else:
        pixels = torch.randn(h * w, 3, vision.patch_size, vision.patch_size, generator=g)
    ids = (
        torch.randint(1000, top, (text_tokens // 2,), generator=g).tolist()
        + [config.vision_start_token_id, *[config.image_token_id] * (h * w // 4), config.vision_end_token_id]
        + torch.randint(1000, top, (text_tokens - text_tokens // 2,), generator=g).tolist()
    )
    input_ids = torch.tensor([ids])
    out = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": pixels,
        "image_grid_thw": torch.tensor([[1, h, w]]),
    }
    if config.model_type == "qwen2_5_vl":
        out["mm_token_type_ids"] = (input_ids == config.image_token_id).int()
    return out


# ------------------------------------------------------------------------------ measuring
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def reset_peak(device: torch.device) -> int:
    """Start a peak-memory window; returns the baseline (bytes)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:  # Linux: clear the process's peak resident size (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return rss_bytes()


def peak(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(
    fn: Callable[[], object], device: torch.device, repeats: int = 1, warmup: Callable | None = None
) -> dict:
    """Median seconds over ``repeats`` (after a warm-up: ``warmup`` or one run) and the extra peak
    memory (MiB)."""
    (warmup or fn)()
    synchronize(device)
    base = reset_peak(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    extra = max(peak(device) - base, 0)
    return {"seconds": sorted(times)[len(times) // 2], "runs_s": times, "extra_peak_MiB": extra / 2**20}


def plain_hf(lens):
    """Context: the unwrapped HF modules with HF's own SDPA (plain HF on the same weights)."""
    from contextlib import ExitStack

    stack = ExitStack()
    stack.enter_context(lens.attention_implementation("sdpa"))
    stack.enter_context(lens.unbridged())
    return stack


def validate_model(name: str, args, device: torch.device, dtype) -> dict:
    started = time.perf_counter()
    hf, preset = build(name, args.layers, args.vision_layers, device, dtype, args.vocab)
    lens = fl.load(hf, device=None)
    n_params = sum(p.numel() for p in hf.parameters())
    inputs = lens.normalize(inputs_for(hf, args.image_tokens, args.text_tokens))
    ids = inputs["input_ids"]
    out: dict = {"model": name, "preset": preset, "parameters": n_params, "tokens": int(ids.shape[1])}
    out["layers"], out["heads"] = lens.n_layers, lens.n_heads
    print(f"== {name}: {n_params / 1e9:.2f}B parameters, {ids.shape[1]} tokens", flush=True)

    # ratio recording vs a plain forward vs transformer-lens run_with_cache of hook_pattern
    def plain_forward():
        with torch.no_grad(), plain_hf(lens):
            lens.reset_state()
            lens.hf.model(**inputs)

    def tl_patterns():
        with torch.no_grad(), lens.attention_implementation("eager"):
            lens.reset_state()
            extra = {k: v for k, v in inputs.items() if k != "input_ids"}
            _, cache = lens.bridge.run_with_cache(
                ids, **extra, names_filter=lambda n: n.endswith("hook_pattern")
            )
            image = ids[0] == lens.image_token_id
            mass = [
                cache[f"blocks.{i}.attn.hook_pattern"][..., image].sum(-1).mean(-1)
                for i in range(lens.n_layers)
            ]
            del cache, mass

    ratios_holder = {}

    def fac_ratios():
        ratios_holder["r"] = fl.attention_ratios(lens, inputs, progress=False)

    out["ratios"] = {
        "plain_forward": measure(plain_forward, device),
        "fac_ratios_indicator": measure(fac_ratios, device),
    }
    if not args.skip_tl:
        try:
            out["ratios"]["tl_run_with_cache_pattern"] = measure(tl_patterns, device)
        except torch.OutOfMemoryError as error:
            out["ratios"]["tl_run_with_cache_pattern"] = {"error": f"out of memory: {error}"[:200]}
            torch.cuda.empty_cache()
    ratios = ratios_holder["r"]
    print("   ratios done", flush=True)

    # generation: plain HF, fac_lens vanilla / static / folded / dynamic
    cfg = fl.FacConfig.preset(preset)
    cfg = dataclasses.replace(
        cfg, l_perc=min(cfg.l_perc, lens.n_layers - 1), l_reas=min(cfg.l_reas, lens.n_layers - 1)
    )
    gains = cfg.gains(ratios)
    steps = args.new_tokens
    fixed = dict(min_new_tokens=steps, do_sample=False, pad_token_id=0)
    gen_inputs = lens.normalize(inputs_for(hf, args.gen_image_tokens, args.text_tokens))

    def plain_generate(n=steps):
        with torch.no_grad(), plain_hf(lens):
            lens.reset_state()
            lens.hf.generate(**gen_inputs, max_new_tokens=n, **dict(fixed, min_new_tokens=n))

    trace = {}

    def run(fac=None, keep=False, n=steps):
        def go():
            result = fl.generate(lens, gen_inputs, n, fac=fac, **dict(fixed, min_new_tokens=n))
            if keep:
                trace["result"] = result

        return go

    def timed(fn, warm):  # warm up on 4 tokens: a full warm-up run would double the time
        return measure(fn, device, args.repeats, warmup=warm)

    generation = {
        "plain_hf_generate": timed(plain_generate, lambda: plain_generate(4)),
        "fac_vanilla": timed(run(keep=True), run(n=4)),
        "fac_static": timed(run(gains), run(gains, n=4)),
        "fac_dynamic": timed(run(cfg), run(cfg, n=4)),
    }
    fl.fold_gains(lens, gains)
    generation["fac_folded"] = timed(run(), run(n=4))
    fl.fold_gains(lens, fl.Gains(1 / gains.values))
    base = generation["plain_hf_generate"]["seconds"]
    out["generation"] = {
        "new_tokens": steps,
        "prompt_tokens": int(gen_inputs["input_ids"].shape[1]),
        **generation,
    }
    out["generation_relative"] = {k: v["seconds"] / base for k, v in generation.items()}
    print("   generation done", flush=True)

    # contribution maps: one at the last prompt position, one over the generated span
    target = int(trace["result"].new_tokens[0, 0])
    out["contribution"] = {
        "single": measure(lambda: fl.contribution_map(lens, inputs, target=target, progress=False), device)
    }
    sequence = trace["result"].sequences[:, : gen_inputs["input_ids"].shape[1] + args.span]
    span_inputs = dict(gen_inputs, input_ids=sequence, attention_mask=torch.ones_like(sequence))
    if "mm_token_type_ids" in span_inputs:
        span_inputs["mm_token_type_ids"] = (sequence == lens.image_token_id).int()
    start = int(gen_inputs["input_ids"].shape[1]) - 1
    for chunk in args.chunks:
        key = f"span{args.span}_chunk{chunk}"
        try:
            out["contribution"][key] = measure(
                lambda chunk=chunk: fl.contribution_map(
                    lens,
                    span_inputs,
                    position=slice(start, start + args.span),
                    chunk_size=chunk,
                    progress=False,
                ),
                device,
            )
        except torch.OutOfMemoryError as error:
            out["contribution"][key] = {"error": f"out of memory: {error}"[:200]}
            torch.cuda.empty_cache()
    out["seconds_total"] = time.perf_counter() - started
    print(f"   done in {out['seconds_total']:.0f} s", flush=True)
    return out


def markdown(payload: dict) -> str:
    label = payload["label"]
    lines = [f"# GPU validation ({label})", "", f"Command: `{payload['command']}`", ""]
    lines += [
        "| model | tokens | ratios: fac / plain fwd | ratios peak MiB: fac / plain / TL | gen "
        f"{payload['results'][0]['generation']['new_tokens'] if payload['results'] else ''} tok: static / folded / dynamic vs plain HF | contribution map s | span maps s (chunk) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in payload["results"]:
        ratio = r["ratios"]
        tl = ratio.get("tl_run_with_cache_pattern", {})
        tl_mem = f"{tl['extra_peak_MiB']:.0f}" if "extra_peak_MiB" in tl else tl.get("error", "skipped")[:40]
        rel = r["generation_relative"]
        spans = ", ".join(
            f"{v['seconds']:.1f} ({k.split('chunk')[1]})"
            if "seconds" in v
            else f"OOM ({k.split('chunk')[1]})"
            for k, v in r["contribution"].items()
            if k.startswith("span")
        )
        lines.append(
            f"| {r['model']} ({r['parameters'] / 1e9:.1f}B, {r['layers']} layers) | {r['tokens']} | "
            f"{ratio['fac_ratios_indicator']['seconds'] / ratio['plain_forward']['seconds']:.2f}x | "
            f"{ratio['fac_ratios_indicator']['extra_peak_MiB']:.0f} / {ratio['plain_forward']['extra_peak_MiB']:.0f} / {tl_mem} | "
            f"{rel['fac_static']:.3f}x / {rel['fac_folded']:.3f}x / {rel['fac_dynamic']:.3f}x (vanilla {rel['fac_vanilla']:.3f}x) | "
            f"{r['contribution']['single']['seconds']:.2f} | {spans} |"
        )
    lines += ["", f"Device: `{payload['device']}`, dtype `{payload['dtype']}`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dry-run", action="store_true", help="CPU, 2 layers, short sequences")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--layers", type=int, default=None, help="text layers (default: the real count)")
    parser.add_argument("--vision-layers", type=int, default=None)
    parser.add_argument("--vocab", type=int, default=None, help="vocabulary (default: the real one)")
    parser.add_argument("--image-tokens", type=int, default=2500)
    parser.add_argument("--text-tokens", type=int, default=500)
    parser.add_argument("--gen-image-tokens", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--span", type=int, default=64)
    parser.add_argument("--chunks", type=int, nargs="*", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--merge", action="store_true", help="keep other models' rows in the JSON")
    parser.add_argument("--skip-tl", action="store_true", help="skip transformer-lens run_with_cache")
    parser.add_argument(
        "--dtype",
        default=None,
        choices=["bfloat16", "float16", "float32"],
        help="default: bfloat16 (GPU), float32 (dry run)",
    )
    args = parser.parse_args()
    if args.dry_run:
        args.layers, args.vision_layers = args.layers or 2, args.vision_layers or 2
        args.image_tokens, args.text_tokens, args.gen_image_tokens = 64, 16, 16
        args.new_tokens, args.span, args.chunks = 4, 4, [1, 4]
        args.dtype = args.dtype or "float32"  # bfloat16 matrix products are emulated on AVX2 CPUs
        args.vocab = args.vocab or 16384  # the embedding and lm_head are most of a 2-layer model
        device = torch.device("cpu")
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --dry-run for a CPU check of the script")
        device = torch.device("cuda")
    args.dtype = args.dtype or "bfloat16"
    dtype = getattr(torch, args.dtype)
    import sys

    results = []
    for name in args.models:
        results.append(validate_model(name, args, device, dtype))
        gc.collect()  # the model, its closures and caches went with validate_model's frame
        if device.type == "cuda":
            torch.cuda.empty_cache()
    payload = {
        "benchmark": "gpu_validation",
        "label": (
            f"CPU dry run, {args.layers} layers, vocabulary {args.vocab}, short sequences, {args.dtype}"
            if args.dry_run
            else "GPU"
        ),
        "command": " ".join(["python -m bench.gpu_validation", *sys.argv[1:]]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": args.dtype,
        "settings": vars(args),
        "torch": torch.__version__,
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "gpu_validation_dryrun" if args.dry_run else "gpu_validation"
    path = RESULTS / f"{stem}.json"
    if args.merge and path.exists():  # keep the other models' rows (one model per process)
        done = {r["model"] for r in results}
        earlier = [r for r in json.loads(path.read_text())["results"] if r["model"] not in done]
        payload["results"] = earlier + results
    path.write_text(json.dumps(payload, indent=2))
    (RESULTS / f"{stem}.md").write_text(markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
