"""The ``fac-lens`` command line: help, bad input, JSON output, resume after kill -9, two ranks."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fac_lens.cli import main
from fac_lens.experiments.store import ResultStore

MODEL = Path("data/models/fac-tiny")
pytestmark = pytest.mark.skipif(not (MODEL / "model.safetensors").exists(), reason="fac-tiny not trained")
SETTING = ["--l-perc", "2", "--l-reas", "3", "--tau-perc", "0.6", "--tau-reas", "0.5"]
SMALL = ["--max-new-tokens", "20", "--batch-size", "2", "--no-progress"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("command", ["eval", "sweep", "figures", "ratios"])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--model", "--dataset", "--store", "--json", "--limit"):
        assert option in text
    if command != "ratios":
        assert "--l-perc" in text and "--g-reas" in text


def test_bad_input_is_named_and_leaves_no_store(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(["eval", "--dataset", "nope", "--store", str(store)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path / "missing"), "--store", str(store)]) == 2
    assert capsys.readouterr().err.strip()
    assert not store.exists()
    assert (
        main(
            [
                "sweep",
                "--grid",
                "boundary",
                "--l-percs",
                "9",
                "--limit",
                "2",
                "--store",
                str(store),
                *SETTING,
                *SMALL,
            ]
        )
        == 2
    )
    assert "l_perc=9 is outside the model" in capsys.readouterr().err
    assert ResultStore(store).runs() == []
    assert (
        main(
            [
                "sweep",
                "--grid",
                "gains",
                "--g-percs",
                "",
                "--limit",
                "2",
                "--store",
                str(store),
                *SETTING,
                *SMALL,
            ]
        )
        == 2
    )
    assert "empty" in capsys.readouterr().err
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    assert main(["eval", "--limit", "2", "--store", str(store), *SETTING, *SMALL]) == 2
    assert "999" in capsys.readouterr().err


def test_eval_json_matches_the_stored_records(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(["eval", "--method", "vanilla", "--limit", "4", "--store", str(store), "--json", *SMALL]) == 0
    summary = json.loads(capsys.readouterr().out)
    records = ResultStore(store).records()
    assert len(records) == 4 and summary["n"] == 4
    assert summary["accuracy"] == sum(r["correct"] for r in records) / 4


def _sweep_command(store: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fac_lens.cli",
        "sweep",
        "--grid",
        "gains",
        "--g-percs",
        "1.1,1.2",
        "--g-reass",
        "1.3",
        "--limit",
        "8",
        "--store",
        str(store),
        *SETTING,
        *SMALL,
    ]


def _rows(store: Path) -> set:
    return {(r["run_id"], r["sample_id"], r["trace"], r["correct"]) for r in ResultStore(store).records()}


def test_sweep_killed_and_resumed_gives_the_uninterrupted_rows(tmp_path):
    killed, clean = tmp_path / "killed.sqlite", tmp_path / "clean.sqlite"
    process = subprocess.Popen(
        _sweep_command(killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    count = 0
    while time.time() < deadline and process.poll() is None:
        if killed.exists():
            try:
                with sqlite3.connect(killed, timeout=5) as conn:
                    count = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            except sqlite3.OperationalError:
                count = 0
        if count >= 4:
            break
        time.sleep(0.2)
    assert process.poll() is None, process.stderr.read().decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = _rows(killed)
    assert 4 <= len(partial) < 24
    subprocess.run(_sweep_command(killed), env=ENV, check=True, capture_output=True)
    subprocess.run(_sweep_command(clean), env=ENV, check=True, capture_output=True)
    assert len(_rows(clean)) == 24  # vanilla + 2 gain settings, 8 samples each
    assert _rows(killed) == _rows(clean)
    assert len(ResultStore(killed).summaries()) == 3


def test_two_process_sweep_with_torchrun_gloo(tmp_path):
    distributed, single = tmp_path / "dist.sqlite", tmp_path / "single.sqlite"
    command = _sweep_command(distributed)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        *command[2:],
    ]
    done = subprocess.run(torchrun, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    subprocess.run(_sweep_command(single), env=ENV, check=True, capture_output=True)
    assert _rows(distributed) == _rows(single)
    assert len(_rows(distributed)) == 24
    assert len(ResultStore(distributed).summaries()) == 3


def _check_figures(out: Path, written: list[str]) -> None:
    names = {Path(p).name.split("_fac-tiny")[0] for p in written}
    assert {
        "fig3_efficiency",
        "fig4_boundary",
        "fig5_gains_thresholds",
        "ratio_trajectory",
        "head_classes",
        "contribution",
        "table1",
        "table2",
        "table4",
    } <= names
    for path in written:
        assert Path(path).parent == out and Path(path).stat().st_size > 100
    table2 = next(Path(p) for p in written if Path(p).name.startswith("table2") and p.endswith(".md"))
    assert len(table2.read_text().strip().splitlines()) == 2 + 4  # header, rule, four ablation rows


def test_figures_end_to_end_on_the_embedded_default(tmp_path, capsys):
    out = tmp_path / "figures"
    args = [
        "figures",
        "--limit",
        "4",
        "--l-percs",
        "1,2",
        "--l-reass",
        "3,4",
        "--g-percs",
        "1.1,1.2",
        "--g-reass",
        "1.3",
        "--store",
        str(tmp_path / "s.sqlite"),
        "--out",
        str(out),
        "--json",
        *SMALL,
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)["written"]
    _check_figures(out, first)
    # a second call reuses every stored result: same files, no new runs or records
    store = ResultStore(tmp_path / "s.sqlite")
    before = (len(store.runs()), len(store.records()))
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["written"] == first
    assert (len(store.runs()), len(store.records())) == before


@pytest.mark.slow
def test_figures_with_the_default_grids(tmp_path, capsys):
    out = tmp_path / "figures"
    args = [
        "figures",
        "--limit",
        "8",
        "--store",
        str(tmp_path / "s.sqlite"),
        "--out",
        str(out),
        "--json",
        "--batch-size",
        "8",
        "--max-new-tokens",
        "48",
        "--no-progress",
    ]
    assert main(args) == 0
    _check_figures(out, json.loads(capsys.readouterr().out)["written"])


def test_eval_without_yes_no_questions_prints_f1_as_n_a(tmp_path, capsys):
    # the first two test samples are an attribute and a count question: binary F1 is undefined
    store = tmp_path / "s.sqlite"
    assert main(["eval", "--method", "vanilla", "--limit", "2", "--store", str(store), *SMALL]) == 0
    out = capsys.readouterr().out
    assert "F1 n/a" in out and "accuracy " in out


def test_eval_and_sweep_print_the_difference_to_vanilla_with_its_uncertainty(tmp_path, capsys):
    from math import comb

    store = tmp_path / "s.sqlite"
    common = ["--limit", "4", "--store", str(store), *SETTING, *SMALL]
    assert main(["eval", "--method", "dynamic", *common]) == 0
    assert "no vanilla run with these generation settings" in capsys.readouterr().out
    vanilla_flags = ["--limit", "4", "--store", str(store), *SMALL]  # vanilla takes no FAC setting
    assert main(["eval", "--method", "vanilla", "--json", *vanilla_flags]) == 0
    assert json.loads(capsys.readouterr().out)["vs_vanilla"] is None
    assert main(["eval", "--method", "dynamic", "--json", *common]) == 0
    versus = json.loads(capsys.readouterr().out)["vs_vanilla"]
    by_run = {}
    for r in ResultStore(store).records():
        by_run.setdefault(r["run_id"], {})[r["sample_id"]] = r["correct"]
    runs = {run["method"]["name"]: run["run_id"] for run in ResultStore(store).runs()}
    vanilla, dynamic = by_run[runs["vanilla"]], by_run[runs["dynamic"]]
    b = sum(vanilla[s] and not dynamic[s] for s in vanilla)
    c = sum(dynamic[s] and not vanilla[s] for s in vanilla)
    expected_p = (
        1.0 if b + c == 0 else min(1.0, 2 * sum(comb(b + c, k) for k in range(min(b, c) + 1)) / 2 ** (b + c))
    )
    assert (versus["n"], versus["b"], versus["c"]) == (4, b, c)
    assert versus["p_value"] == expected_p
    assert versus["accuracy"]["value"] == (sum(dynamic.values()) - sum(vanilla.values())) / 4
    assert versus["accuracy"]["low"] <= versus["accuracy"]["value"] <= versus["accuracy"]["high"]
    assert main(["eval", "--method", "dynamic", *common]) == 0
    assert "vs vanilla on 4 paired samples: accuracy" in capsys.readouterr().out

    sweep = ["sweep", "--grid", "gains", "--g-percs", "1.1", "--g-reass", "1.3", *common]
    assert main(sweep) == 0
    out = capsys.readouterr().out
    assert "d_acc" in out and "McNemar" in out
    assert main([*sweep, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["summaries"]
    base = next(r for r in rows if r["name"] == "vanilla")
    assert base["d_acc"] is None  # vanilla has no difference to itself
    for row in rows:
        if row["name"] != "vanilla":
            assert row["d_acc"] == pytest.approx(row["accuracy"] - base["accuracy"])
            assert row["low"] <= row["d_acc"] <= row["high"] and 0 <= row["p"] <= 1


def test_store_export_writes_one_file_with_every_row(tmp_path, capsys):
    from tests.experiments.test_store import RUN, make_records

    path = tmp_path / "store.sqlite"
    with ResultStore(path) as store:
        run_id = store.ensure_run(**RUN)
        store.add_records(make_records(run_id, 30))
        out = tmp_path / "copy" / "export.sqlite"
        assert main(["store", "export", str(path), str(out), "--json"]) == 0  # the store still open
        assert json.loads(capsys.readouterr().out) == {
            "store": str(path),
            "out": str(out),
            "runs": 1,
            "records": 30,
        }
        with sqlite3.connect(out) as raw:
            assert raw.execute("SELECT COUNT(*) FROM records").fetchone() == (30,)
        raw.close()
    assert not out.with_name("export.sqlite-wal").exists()
    assert main(["store", "export", str(path), str(out)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["store", "export", str(tmp_path / "missing.sqlite"), str(tmp_path / "x.sqlite")]) == 2
    assert "no results store at" in capsys.readouterr().err
    assert not (tmp_path / "missing.sqlite").exists()
