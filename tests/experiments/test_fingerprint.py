"""What a result came from: full-content hashes of the weights and of the samples, a hub id's
revision, all part of the run id (issue 19: no stored result served for other weights or data)."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import fac_lens as fl
from fac_lens.data.synthetic import load_split
from fac_lens.experiments import fingerprint
from fac_lens.experiments.fingerprint import file_sha256, model_fingerprint, samples_digest
from fac_lens.experiments.methods import Method
from fac_lens.experiments.runner import Experiment
from fac_lens.experiments.store import ResultStore
from fac_lens.experiments.sweeps import reference_ratios

MODEL = Path("data/models/fac-tiny")
TEST = Path("data/synthetic/test")
pytestmark = pytest.mark.skipif(not (MODEL / "model.safetensors").exists(), reason="fac-tiny not trained")
OPTIONS = dict(limit=2, max_new_tokens=4, batch_size=2, progress=False)


@pytest.fixture(autouse=True)
def _own_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("FAC_LENS_CACHE", str(tmp_path / "fac-lens-cache"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def _age(path: Path, seconds: float = 60) -> None:
    """Set the file's mtime into the past (older than the cache's racy window)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds * 1e9)))


def _overwrite_middle(path: Path, n: int = 4096) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2)
        old = f.read(n)
        f.seek(size // 2)
        f.write(bytes(b ^ 0x5A for b in old))
    assert path.stat().st_size == size


def test_file_hash_is_the_full_sha256_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "w.bin"
    path.write_bytes(os.urandom(3 << 20))
    _age(path)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    cache = json.loads(fingerprint.hash_cache_path().read_text())
    assert list(cache.values()) == [hashlib.sha256(path.read_bytes()).hexdigest()]
    calls = []
    monkeypatch.setattr(fingerprint, "_full_sha256", lambda p: calls.append(p) or "recomputed")
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest() and not calls  # cached
    monkeypatch.undo()
    monkeypatch.setenv("FAC_LENS_CACHE", str(tmp_path / "fac-lens-cache"))
    _overwrite_middle(path)  # same size, new mtime: hashed again
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_samples_digest_equals_a_hash_by_hand():
    samples = list(load_split(TEST / "test.jsonl"))[:2]
    digest = hashlib.sha256()
    for s in samples:
        fields = {
            "id": s.id,
            "question": s.question,
            "answer": s.answer,
            "kind": s.kind,
            "choices": list(s.choices),
            "source": s.source,
            "meta": s.meta,
            "prompt_text": s.prompt_text,
        }
        text = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        pixels = s.image.tobytes()
        digest.update(len(text).to_bytes(8, "little") + text)
        digest.update(f"RGB:{s.image.width}x{s.image.height}:{len(pixels)}:".encode() + pixels)
    assert samples_digest(samples) == digest.hexdigest()


def _copy_split(root: Path, n: int = 4) -> Path:
    """The first ``n`` test samples in a split folder of their own."""
    (root / "images").mkdir(parents=True)
    lines = (TEST / "test.jsonl").read_text().splitlines()[:n]
    for line in lines:
        image = json.loads(line)["image"]
        shutil.copy(TEST / image, root / image)
    (root / "test.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_another_data_root_with_the_same_sample_ids_is_another_run(tmp_path):
    """(a): the same ids, other content: a new run id, generated (not served), and its own ratio map."""
    first_root = _copy_split(tmp_path / "a")
    second_root = _copy_split(tmp_path / "b")
    records = [json.loads(line) for line in (second_root / "test.jsonl").read_text().splitlines()]
    records[0]["answer"] = "purple" if records[0]["answer"] != "purple" else "gray"  # another answer key
    (second_root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    shutil.copy(second_root / records[2]["image"], second_root / records[1]["image"])  # another image
    store = tmp_path / "s.sqlite"
    first = Experiment.open(MODEL, "synthetic", store, data_root=first_root, **OPTIONS)
    second = Experiment.open(MODEL, "synthetic", store, data_root=second_root, **OPTIONS)
    assert [s.id for s in first.samples] == [s.id for s in second.samples]
    assert first.dataset_name == second.dataset_name
    one = first.evaluate(Method.vanilla())
    two = second.evaluate(Method.vanilla())
    assert two["run_id"] != one["run_id"]
    stored = {r["sample_id"]: r for r in second.store.records(two["run_id"])}
    assert stored[records[0]["id"]]["answer"] == records[0]["answer"]  # scored against this copy
    generation = second.store.run(two["run_id"])["generation"]
    assert generation["data_sha256"] == samples_digest(second.samples) != samples_digest(first.samples)

    with ResultStore(tmp_path / "r.sqlite") as ratios_store:
        for exp in (first, second):
            reference_ratios(exp.model, exp.samples, ratios_store, "m", "synthetic", n=2, progress=False)
        names = [a["name"] for a in ratios_store.arrays(kind="ratios_per_sample")]
    digests = sorted(samples_digest(exp.samples)[:16] for exp in (first, second))
    assert sorted(name.split(":")[5] for name in names) == digests


def test_weights_changed_only_in_the_middle_are_another_run(tmp_path):
    """(b): a checkpoint rewritten in place, same size, first and last MiB unchanged."""
    folder = tmp_path / "fac-tiny"
    shutil.copytree(MODEL, folder)
    weights = folder / "model.safetensors"
    assert weights.stat().st_size > 3 << 20
    _age(weights)
    store = tmp_path / "s.sqlite"
    first = Experiment.open(folder, "synthetic", store, **OPTIONS)
    head, tail = weights.read_bytes()[: 1 << 20], weights.read_bytes()[-(1 << 20) :]
    _overwrite_middle(weights)
    assert weights.read_bytes()[: 1 << 20] == head and weights.read_bytes()[-(1 << 20) :] == tail
    second = Experiment.open(folder, "synthetic", store, **OPTIONS)
    assert second.weights != first.weights
    by_hand = hashlib.sha256()
    decisive = (  # fac-tiny's files that decide its outputs; notes, logs, plots and evaluation.json not
        "chat_template.jinja config.json generation_config.json model.safetensors "
        "preprocessor_config.json tokenizer.json tokenizer_config.json"
    )
    for path in (folder / name for name in decisive.split()):
        by_hand.update(f"{path.name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    assert second.weights == by_hand.hexdigest()[:16]
    one = first.evaluate(Method.vanilla())
    two = second.evaluate(Method.vanilla())
    assert two["run_id"] != one["run_id"]
    assert second.store.run(two["run_id"])["generation"]["model_weights"] == second.weights
    assert len(second.store.records(two["run_id"])) == 2  # generated for the new weights


def _fake_hub_snapshot(revision: str) -> None:
    repo = Path(os.environ["HF_HOME"]) / "hub" / "models--org--tiny-vlm"
    (repo / "snapshots" / revision).mkdir(parents=True, exist_ok=True)
    (repo / "snapshots" / revision / "config.json").write_text("{}")
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)


def test_a_hub_id_is_keyed_by_its_snapshot_revision(tmp_path, monkeypatch):
    import fac_lens.loading

    tiny = fl.load(MODEL)
    monkeypatch.setattr(fac_lens.loading, "load", lambda source, **kw: tiny)
    assert model_fingerprint("org/tiny-vlm") is None  # not in the cache
    with pytest.raises(fl.FacLensError, match="cannot tell which weights"):
        Experiment.open("org/tiny-vlm", "synthetic", tmp_path / "s.sqlite", **OPTIONS)
    old, new = "a" * 40, "b" * 40
    _fake_hub_snapshot(old)
    first = Experiment.open("org/tiny-vlm", "synthetic", tmp_path / "s.sqlite", **OPTIONS)
    assert first.weights == old and first.model_name == "org/tiny-vlm"
    one = first.evaluate(Method.vanilla())
    assert first.store.run(one["run_id"])["generation"]["model_weights"] == old
    _fake_hub_snapshot(new)  # refs/main moved to a new commit
    second = Experiment.open("org/tiny-vlm", "synthetic", tmp_path / "s.sqlite", **OPTIONS)
    assert second.weights == new
    assert second.evaluate(Method.vanilla())["run_id"] != one["run_id"]
    repo = Path(os.environ["HF_HOME"]) / "hub" / "models--org--tiny-vlm"
    (repo / "refs" / "main").unlink()
    assert model_fingerprint("org/tiny-vlm") is None  # two snapshots, no ref: which one is unknown
    shutil.rmtree(repo / "snapshots" / old)
    assert model_fingerprint("org/tiny-vlm") == new  # the only snapshot
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert model_fingerprint("org/tiny-vlm") is None  # HF_HUB_CACHE wins over HF_HOME
    assert model_fingerprint("org/tiny-vlm", cache_dir=repo.parent) == new


def _package_copy(tmp_path: Path) -> Path:
    package = Path(fingerprint.__file__).resolve().parents[1]
    copy = tmp_path / "fac_lens"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_code_digest_follows_the_source_that_computes_results(tmp_path):
    """A hand-computed digest of the source; an edit to the method changes it, an edit to a plot
    module does not."""
    copy = _package_copy(tmp_path)
    by_hand = hashlib.sha256()
    for path in sorted(copy.rglob("*.py")):
        relative = path.relative_to(copy).as_posix()
        if relative.startswith(fingerprint.PRESENTATION):
            continue
        content = path.read_bytes()
        by_hand.update(relative.encode() + b"\0" + str(len(content)).encode() + b"\0" + content)
    before = fingerprint.code_digest(copy)
    assert before == by_hand.hexdigest()[:16]
    assert fingerprint.code_digest() == fingerprint.code_digest(Path(fingerprint.__file__).parents[1])
    for drawing in ("plotting/heads.py", "experiments/tables.py", "explorer.py"):
        path = copy / drawing
        if path.exists():
            path.write_text(path.read_text() + "\n# a comment\n")
    assert fingerprint.code_digest(copy) == before
    (copy / "rescale.py").write_text((copy / "rescale.py").read_text() + "\n# a changed method\n")
    assert fingerprint.code_digest(copy) != before


def test_results_of_other_code_are_not_served(tmp_path, monkeypatch):
    """The code digest is part of the run id and of the ratio arrays' names: after a change to the
    code, the same evaluation is another run and is generated again."""
    import fac_lens.experiments.sweeps as sweeps

    store = tmp_path / "s.sqlite"
    first = Experiment.open(MODEL, "synthetic", store, **OPTIONS)
    one = first.evaluate(Method.vanilla())
    again = first.evaluate(Method.vanilla())
    assert again["run_id"] == one["run_id"]  # the same code: served
    assert first.store.run(one["run_id"])["generation"]["code_sha256"] == fingerprint.code_digest()
    monkeypatch.setattr(sweeps, "code_digest", lambda: "0" * 16)
    two = first.evaluate(Method.vanilla())
    assert two["run_id"] != one["run_id"]
    assert first.store.run(two["run_id"])["generation"]["code_sha256"] == "0" * 16
    assert len(first.store.records(two["run_id"])) == 2  # generated, not copied
    with ResultStore(tmp_path / "r.sqlite") as ratios_store:
        reference_ratios(first.model, first.samples, ratios_store, "m", "synthetic", n=2, progress=False)
        monkeypatch.setattr(sweeps, "code_digest", lambda: "1" * 16)
        reference_ratios(first.model, first.samples, ratios_store, "m", "synthetic", n=2, progress=False)
        names = sorted(a["name"].split(":")[6] for a in ratios_store.arrays(kind="ratios_per_sample"))
    assert names == ["0" * 16, "1" * 16]
