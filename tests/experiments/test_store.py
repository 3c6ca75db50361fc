"""The results store: round trips, idempotent and all-or-nothing writes, schema checks, crash safety
(a writer killed with SIGKILL) and several processes writing one file."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fac_lens
from fac_lens.errors import FacLensError
from fac_lens.experiments import store as store_mod
from fac_lens.experiments.store import SCHEMA_VERSION, ResultStore, run_id_for

REPO = Path(__file__).resolve().parents[2]

# The spec's summaries() columns, written out here so that the test checks the spec, not the module.
SPEC_SUMMARY_COLUMNS = [
    "run_id", "model", "dataset", "sweep", "code_version", "name", "mode", "strategy", "l_perc", "l_reas",
    "tau_perc", "tau_reas", "g_perc", "g_reas", "query", "n_perception", "n_reasoning", "n", "n_skipped",
    "accuracy", "f1", "binary_f1", "per_kind", "errors", "seconds_per_batch", "seconds_total",
    "seconds_per_token", "heads_perception_mean", "heads_perception_std", "heads_reasoning_mean",
    "heads_reasoning_std", "max_new_tokens", "batch_size", "seed", "baseline",
]  # fmt: skip
SPEC_RECORD_KEYS = [
    "run_id", "sample_id", "kind", "question", "answer", "choices", "trace", "predicted", "correct", "error",
    "seconds", "batch_seconds", "batch_size", "code_version", "generated_tokens", "head_counts",
]  # fmt: skip

VANILLA = {
    "name": "vanilla", "mode": "none", "strategy": None, "l_perc": None, "l_reas": None, "tau_perc": None,
    "tau_reas": None, "g_perc": None, "g_reas": None, "query": None, "n_perception": None, "n_reasoning": None,
}  # fmt: skip
STATIC = {
    **VANILLA, "name": "static", "mode": "static", "strategy": "A", "l_perc": 2, "l_reas": 3, "tau_perc": 0.22,
    "tau_reas": 0.01, "g_perc": 1.16, "g_reas": 1.3, "query": "all", "n_perception": 5, "n_reasoning": 7,
    "beta": 0.5,  # keys beyond the spec's are kept
}  # fmt: skip
GENERATION = {"max_new_tokens": 64, "batch_size": 8, "seed": 0}
RUN = {
    "model": "tiny-qwen",
    "dataset": "synthetic",
    "sweep": "eval",
    "method": VANILLA,
    "generation": GENERATION,
    "code_version": "0.1.0+gtest",
}


def make_records(run_id, n, prefix="s"):
    """``n`` deterministic records of ``run_id`` (self-contained: the subprocess scripts copy it)."""
    errors = ["correct", "perception", "reasoning", None]
    records = []
    for i in range(n):
        records.append(
            {
                "run_id": run_id,
                "sample_id": f"{prefix}{i:04d}",
                "kind": ["exist", "count", "two_step"][i % 3],
                "question": f"Is there a red cube? #{i}",
                "answer": "yes" if i % 2 else "no",
                "choices": ["yes", "no"] if i % 4 else [],
                "trace": f"<think> i see a red cube . </think> {'yes' if i % 3 else 'no'}",
                "predicted": None if i % 5 == 0 else ("yes" if i % 3 else "no"),
                "correct": i % 3 == 0,
                "error": errors[i % 4],
                "seconds": 0.25 + i / 1000,
                "batch_seconds": 2.0 + i / 100,
                "batch_size": 8,
                "code_version": "0.1.0+gtest",
                "generated_tokens": None if i % 6 == 5 else 10 + i,
                "head_counts": {"perception": [i, 2], "reasoning": [3, i % 4]} if i % 2 else None,
            }
        )
    return records


SCRIPT = """
import sys
import time

from fac_lens.experiments.store import ResultStore

RUN = {run!r}

{make_records}

if sys.argv[1] == "open":  # open new stores at the moment each go file appears
    base, go, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    print("ready", flush=True)
    for i in range(count):
        deadline = time.time() + 60
        while not __import__("os").path.exists(f"{{go}}{{i}}") and time.time() < deadline:
            time.sleep(0.0005)
        ResultStore(f"{{base}}{{i}}.sqlite").close()
    print("opened", count, flush=True)
    sys.exit(0)

store = ResultStore(sys.argv[2])
run_id = store.ensure_run(**RUN)
if sys.argv[1] == "crash":
    records = make_records(run_id, 200)
    for start in range(0, 200, 10):
        print("writing", start // 10 + 1, flush=True)
        store.add_records(records[start : start + 10])
        print("committed", start // 10 + 1, flush=True)
        time.sleep(0.05)
else:
    prefix, go = sys.argv[3], sys.argv[4]
    records = make_records(run_id, 100, prefix) + make_records(run_id, 20, "common")
    records.sort(key=lambda r: r["sample_id"][-2:])  # the shared ones spread over the batches
    print("ready", flush=True)
    deadline = time.time() + 60
    while not __import__("os").path.exists(go) and time.time() < deadline:
        time.sleep(0.01)
    inserted = sum(store.add_records(records[i : i + 5]) for i in range(0, len(records), 5))
    print("inserted", inserted, flush=True)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "writer.py"
    path.write_text(SCRIPT.format(run=RUN, make_records=inspect.getsource(make_records)))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


@contextlib.contextmanager
def _ready_workers(commands: list[list[str]]):
    """Start one Python worker per command, wait until each prints "ready"; kill leftovers."""
    procs = [
        subprocess.Popen(
            [sys.executable, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for command in commands
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path):
    with ResultStore(tmp_path / "results" / "store.sqlite") as s:
        yield s


# --- run ids -------------------------------------------------------------------------------------


def test_run_id_is_deterministic_and_sensitive_to_every_input() -> None:
    base = run_id_for("m", "d", STATIC, GENERATION)
    assert len(base) == 16 and int(base, 16) >= 0
    assert run_id_for("m", "d", dict(reversed(list(STATIC.items()))), dict(GENERATION)) == base  # key order
    assert run_id_for("m", "d", {**STATIC, "l_perc": np.int64(2)}, GENERATION) == base  # numpy scalars
    changed = [
        run_id_for("m2", "d", STATIC, GENERATION),
        run_id_for("m", "d2", STATIC, GENERATION),
        run_id_for("m", "d", {**STATIC, "g_perc": 1.17}, GENERATION),
        run_id_for("m", "d", {**STATIC, "strategy": "B"}, GENERATION),
        run_id_for("m", "d", STATIC, {**GENERATION, "seed": 1}),
        run_id_for("m", "d", STATIC, {**GENERATION, "max_new_tokens": 65}),
    ]
    assert len({base, *changed}) == len(changed) + 1


# --- round trips ---------------------------------------------------------------------------------


def test_store_creates_parent_folders_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.sqlite"
    ResultStore(path).close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ResultStore(path).close()  # reopening a store of this version is fine


def test_runs_round_trip(store: ResultStore) -> None:
    run_id = store.ensure_run(**RUN)
    assert run_id == run_id_for(RUN["model"], RUN["dataset"], VANILLA, GENERATION)
    other = store.ensure_run(**{**RUN, "sweep": "gains", "method": STATIC})
    assert other != run_id
    run = store.run(other)
    assert run["method"] == STATIC and run["generation"] == GENERATION
    assert (run["model"], run["dataset"], run["sweep"], run["code_version"]) == (
        "tiny-qwen", "synthetic", "gains", "0.1.0+gtest",
    )  # fmt: skip
    assert isinstance(run["created"], float) and abs(run["created"] - time.time()) < 60
    # registering again is a no-op that returns the same id and keeps the first row
    assert store.ensure_run(**{**RUN, "sweep": "boundary", "code_version": "other"}) == run_id
    assert store.run(run_id)["sweep"] == "eval" and store.run(run_id)["code_version"] == "0.1.0+gtest"
    assert [r["run_id"] for r in store.runs()] == [run_id, other]
    assert [r["run_id"] for r in store.runs(sweep="gains")] == [other]
    assert [r["run_id"] for r in store.runs(model="tiny-qwen", sweep=["eval", "gains"])] == [run_id, other]
    assert store.runs(dataset="nope") == []
    with pytest.raises(FacLensError, match="unknown filter"):
        store.runs(colour="red")
    with pytest.raises(FacLensError, match="no run 'ffff'"):
        store.run("ffff")


def test_ensure_run_checks_its_input_and_defaults_code_version(
    store: ResultStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    method = {k: v for k, v in VANILLA.items() if k != "query"}
    with pytest.raises(FacLensError, match="'query'"):
        store.ensure_run(**{**RUN, "method": method})
    with pytest.raises(FacLensError, match="'seed'"):
        store.ensure_run(**{**RUN, "generation": {"max_new_tokens": 1, "batch_size": 1}})
    assert store.runs() == []
    monkeypatch.setattr(store_mod, "code_version", lambda: "9.9.9+gfeed")
    run_id = store.ensure_run(**{k: v for k, v in RUN.items() if k != "code_version"})
    assert store.run(run_id)["code_version"] == "9.9.9+gfeed"


def test_records_round_trip(store: ResultStore) -> None:
    run_id = store.ensure_run(**RUN)
    written = make_records(run_id, 12)
    assert store.add_records(written[::-1]) == 12
    stored = store.records(run_id)
    assert stored == written  # ordered by sample_id; every value as written
    assert all(type(r["correct"]) is bool and type(r["choices"]) is list for r in stored)
    assert stored[0]["predicted"] is None and stored[3]["error"] is None
    assert store.done_sample_ids(run_id) == {r["sample_id"] for r in written}
    assert store.done_sample_ids("unknown") == set()
    frame = store.records_frame(run_id)
    assert list(frame.columns) == SPEC_RECORD_KEYS and len(frame) == 12
    assert frame["correct"].tolist() == [r["correct"] for r in written]
    assert list(store.records_frame("unknown").columns) == SPEC_RECORD_KEYS
    # numpy values (as a harness may produce) are stored as plain values
    np_record = {**make_records(run_id, 1, "np")[0], "correct": np.bool_(True), "seconds": np.float32(0.5)}
    np_record["batch_size"] = np.int64(4)
    assert store.add_records([np_record]) == 1
    back = [r for r in store.records() if r["sample_id"] == "np0000"][0]
    assert back["correct"] is True and back["seconds"] == 0.5 and type(back["batch_size"]) is int


def test_add_records_is_idempotent(store: ResultStore) -> None:
    run_id = store.ensure_run(**RUN)
    records = make_records(run_id, 30)
    assert store.add_records(records) == 30
    assert store.add_records(records) == 0
    assert store.add_records(records[:10] + make_records(run_id, 35)[30:]) == 5  # only the new ones
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("SELECT COUNT(*), COUNT(DISTINCT sample_id) FROM records").fetchone() == (35, 35)
    assert store.records(run_id)[:30] == records


@pytest.mark.parametrize("key", ["trace", "code_version", "correct", "run_id"])
def test_record_missing_a_key_writes_nothing(store: ResultStore, key: str) -> None:
    run_id = store.ensure_run(**RUN)
    records = make_records(run_id, 5)
    del records[3][key]
    with pytest.raises(FacLensError, match=f"record 3 .*missing key '{key}'"):
        store.add_records(records)
    assert store.records() == []


def test_record_of_unknown_run_writes_nothing(store: ResultStore) -> None:
    run_id = store.ensure_run(**RUN)
    records = make_records(run_id, 5) + make_records("0123456789abcdef", 1, "x")
    with pytest.raises(FacLensError, match="unknown run '0123456789abcdef'"):
        store.add_records(records)
    assert store.records() == [] and store.done_sample_ids(run_id) == set()


@pytest.mark.parametrize(
    ("key", "value"),
    [("correct", "yes"), ("choices", "yes,no"), ("seconds", float("nan")), ("batch_size", 0), ("extra", 1)],
)
def test_record_with_a_bad_value_writes_nothing(store: ResultStore, key: str, value: object) -> None:
    run_id = store.ensure_run(**RUN)
    records = make_records(run_id, 4)
    records[2][key] = value
    with pytest.raises(FacLensError, match=key):
        store.add_records(records)
    assert store.records() == []


def test_summaries_round_trip(store: ResultStore) -> None:
    vanilla = store.ensure_run(**RUN)
    static = store.ensure_run(**{**RUN, "sweep": "gains", "method": STATIC})
    unsummarised = store.ensure_run(**{**RUN, "dataset": "other"})
    assert store.summary(vanilla) is None
    summary = {
        "n": 12,
        "n_skipped": 2,
        "accuracy": 0.5,
        "f1": float("nan"),
        "binary_f1": 0.4,
        "per_kind": {"count": 0.25, "exist": 0.75},
        "errors": {"perception": 2, "reasoning": 4},
        "seconds_per_batch": 2.5,
        "seconds_total": 3.75,
        "seconds_per_token": 0.125,
        "heads_perception_mean": 4.5,
        "heads_perception_std": 1.5,
        "heads_reasoning_mean": 7.0,
        "heads_reasoning_std": 0.0,
    }
    store.set_summary(vanilla, summary)
    store.set_summary(static, {**summary, "accuracy": 0.1})
    store.set_summary(static, {**summary, "accuracy": 0.75, "f1": 0.6})  # replaces
    back = store.summary(vanilla)
    assert math.isnan(back.pop("f1")) and back == {
        "run_id": vanilla,
        **{k: v for k, v in summary.items() if k != "f1"},
    }
    assert store.summary(static)["accuracy"] == 0.75 and store.summary(unsummarised) is None

    frame = store.summaries()
    assert list(frame.columns) == SPEC_SUMMARY_COLUMNS
    assert frame["run_id"].tolist() == [vanilla, static]
    row = frame.set_index("run_id").loc[static]
    assert (row["name"], row["mode"], row["strategy"], row["l_perc"], row["g_reas"], row["query"]) == (
        "static", "static", "A", 2, 1.3, "all",
    )  # fmt: skip
    assert (row["n_perception"], row["n_reasoning"], row["n"], row["accuracy"], row["f1"]) == (
        5,
        7,
        12,
        0.75,
        0.6,
    )
    assert (row["max_new_tokens"], row["batch_size"], row["seed"]) == (64, 8, 0)
    assert row["per_kind"] == summary["per_kind"] and row["errors"] == summary["errors"]
    assert row["sweep"] == "gains" and row["code_version"] == "0.1.0+gtest"
    assert math.isnan(frame.set_index("run_id").loc[vanilla, "f1"])
    assert store.summaries(sweep="gains")["run_id"].tolist() == [static]
    assert store.summaries(name="vanilla")["run_id"].tolist() == [vanilla]
    assert store.summaries(name=["vanilla", "static"], seed=0)["run_id"].tolist() == [vanilla, static]
    with pytest.raises(FacLensError, match="unknown filter"):
        store.summaries(colour="red")


def test_summary_checks_its_input(store: ResultStore) -> None:
    run_id = store.ensure_run(**RUN)
    with pytest.raises(FacLensError, match="no such run"):
        store.set_summary("0123456789abcdef", {"n": 1})
    with pytest.raises(FacLensError, match="unknown key 'acc'"):
        store.set_summary(run_id, {"n": 1, "acc": 0.5})
    with pytest.raises(FacLensError, match="'n'"):
        store.set_summary(run_id, {"accuracy": 0.5})
    assert store.summary(run_id) is None
    store.set_summary(run_id, {"n": 0})  # what the harness summarises for no records
    empty = store.summary(run_id)
    assert empty["n"] == 0 and math.isnan(empty["accuracy"]) and empty["per_kind"] == {}


def test_summaries_columns_on_an_empty_store(store: ResultStore) -> None:
    frame = store.summaries()
    assert list(frame.columns) == SPEC_SUMMARY_COLUMNS and len(frame) == 0
    store.ensure_run(**RUN)
    assert list(store.summaries(sweep="nope").columns) == SPEC_SUMMARY_COLUMNS


def test_arrays_round_trip(store: ResultStore) -> None:
    ratios = np.random.default_rng(0).random((3, 4, 5), dtype=np.float32)
    meta = {"query": "all", "n_samples": 3, "sample_ids": ["a", "b", "c"]}
    store.put_array("ratios:m:d", ratios, kind="ratios_per_sample", model="m", dataset="d", meta=meta)
    store.put_array("contrib:before", [[1.5, -2.0]], kind="contribution", model="m", dataset="d2")
    value, back = store.get_array("ratios:m:d")
    assert value.dtype == np.float32 and value.shape == (3, 4, 5) and np.array_equal(value, ratios)
    assert back == meta
    assert store.get_array("contrib:before")[1] == {}
    store.put_array(
        "contrib:before", np.arange(4), kind="contribution", model="m", dataset="d2", meta={"x": 1}
    )
    value, back = store.get_array("contrib:before")  # replaced
    assert value.tolist() == [0, 1, 2, 3] and back == {"x": 1}
    assert store.arrays() == [
        {"name": "contrib:before", "kind": "contribution", "model": "m", "dataset": "d2", "meta": {"x": 1}},
        {"name": "ratios:m:d", "kind": "ratios_per_sample", "model": "m", "dataset": "d", "meta": meta},
    ]
    assert [a["name"] for a in store.arrays(kind="ratios_per_sample")] == ["ratios:m:d"]
    assert [a["name"] for a in store.arrays(dataset="d2")] == ["contrib:before"]
    assert store.arrays(model="other") == []
    with pytest.raises(FacLensError, match="no array 'nope'.*'contrib:before', 'ratios:m:d'"):
        store.get_array("nope")


# --- schema and foreign files --------------------------------------------------------------------


# The version-1 layout of the two tables that gained columns, as the first release wrote them.
V1_TABLES = (
    """CREATE TABLE records (
        run_id TEXT NOT NULL REFERENCES runs(run_id), sample_id TEXT NOT NULL, kind TEXT NOT NULL,
        question TEXT NOT NULL, answer TEXT NOT NULL, choices TEXT NOT NULL, trace TEXT NOT NULL,
        predicted TEXT, correct INTEGER NOT NULL, error TEXT, seconds REAL NOT NULL,
        batch_seconds REAL NOT NULL, batch_size INTEGER NOT NULL, code_version TEXT NOT NULL,
        PRIMARY KEY (run_id, sample_id)) WITHOUT ROWID""",
    """CREATE TABLE summaries (
        run_id TEXT PRIMARY KEY REFERENCES runs(run_id), n INTEGER NOT NULL, accuracy REAL, f1 REAL,
        weighted_f1 REAL, per_kind TEXT NOT NULL, errors TEXT NOT NULL, seconds_per_batch REAL,
        seconds_total REAL)""",
)


def test_a_version_1_store_is_read_and_extended(tmp_path: Path) -> None:
    """Its records gain the added columns (empty for the old rows); its summaries (the old binary
    F1 as f1) are dropped, to be rewritten from the records."""
    path = tmp_path / "v1.sqlite"
    with ResultStore(path) as s:
        run_id = s.ensure_run(**RUN)
    with sqlite3.connect(path) as raw:  # rebuild the two tables as version 1 had them, with one row each
        raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        raw.execute("DROP TABLE records")
        raw.execute("DROP TABLE summaries")
        for statement in V1_TABLES:
            raw.execute(statement)
        old = {
            k: v
            for k, v in make_records(run_id, 1)[0].items()
            if k not in ("generated_tokens", "head_counts")
        }
        raw.execute(
            f"INSERT INTO records ({', '.join(old)}) VALUES ({', '.join('?' * len(old))})",
            [json.dumps(v) if k == "choices" else v for k, v in old.items()],
        )
        raw.execute("INSERT INTO summaries VALUES (?, 1, 0.5, NULL, 0.5, '{}', '{}', 2.0, 0.25)", (run_id,))
    raw.close()
    with ResultStore(path) as s:
        (back,) = s.records(run_id)
        assert back == {**old, "generated_tokens": None, "head_counts": None}
        assert s.summaries().empty and s.summary(run_id) is None
        new = make_records(run_id, 2, prefix="new")[1]  # head_counts and generated_tokens set
        assert s.add_records([new]) == 1 and s.records(run_id)[0] == new
    with ResultStore(path) as s:  # opening again changes nothing
        assert len(s.records(run_id)) == 2


@pytest.mark.parametrize(
    "head_counts",
    [{"perception": [1]}, {"perception": [1, 2], "reasoning": [3]}, {"perception": [-1], "reasoning": [0]}],
)
def test_malformed_head_counts_are_refused(store: ResultStore, head_counts) -> None:
    run_id = store.ensure_run(**RUN)
    with pytest.raises(FacLensError, match="head_counts"):
        store.add_records([{**make_records(run_id, 1)[0], "head_counts": head_counts}])
    assert store.records() == []


def test_schema_version_mismatch_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with ResultStore(path) as s:
        s.ensure_run(**RUN)
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    raw.close()
    before = _sha(path)
    with pytest.raises(FacLensError) as info:
        ResultStore(path)
    message = str(info.value)
    assert "999" in message and f"expects schema version {SCHEMA_VERSION}" in message
    assert str(path) in message and "--store" in message
    assert _sha(path) == before
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta").fetchall() == [("999",)]
    raw.close()


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"these are not the results you are looking for\n" * 20)
    before = _sha(text)
    with pytest.raises(FacLensError, match="not an SQLite database"):
        ResultStore(text)
    assert _sha(text) == before

    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE things (x)")
    raw.close()
    with pytest.raises(FacLensError, match="not a fac_lens results store"):
        ResultStore(foreign)
    with sqlite3.connect(foreign) as raw:
        assert [r[0] for r in raw.execute("SELECT name FROM sqlite_master")] == ["things"]
    raw.close()

    with pytest.raises(FacLensError, match="folder"):
        ResultStore(tmp_path)


# --- processes -----------------------------------------------------------------------------------


def test_a_killed_writer_leaves_whole_batches_and_resumes(tmp_path: Path, script: Path) -> None:
    path = tmp_path / "crash.sqlite"
    proc = subprocess.Popen(
        [sys.executable, str(script), "crash", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    seen = 0
    try:
        for line in proc.stdout:
            if line.startswith("committed"):
                seen = int(line.split()[1])
            if line.startswith("writing") and seen >= 3:
                break  # kill it while it writes the next batch
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.stderr.close()
    assert seen >= 3, stderr
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count = raw.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    raw.close()
    assert 10 * seen <= count < 200  # every batch reported committed is there; not all of them ran
    assert count % 10 == 0  # no partial batch

    store = ResultStore(path)
    run_id = store.ensure_run(**RUN)
    everything = make_records(run_id, 200)
    assert store.records(run_id) == everything[:count]
    assert store.add_records(everything) == 200 - count  # resume: INSERT OR IGNORE
    with ResultStore(tmp_path / "reference.sqlite") as reference:
        assert reference.ensure_run(**RUN) == run_id
        reference.add_records(everything)
        assert store.records() == reference.records()
    assert len(store.records()) == 200
    store.close()


def test_two_processes_write_one_store(tmp_path: Path, script: Path) -> None:
    path = tmp_path / "shared" / "store.sqlite"  # created by the workers, concurrently
    go = tmp_path / "go"
    with _ready_workers([[str(script), "worker", str(path), p, str(go)] for p in ("a", "b")]) as procs:
        go.touch()  # both start writing at once
        outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    inserted = [int(out.split()[-1]) for out, _ in outputs]
    assert sum(inserted) == 220  # the 20 shared records were inserted once, by one of them

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute("SELECT COUNT(*), COUNT(DISTINCT sample_id) FROM records").fetchone() == (220, 220)
    raw.close()
    with ResultStore(path) as store:
        run_id = store.ensure_run(**RUN)
        expected = (
            make_records(run_id, 100, "a")
            + make_records(run_id, 100, "b")
            + make_records(run_id, 20, "common")
        )
        assert store.records(run_id) == sorted(expected, key=lambda r: r["sample_id"])
        assert len(store.runs()) == 1


def test_processes_creating_one_new_store_at_once_all_succeed(tmp_path: Path, script: Path) -> None:
    # Two connections switching a new file to WAL at the same moment get "database is locked"
    # at once (SQLite skips the busy handler there); opening must wait and retry, not fail.
    count = 40
    command = [str(script), "open", str(tmp_path / "store"), str(tmp_path / "go"), str(count)]
    with _ready_workers([command] * 3) as procs:
        for i in range(count):
            (tmp_path / f"go{i}").touch()
            time.sleep(0.05)
        outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    for i in range(count):
        with ResultStore(tmp_path / f"store{i}.sqlite") as store:
            assert store.runs() == []
        with sqlite3.connect(tmp_path / f"store{i}.sqlite") as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        raw.close()


def test_a_forked_child_uses_its_own_connection(store: ResultStore) -> None:
    run_id = store.ensure_run(**RUN)
    parent_connection = store._connection()
    pid = os.fork()
    if pid == 0:  # the child: write through the inherited object, then leave without cleanup
        code = 1
        try:
            written = store.add_records(make_records(run_id, 10, "child"))
            code = 0 if written == 10 and store._connection() is not parent_connection else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._connection() is parent_connection
    assert store.add_records(make_records(run_id, 10, "parent")) == 10
    assert len(store.done_sample_ids(run_id)) == 20
    clone = pickle.loads(pickle.dumps(store))  # e.g. sent to a spawned worker
    assert clone.path == store.path and clone.records() == store.records()
    clone.close()


# --- code version --------------------------------------------------------------------------------


@pytest.fixture
def fresh_code_version():
    store_mod._code_version.cache_clear()
    yield
    store_mod._code_version.cache_clear()


@pytest.mark.parametrize("dirty", [False, True])
def test_code_version_in_a_checkout(monkeypatch: pytest.MonkeyPatch, fresh_code_version, dirty: bool) -> None:
    calls = []

    def fake_run(args, **kwargs):
        calls.append(args)
        out = {"rev-parse": "abc1234\n", "status": " M fac_lens/x.py\n" if dirty else ""}.get(args[2], "")
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    expected = f"{fac_lens.__version__}+gabc1234" + (".dirty" if dirty else "")
    assert store_mod.code_version() == expected
    assert store_mod.code_version() == expected and len(calls) == 3  # computed once


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError("git"),
        subprocess.CalledProcessError(128, "git"),
        subprocess.TimeoutExpired("git", 10),
    ],
)
def test_code_version_without_git(
    monkeypatch: pytest.MonkeyPatch, fresh_code_version, error: Exception
) -> None:
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(subprocess, "run", fail)
    assert store_mod.code_version() == fac_lens.__version__


def test_a_version_1_store_is_upgraded_keeping_records_and_dropping_old_summaries(tmp_path: Path) -> None:
    """Version 1 summaries held the binary F1 as f1: they are dropped, never read as weighted F1."""
    path = tmp_path / "v1.sqlite"
    with ResultStore(path) as s:
        run_id = s.ensure_run(**RUN)
        s.add_records(make_records(run_id, 3))
    with sqlite3.connect(path) as raw:  # make it look like version 1: old summaries table and row
        raw.execute("DROP TABLE summaries")
        raw.execute(
            "CREATE TABLE summaries (run_id TEXT PRIMARY KEY, n INTEGER NOT NULL, accuracy REAL, f1 REAL, "
            "weighted_f1 REAL, per_kind TEXT NOT NULL, errors TEXT NOT NULL, seconds_per_batch REAL, "
            "seconds_total REAL)"
        )
        raw.execute("INSERT INTO summaries VALUES (?, 3, 0.5, 0.9, 0.4, '{}', '{}', 1.0, 2.0)", (run_id,))
        raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    raw.close()
    with ResultStore(path) as s:
        assert s.summary(run_id) is None and len(s.records(run_id)) == 3
        s.set_summary(run_id, {"n": 3, "n_skipped": 1, "accuracy": 0.5, "f1": 0.3, "binary_f1": 0.9})
        assert s.summary(run_id)["n_skipped"] == 1
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
    raw.close()


# --- copies, logs and damaged files ------------------------------------------------------------------


def _fill(store: ResultStore, n: int = 200) -> str:
    """A run with ``n`` records in batches of 10, a summary and an array, as a sweep writes them."""
    run_id = store.ensure_run(**RUN)
    records = make_records(run_id, n)
    for start in range(0, n, 10):
        store.add_records(records[start : start + 10])
    store.set_summary(run_id, {"n": n, "accuracy": 0.5})
    store.put_array(
        "ratios:m:d", np.arange(6.0).reshape(2, 3), kind="ratios_per_sample", model="m", dataset="d"
    )
    return run_id


def _rows(path: Path) -> dict[str, list]:
    """Every row of every table, read with plain sqlite3 (the file and its log, if any)."""
    with contextlib.closing(sqlite3.connect(path)) as raw:
        tables = [row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(map(repr, raw.execute(f"SELECT * FROM {t}"))) for t in sorted(tables)}


def test_the_file_alone_copied_during_a_sweep_holds_every_row(tmp_path: Path) -> None:
    path = tmp_path / "live" / "store.sqlite"
    store = ResultStore(path)  # kept open: the sweep is still running
    _fill(store)
    copy = tmp_path / "elsewhere" / "store.sqlite"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())  # the file alone, no -wal
    expected = _rows(path)
    assert len(expected["records"]) == 200 and len(expected["runs"]) == 1
    assert _rows(copy) == expected
    with ResultStore(copy) as again:
        assert len(again.records()) == 200 and again.summary(again.runs()[0]["run_id"])["n"] == 200
    store.close()
    assert not path.with_name("store.sqlite-wal").exists()  # closed: everything is in the file


def test_the_file_alone_copied_while_two_processes_write_holds_every_row(
    tmp_path: Path, script: Path
) -> None:
    path = tmp_path / "shared" / "store.sqlite"
    go = tmp_path / "go"
    with ResultStore(path) as watcher:  # an open connection keeps the log in place
        with _ready_workers([[str(script), "worker", str(path), p, str(go)] for p in ("a", "b")]) as procs:
            go.touch()
            outputs = [proc.communicate(timeout=120) for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
        copy = tmp_path / "copy.sqlite"
        copy.write_bytes(path.read_bytes())
        assert len(_rows(copy)["records"]) == 220
        assert len(watcher.records()) == 220


def test_export_writes_one_consistent_file(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "store.sqlite") as store:
        _fill(store)
        exported = store.export(tmp_path / "out" / "export.sqlite")
        assert exported == tmp_path / "out" / "export.sqlite"
        with pytest.raises(FacLensError, match="exists already"):
            store.export(exported)
        expected = _rows(store.path)
    assert not exported.with_name("export.sqlite-wal").exists()
    assert exported.read_bytes()[18:20] == b"\x01\x01"  # a rollback-journal file: no log to go with it
    assert _rows(exported) == expected
    with ResultStore(exported) as again:
        assert len(again.records()) == 200


def _raw_store_in_the_log(folder: Path) -> tuple[Path, sqlite3.Connection]:
    """A store whose tables and rows are all still in its log (as stores of earlier versions were
    until SQLite's automatic checkpoint); the returned connection keeps the log there."""
    folder.mkdir()
    path = folder / "store.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA wal_autocheckpoint = 0")
    for statement in store_mod._SCHEMA:
        raw.execute(statement)
    raw.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    run_id = run_id_for(RUN["model"], RUN["dataset"], RUN["method"], RUN["generation"])
    raw.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, "m", "d", "eval", json.dumps(VANILLA), json.dumps(GENERATION), "v", 0.0),
    )
    return path, raw


def test_a_file_without_tables_and_a_log_beside_it_is_refused(tmp_path: Path) -> None:
    path, raw = _raw_store_in_the_log(tmp_path / "old")
    assert _rows_from_the_file_alone(path) == {}
    log = path.with_name("store.sqlite-wal")
    whole = tmp_path / "whole"  # the file and its log copied together: the store opens with its rows
    whole.mkdir()
    (whole / "store.sqlite").write_bytes(path.read_bytes())
    (whole / "store.sqlite-wal").write_bytes(log.read_bytes())
    with ResultStore(whole / "store.sqlite") as store:
        assert len(store.runs()) == 1
    for name, main, wal in (
        ("empty", b"", log.read_bytes()),  # SQLite would delete this log on opening
        ("torn", path.read_bytes(), log.read_bytes()[:24] + bytes(8) + log.read_bytes()[32:]),
        ("foreign", path.read_bytes(), b"not a log" * 100),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "store.sqlite").write_bytes(main)
        (folder / "store.sqlite-wal").write_bytes(wal)
        with pytest.raises(
            FacLensError, match=r"holds no tables.*store.sqlite-wal.*copy the store and its -wal"
        ):
            ResultStore(folder / "store.sqlite")
        assert (folder / "store.sqlite").read_bytes() == main  # nothing changed
        assert (folder / "store.sqlite-wal").read_bytes() == wal
    raw.close()


def _rows_from_the_file_alone(path: Path) -> dict:
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)) as raw:
        return {row[0]: 1 for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_damaged_file_is_refused_naming_it_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with ResultStore(path) as store:
        _fill(store, 600)
    size = path.stat().st_size
    assert size > 16 * 4096
    damaged = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    start = (size // 2) // 4096 * 4096
    damaged[start : start + 3 * 4096] = rng.integers(0, 256, 3 * 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(damaged))
    with pytest.raises(FacLensError, match=rf"{path}.* is damaged .*\.recover.*new --store path"):
        ResultStore(path)
    assert path.read_bytes() == bytes(damaged)  # nothing written
    assert not path.with_name("store.sqlite-wal").exists()
