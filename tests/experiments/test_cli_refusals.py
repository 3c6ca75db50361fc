"""Bad or contradictory flags are refused before any model, data or store is opened: exit 2, one line
on stderr, no traceback, no store file and no run row."""

import gc

import pytest

from fac_lens.cli import main
from fac_lens.errors import FacLensError
from fac_lens.experiments.runner import Experiment
from fac_lens.experiments.store import ResultStore

REFUSED = [
    (["eval", "--batch-size", "0"], "--batch-size 0: give an integer >= 1"),
    (["eval", "--batch-size", "-1"], "--batch-size -1: give an integer >= 1"),
    (["sweep", "--max-new-tokens", "0"], "--max-new-tokens 0"),
    (["figures", "--timing-batches", "0"], "--timing-batches 0"),
    (["eval", "--limit", "0"], "--limit 0"),
    (["eval", "--calibration-n", "-3"], "--calibration-n -3"),
    (["eval", "--batch-size", "two"], "invalid int value: 'two'"),
    (["eval", "--method", "vanilla", "--g-perc", "1.2"], "--method vanilla runs no FAC setting"),
    (["eval", "--method", "vanilla", "--mode", "static"], "--method vanilla runs no FAC setting"),
    (["eval", "--method", "dynamic", "--mode", "static"], "contradict each other"),
    (["eval", "--method", "static", "--mode", "dynamic"], "contradict each other"),
    (["eval", "--method", "strategy"], "--method strategy names no single method"),
    (["eval", "--method", "strategy-B", "--strategy", "C"], "disagree"),
    (["eval", "--device", "banana"], "not a torch device"),
    (["eval", "--device", "cuda:99"], "CUDA device"),
    (["eval", "--g-perc", "nan"], "gains must be finite"),
    (["eval", "--tau-reas", "1.5"], "not a ratio"),
    (["eval", "--l-perc", "-1"], "layers are 0-based"),
    (["eval", "--preset", "nope"], "no single preset matches"),
    (["ratios", "--out", "{tmp}/missing/ratios.png"], "does not exist; create it first"),
    (["ratios", "--out", "{tmp}/ratios.xyz"], "unknown image format"),
    (["ratios", "--out", "{tmp}"], "is a folder"),
    (["figures", "--out", "{tmp}/a_file"], "is a file"),
]


@pytest.mark.parametrize(("argv", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_refused_before_the_store_is_opened(tmp_path, capsys, argv, message):
    (tmp_path / "a_file").write_text("")
    store = tmp_path / "store.sqlite"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main([*argv, "--store", str(store), "--no-progress"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in captured.err
    assert not store.exists()


@pytest.mark.parametrize(
    "option", [{"batch_size": 0}, {"batch_size": -1}, {"max_new_tokens": 0}, {"limit": 0}]
)
def test_experiment_refuses_bad_counts_before_the_store(tmp_path, option):
    store = tmp_path / "store.sqlite"
    with pytest.raises(FacLensError, match="out of range"):
        Experiment.open(store=store, **option)
    assert not store.exists()


def test_an_existing_store_keeps_its_bytes(tmp_path, capsys):
    store = tmp_path / "store.sqlite"
    ResultStore(store)
    gc.collect()  # the store's connection closes: its last write is on disk
    before = store.read_bytes()
    assert main(["eval", "--batch-size", "-1", "--store", str(store)]) == 2
    assert store.read_bytes() == before and ResultStore(store).runs() == []
