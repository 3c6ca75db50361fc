"""Seeded fuzzing of every public function and CLI command with bad input (wrong types, shapes and
ranges, NaN / inf, empty, mismatched counts): each draw must raise one FacLensError (the CLI: exit 2
and one line on stderr) and leave the model bit-identical, hook-free, and the store unchanged."""

import gc
import hashlib
import math
import random
from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

import fac_lens as fl
from fac_lens.cli import main
from fac_lens.experiments.store import ResultStore
from fac_lens.teacher_forcing import trace_start
from fac_lens.testing import save_tiny_checkpoint
from tests.core.test_rescale import no_leftovers

SEED = 19
API_DRAWS = 240
CLI_DRAWS = 120

BAD_INTS = [-1, -(10**9), 10**9, 1.5, math.nan, math.inf, "3", True, [], [[1]], np.float32(2.0),
            torch.tensor([[1]]), torch.tensor(0.5), object()]  # fmt: skip
BAD_GAINS = [0, -1.0, math.nan, math.inf, -math.inf, "1.2", None, [], True, 1j, torch.tensor([1.0, 2.0])]
# g_perc / g_reas also take one gain per layer: a sequence is bad only when an entry is (or it is empty)
BAD_LAYER_GAINS = [*BAD_GAINS[:-1], [1.0, 0.0], (1.0, math.nan), ["1.2"], torch.tensor([1.0, -2.0])]
BAD_RATIOS = [-0.1, 1.1, math.nan, math.inf, "0.5", None, True, [0.1]]
BAD_IMAGES = [None, "image.png", 3, [], [None], np.zeros((0, 0, 3), dtype=np.uint8), torch.zeros(2)]
BAD_TEXTS = [None, 3, [], [1, 2], b"bytes", ["a", None]]


def image() -> Image.Image:
    return Image.new("RGB", (56, 56), (30, 160, 90))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-llava")
    save_tiny_checkpoint(folder, "llava")
    return fl.load(folder)


@pytest.fixture(scope="module")
def good(model):
    inputs = model.prepare(image(), "what color is it ?")
    config = fl.FacConfig(l_perc=0, l_reas=model.n_layers - 1, tau_perc=0.1, tau_reas=0.9, g_reas=1.5)
    ratios = fl.HeadRatios(torch.rand(2, model.n_layers, model.n_heads))
    return inputs, config, ratios


# ------------------------------------------------------------------------------ bad model inputs
def bad_inputs(rng: random.Random, model, inputs: dict) -> object:
    """A copy of good inputs with one thing broken (or not a dict at all)."""
    ids, image_id = inputs["input_ids"], model.image_token_id
    n = ids.shape[1]
    keep = ids[0] != image_id
    breakages: list[Callable[[], object]] = [
        lambda: None,
        lambda: [inputs],
        lambda: "input_ids",
        lambda: {"attention_mask": inputs["attention_mask"]},
        lambda: {**inputs, "input_ids": ids.clone().index_fill_(1, torch.tensor([n - 1]), 10**6)},
        lambda: {**inputs, "input_ids": ids.clone().index_fill_(1, torch.tensor([n - 1]), -5)},
        lambda: {**inputs, "input_ids": ids.float()},
        lambda: {**inputs, "input_ids": ids[:, :0], "attention_mask": inputs["attention_mask"][:, :0]},
        lambda: {**inputs, "input_ids": ids[None]},
        lambda: {**inputs, "input_ids": "1 2 3"},
        lambda: {**inputs, "attention_mask": inputs["attention_mask"][:, 1:]},
        lambda: {**inputs, "attention_mask": inputs["attention_mask"] * 2},
        lambda: {**inputs, "pixel_values": inputs["pixel_values"] * math.nan},
        lambda: {**inputs, "pixel_values": inputs["pixel_values"] + math.inf},
        lambda: {**inputs, "pixel_values": "pixels"},
        lambda: {**inputs, "pixel_values": inputs["pixel_values"].long()},
        lambda: {**inputs, "pixel_values": inputs["pixel_values"][:, :, :8]},
        lambda: {**inputs, "pixel_values": torch.cat([inputs["pixel_values"]] * 2)},
        lambda: {k: v for k, v in inputs.items() if k != "pixel_values"},
        lambda: {
            **inputs,
            "input_ids": torch.cat([ids[:, :1], torch.full((1, 3), image_id), ids[:, 1:]], 1),
            "attention_mask": torch.ones(1, n + 3, dtype=torch.long),
        },
        lambda: {"input_ids": ids[:, keep], "pixel_values": inputs["pixel_values"]},
    ]
    return rng.choice(breakages)()


# ------------------------------------------------------------------------------- one bad call each
def api_draws(rng: random.Random, model, good) -> list[tuple[str, Callable[[], object]]]:
    inputs, config, ratios = good
    L, H = model.n_layers, model.n_heads
    pick = rng.choice
    fields = {"l_perc": 0, "l_reas": L - 1, "tau_perc": 0.2, "tau_reas": 0.1, "g_perc": 1.2, "g_reas": 1.3}
    bad_for = {
        "l_perc": [*BAD_INTS, L, 99],
        "l_reas": [*BAD_INTS, L, 99],
        "tau_perc": BAD_RATIOS,
        "tau_reas": BAD_RATIOS,
        "g_perc": BAD_LAYER_GAINS,
        "g_reas": BAD_LAYER_GAINS,
        "strategy": ["E", "", None, 1, ["A"]],
        "target": ["all", None, 3],
        "query": ["first", None, 2],
        "beta": BAD_GAINS,
    }
    field = pick(sorted(bad_for))
    bad_value = pick(bad_for[field])
    bad_gain_values = [torch.zeros(L, H), torch.full((L, H), math.nan), torch.ones(L + 1, H), torch.ones(H),
                       torch.ones(1, L, H), "gains", None, -torch.ones(L, H), torch.ones(0, 0)]  # fmt: skip
    bad_fac = [
        *bad_gain_values[1:4],
        {"g_perc": 1.2},
        config.replace(l_reas=L + 3),
        fl.Gains(torch.ones(2, 2)),
    ]
    n = inputs["input_ids"].shape[1]

    def config_with_bad_field():
        return fl.FacConfig(**{**fields, field: bad_value})

    def rescale_bad():
        with fl.rescale(model, pick(bad_fac)):
            pass

    def teacher_bad():
        with fl.teacher_forcing(pick([0, -3, *BAD_INTS[3:]])):
            pass

    def dynamic_without_image():
        keep = inputs["input_ids"][0] != model.image_token_id
        with fl.rescale(model, config), torch.no_grad():
            model.hf(input_ids=inputs["input_ids"][:, keep])

    return [
        (f"FacConfig({field}={bad_value!r})", config_with_bad_field),
        ("identify_heads(bad ratios)", lambda: fl.identify_heads(pick([torch.ones(L), "r", None, torch.ones(2, 2, 2)]), 0, 1, 0.2, 0.1)),
        (f"identify_heads({field}=bad)", lambda: fl.identify_heads(ratios, **{**{k: fields[k] for k in ("l_perc", "l_reas", "tau_perc", "tau_reas")}, **({field: bad_value} if field in ("l_perc", "l_reas", "tau_perc", "tau_reas") else {"l_perc": -1})})),
        ("Gains(bad values)", lambda: fl.Gains(pick(bad_gain_values))),
        ("Gains.from_selection(bad)", lambda: fl.Gains.from_selection(pick([None, ratios, torch.ones(L, H)]))),
        ("Gains.from_selection(bad gain)", lambda: fl.Gains.from_selection(fl.identify_heads(ratios, 0, 1, 0.2, 0.1), g_perc=pick(BAD_LAYER_GAINS))),
        ("rescale(bad)", rescale_bad),
        ("rescale(dynamic, no image)", dynamic_without_image),
        ("fold_gains(bad)", lambda: fl.fold_gains(model, pick(bad_fac))),
        ("attention_ratios(bad inputs)", lambda: fl.attention_ratios(model, bad_inputs(rng, model, inputs), progress=False)),
        ("attention_ratios(bad query)", lambda: fl.attention_ratios(model, inputs, query=pick(["first", None, 3, torch.ones(2)]))),
        ("attention_ratios(bad method)", lambda: fl.attention_ratios(model, inputs, method=pick(["eager", None, 1]))),
        ("attention_ratios([])", lambda: fl.attention_ratios(model, [], progress=False)),
        ("generate(bad inputs)", lambda: fl.generate(model, bad_inputs(rng, model, inputs), max_new_tokens=2)),
        ("generate(bad max_new_tokens)", lambda: fl.generate(model, inputs, max_new_tokens=pick([0, *BAD_INTS[:1], *BAD_INTS[3:]]))),
        ("generate(bad fac)", lambda: fl.generate(model, inputs, max_new_tokens=2, fac=pick(bad_fac))),
        ("contribution_map(bad inputs)", lambda: fl.contribution_map(model, bad_inputs(rng, model, inputs), target=1, progress=False)),
        ("contribution_map(bad target)", lambda: fl.contribution_map(model, inputs, target=pick([-1, 10**9, [1, 2], [], *BAD_INTS[3:]]), progress=False)),
        ("contribution_map(bad position)", lambda: fl.contribution_map(model, inputs, target=1, position=pick([n, -n - 1, [], slice(0, 0), slice("a"), *BAD_INTS[3:]]), progress=False)),
        ("contribution_map(bad prompt_length)", lambda: fl.contribution_map(model, inputs, target=1, prompt_length=pick([0, n + 1, *BAD_INTS[3:]]), progress=False)),
        ("contribution_map(batch of 2)", lambda: fl.contribution_map(model, {k: torch.cat([v, v]) for k, v in inputs.items()}, target=1, progress=False)),
        ("calibrated_config(bad)", lambda: fl.calibrated_config(pick([None, torch.ones(L, H), "r"]))),
        ("calibrated_config(bad l_perc/quantile)", lambda: fl.calibrated_config(ratios, **pick([{"l_perc": pick(BAD_INTS)}, {"quantile": pick(BAD_RATIOS)}, {"l_perc": L - 1}]))),
        ("teacher_forcing(bad)", teacher_bad),
        ("prepare(bad image)", lambda: model.prepare(pick(BAD_IMAGES), "a question")),
        ("prepare(bad text)", lambda: model.prepare(image(), pick(BAD_TEXTS))),
        ("prepare(count mismatch)", lambda: model.prepare([image()] * 2, ["one prompt"])),
        ("case_study(bad fac)", lambda: fl.case_study(model, image(), "q", pick([None, *bad_fac]))),
        ("case_study(bad token)", lambda: fl.case_study(model, image(), "q", config, token=pick([-1, *BAD_INTS[3:]]))),
        ("case_study(bad max_new_tokens)", lambda: fl.case_study(model, image(), "q", config, max_new_tokens=pick([0, -2, 1.5]))),
        ("compare(no fac / no image / no question)", lambda: pick([lambda: fl.compare(model, image(), "q"), lambda: fl.compare(model, None, "q", fac=config), lambda: fl.compare(model, image(), "", fac=config)])()),
        ("load(bad source)", lambda: fl.load(pick(["/nonexistent/model", "", 3, "."]))),
        ("load(bad dtype)", lambda: fl.load("fac-tiny", dtype=pick(["float77", torch.int8, 3, "bool"]))),
        ("load(bad device)", lambda: fl.load("fac-tiny", device=pick(["banana", "cuda:99", 3.5, "cpu:x"]))),
    ]  # fmt: skip


def fingerprint(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.hf.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def test_public_functions_refuse_bad_input_and_change_nothing(model, good):
    rng = random.Random(SEED)
    before, padding = fingerprint(model), model.tokenizer.padding_side
    failures, seen = [], set()
    for _ in range(API_DRAWS):
        name, call = rng.choice(api_draws(rng, model, good))
        seen.add(name.split("(")[0])
        try:
            call()
            failures.append(f"{name}: no error")
        except fl.FacLensError as error:
            if not str(error).strip():
                failures.append(f"{name}: empty message")
        except Exception as error:  # noqa: BLE001 - the point: anything else is a finding
            failures.append(f"{name}: {type(error).__name__}: {error}")
    assert not failures, "\n".join(sorted(set(failures)))
    assert seen >= {name.split("(")[0] for name, _ in api_draws(rng, model, good)}  # every function
    assert fingerprint(model) == before and no_leftovers(model)
    assert model.tokenizer.padding_side == padding and trace_start() is None


def test_image_attention_refuses_bad_input_and_changes_nothing(model, good):
    """fl.image_attention's draws, with their own seeded stream (the draws above keep theirs)."""
    rng = random.Random(SEED)
    inputs = good[0]
    n = inputs["input_ids"].shape[1]
    draws = [
        lambda: fl.image_attention(model, bad_inputs(rng, model, inputs)),
        lambda: fl.image_attention(model, inputs, position=rng.choice([n, -n - 1, [], *BAD_INTS[3:]])),
        lambda: fl.image_attention(model, {k: torch.cat([v, v]) for k, v in inputs.items()}),
    ]
    before = fingerprint(model)
    failures = []
    for _ in range(40):
        try:
            rng.choice(draws)()
            failures.append("no error")
        except fl.FacLensError as error:
            if not str(error).strip():
                failures.append("empty message")
        except Exception as error:  # noqa: BLE001 - anything else is a finding
            failures.append(f"{type(error).__name__}: {error}")
    assert not failures, "\n".join(sorted(set(failures)))
    assert fingerprint(model) == before and no_leftovers(model)


# ------------------------------------------------------------------------------------------- CLI
OUTS = {  # per command: paths that must be refused (eval and sweep have no --out)
    "figures": ["{tmp}/a_file", "{tmp}/a_file/sub"],
    "ratios": ["{tmp}/no/such/dir/x.png", "{tmp}/x.unknownformat", "{tmp}"],
    "eval": ["{tmp}/x.png"],
    "sweep": ["{tmp}/x.png"],
}
FLAGS = {
    "counts": lambda r: [r.choice(["--batch-size", "--max-new-tokens", "--limit", "--calibration-n"]),
                         r.choice(["0", "-1", "-999", "x", "1.5", "nan", ""])],
    "device": lambda r: ["--device", r.choice(["banana", "cuda:99", "", "cpu:x", "tpu"])],
    "gain": lambda r: [r.choice(["--g-perc", "--g-reas"]), r.choice(["0", "-1", "nan", "inf", "x"])],
    "tau": lambda r: [r.choice(["--tau-perc", "--tau-reas"]), r.choice(["-0.1", "1.5", "nan", "inf", "x"])],
    "layer": lambda r: [r.choice(["--l-perc", "--l-reas"]), r.choice(["-1", "-7", "1.5", "x"])],
    "preset": lambda r: ["--preset", r.choice(["nope", "", "kimi-xx"])],
    "method": lambda r: r.choice([["--method", "vanilla", "--g-perc", "1.2"], ["--method", "vanilla", "--preset", "R1-Onevision"],
                                  ["--method", "dynamic", "--mode", "static"], ["--method", "static", "--mode", "dynamic"],
                                  ["--method", "strategy"], ["--method", "strategy-A", "--strategy", "D"], ["--method", "nope"]]),
    "out": lambda r: ["--out", r.choice(OUTS[r.command])],
    "dataset": lambda r: ["--dataset", r.choice(["nope", ""])],
    "model": lambda r: ["--model", r.choice(["{tmp}/missing", "{tmp}/a_file", "."])],
    "timing": lambda r: [r.choice(["--timing-repeats", "--timing-batches"]), r.choice(["-1", "x"])],
    "unknown": lambda r: [r.choice(["--bogus", "--grid", "--query"]), r.choice(["1", "nope"])],
}  # fmt: skip


def cli_argv(rng: random.Random, tmp: str) -> list[str]:
    command = rng.choice(sorted(OUTS))
    rng.command = command
    argv = [command]
    for kind in rng.sample(sorted(FLAGS), rng.choice([1, 2])):
        argv += FLAGS[kind](rng)
    return [a.replace("{tmp}", tmp) for a in argv]


class ReachedTheStore(Exception):
    """A draw got as far as opening the store: it should have been refused before."""


def test_cli_refuses_bad_flags_with_one_line_and_keeps_the_store(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise ReachedTheStore(args)

    monkeypatch.setattr("fac_lens.experiments.runner.ResultStore", refuse)
    (tmp_path / "a_file").write_text("not a model")
    store = tmp_path / "store.sqlite"
    ResultStore(store)
    gc.collect()
    before, files = store.read_bytes(), sorted(tmp_path.rglob("*"))
    rng = random.Random(SEED)
    failures = []
    for _ in range(CLI_DRAWS):
        argv = cli_argv(rng, str(tmp_path))
        try:
            code = main([*argv, "--store", str(store), "--no-progress"])
        except ReachedTheStore:
            code = "reached the store"
        err = capsys.readouterr().err.strip().splitlines()
        lines = [line for line in err if not line.startswith("Loading weights")]
        if code != 2 or len(lines) != 1:
            failures.append(f"{' '.join(argv)}: exit {code}, stderr {lines}")
    assert not failures, "\n".join(failures)
    gc.collect()
    assert store.read_bytes() == before and sorted(tmp_path.rglob("*")) == files
