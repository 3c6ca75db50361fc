"""Every benchmark read from every layout it is released in, on invented records with the real
schemas (tests/data/benchmark_fixtures.py): hub parquet shards, save_to_disk, the HF hub cache
(offline), the original JSON + images, VLMEvalKit's TSV. POPE's metrics against hand counts."""

from __future__ import annotations

import re
import shutil

import pytest

from fac_lens.data import load_benchmark
from fac_lens.data.benchmarks import BENCHMARKS, LoadReport
from fac_lens.data.benchmarks.pope import pope_report, pope_scores
from fac_lens.data.datasets import load_samples
from fac_lens.errors import FacLensError

from .benchmark_fixtures import BENCH, EXPECTED, GREEN, RED, build, layouts, png, write_jsonl, write_tsv

CASES = [(name, layout) for name in BENCH for layout in layouts(name)]
LAYOUT_NAME = {"tsv": "vlmevalkit-tsv", "hub-cache": "hub-cache:parquet"}


def pixel(sample):
    return None if sample.image is None else sample.image.getpixel((0, 0))


def summary(samples):
    return sorted(((s.answer, s.choices, s.kind, pixel(s)) for s in samples), key=repr)


@pytest.mark.parametrize("name, layout", CASES, ids=[f"{n}-{lay}" for n, lay in CASES])
def test_every_benchmark_reads_every_released_layout(tmp_path, name, layout):
    source, kwargs = build(name, layout, tmp_path)
    report = LoadReport()
    load = load_benchmark(name, source, report=report, **kwargs)
    assert load.layout == LAYOUT_NAME.get(layout, layout) == report.layout
    samples = list(load)
    expected = EXPECTED[name]
    if layout == "tsv":  # VLMEvalKit's TSVs hold image questions only
        expected = [e for e in expected if e[3] is not None]
    assert summary(samples) == sorted(expected, key=repr)
    assert {s.source for s in samples} == {BENCHMARKS[name].display_name}
    assert len({s.id for s in samples}) == len(samples)
    assert all(s.image is None or s.image.mode == "RGB" for s in samples)
    assert (report.yielded, report.skipped) == (len(samples), 0)


def test_each_module_declares_what_the_tests_read():
    for name, spec in BENCHMARKS.items():
        tested = {LAYOUT_NAME.get(layout, layout).split(":")[0] for layout in layouts(name)}
        assert tested == set(spec.layouts), name
        assert spec.metric and spec.prompt and spec.answer_type and spec.splits
    assert (
        "vlmevalkit-tsv" not in BENCHMARKS["clevr"].layouts and "original" not in BENCHMARKS["mmstar"].layouts
    )


@pytest.mark.parametrize("layout", ["parquet", "original", "tsv"])
def test_mathvista_is_asked_its_query_and_keeps_unit_and_precision(tmp_path, layout):
    source, _ = build("mathvista-mini", layout, tmp_path)
    choice, count, length = load_benchmark("mathvista-mini", source)
    assert [s.id for s in (choice, count, length)] == ["1", "2", "3"]
    assert length.prompt().startswith("Hint: Please answer the question requiring a floating-point number")
    assert length.prompt().endswith("How long is the bar (in cm)?")
    assert (length.meta["unit"], float(length.meta["precision"]), length.meta["answer_type"]) == (
        "cm",
        1.0,
        "float",
    )
    assert choice.answer == "B" and "(B) square" in choice.prompt()
    assert count.meta["task"] == "figure question answering"


def test_hallusionbench_item_without_image_in_each_layout(tmp_path):
    for layout in ("parquet", "original"):
        source, _ = build("hallusionbench", layout, tmp_path / layout)
        by_id = {s.id: s for s in load_benchmark("hallusionbench", source)}
        assert by_id["VS_chart_0_0_1"].image is None and by_id["VS_chart_0_0_1"].answer == "no"
        assert pixel(by_id["VD_illusion_0_0_0"]) == RED
    source, _ = build("hallusionbench", "parquet", tmp_path / "split")
    assert [s.id for s in load_benchmark("hallusionbench", source, split="non_image")] == ["VS_chart_0_0_1"]
    source, _ = build("hallusionbench", "tsv", tmp_path / "tsv")
    samples = list(load_benchmark("hallusionbench", source))
    assert [(s.id, s.meta["set_id"], s.meta["figure_id"], s.meta["question_id"]) for s in samples] == [
        ("HB_VD_0_0_0", "0", "0", "0"),
        ("HB_VS_1_1_0", "1", "1", "0"),
    ]


def test_seed_bench_ids_without_extension_video_excluded_and_type_names(tmp_path):
    source, _ = build("seed-bench", "original", tmp_path)
    report = LoadReport()
    samples = list(load_benchmark("seed-bench", source, report=report))
    assert [(s.id, s.kind, pixel(s)) for s in samples] == [
        ("101669", "Instances Counting", RED),
        ("101670", "Scene Understanding", GREEN),  # data_id "2000000_1": found as .jpg
        ("101671", "Text Understanding", (0, 0, 255)),  # not in the file's mapping: SEED-Bench's table
    ]
    assert report.excluded == 1  # the video question
    source, _ = build("seed-bench", "parquet", tmp_path / "hf")
    report = LoadReport()
    assert len(list(load_benchmark("seed-bench", source, report=report))) == 3 and report.excluded == 1


def test_mmstar_options_inside_the_question_text(tmp_path):
    source, _ = build("mmstar", "parquet", tmp_path)
    first = next(load_benchmark("mmstar", source))
    assert first.question == "Which option describes the image?"
    assert first.choices == (
        "The cat is on the mat, asleep.",
        "The cat is under the mat.",
    )  # inner comma kept
    assert first.prompt().splitlines()[1:3] == [
        "A. The cat is on the mat, asleep.",
        "B. The cat is under the mat.",
    ]


@pytest.mark.parametrize("layout", ["parquet", "save_to_disk", "original", "tsv"])
@pytest.mark.parametrize("variant", ["random", "popular", "adversarial"])
def test_pope_variant_selects_its_probes(tmp_path, layout, variant):
    source, _ = build("pope", layout, tmp_path)
    report = LoadReport()
    samples = list(load_benchmark("pope", source, split=variant, report=report))
    assert [(s.kind, s.answer) for s in samples] == [(variant, "yes"), (variant, "no")]
    assert [pixel(s) for s in samples] == [RED, GREEN]  # TSV: the second uses of an image name its row
    assert report.excluded == (0 if layout == "original" else 4)
    assert [s.id for s in load_benchmark(f"pope-{variant}", source)] == [s.id for s in samples]


def test_pope_scores_match_hand_counts():
    references = ["yes", "yes", "yes", "yes", "no", "no", "no", "no", "no", "no"]
    predictions = ["yes", "Yes", "no", None, "yes", "no", "no", "no", "yes", "no"]
    # by hand: TP = 2 (items 0, 1); predicted yes = 4 (0, 1, 4, 8); reference yes = 4;
    # correct = 2 yes + 4 no (5, 6, 7, 9) = 6 of 10; item 3 (no answer) is a miss.
    scores = pope_scores(predictions, references)
    assert scores["accuracy"] == pytest.approx(6 / 10)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(2 * 0.5 * 0.5 / (0.5 + 0.5))
    assert scores["yes_ratio"] == pytest.approx(4 / 10)
    assert scores["n"] == 10
    never_yes = pope_scores(["no", "no"], ["yes", "no"])
    assert (never_yes["precision"], never_yes["recall"], never_yes["f1"], never_yes["accuracy"]) == (
        0.0,
        0.0,
        0.0,
        0.5,
    )


def test_pope_report_per_variant():
    variants = ["random", "random", "adversarial", "adversarial"]
    report = pope_report(variants, ["yes", "no", "yes", "yes"], ["yes", "no", "no", "yes"])
    assert report["random"]["accuracy"] == 1.0 and report["random"]["yes_ratio"] == 0.5
    assert (
        report["adversarial"]["precision"] == pytest.approx(1 / 2) and report["adversarial"]["recall"] == 1.0
    )
    assert report["all"]["accuracy"] == pytest.approx(3 / 4) and "popular" not in report
    with pytest.raises(FacLensError, match="yes/no"):
        pope_scores(["yes"], ["maybe"])


def test_unrecognised_folder_lists_every_layout_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(FacLensError) as info:
        load_benchmark("seed-bench", tmp_path)
    message = str(info.value)
    assert f"no layout recognised in {tmp_path}" in message
    for needle in (
        "hub-cache",
        "lmms-lab/SEED-Bench",
        "save_to_disk",
        "parquet",
        "SEED-Bench.json",
        "SEEDBench_IMG.tsv",
    ):
        assert needle in message
    with pytest.raises(FacLensError, match="does not exist and is not a hub id"):
        load_benchmark("clevr", tmp_path / "nowhere")


def test_hub_id_missing_from_the_cache_is_named(tmp_path):
    with pytest.raises(
        FacLensError, match=r"AI4Math/MathVista is not in the local Hugging Face cache.*hf download"
    ):
        load_benchmark("mathvista-mini", "AI4Math/MathVista", cache_dir=str(tmp_path))


def test_parquet_split_not_found_names_the_splits_there(tmp_path):
    source, _ = build("mathvista-mini", "parquet", tmp_path)
    data = tmp_path / "repo/data"
    shard = data / "testmini-00000-of-00001.parquet"
    shutil.copy(shard, data / "test-00000-of-00001.parquet")
    shard.rename(data / "dev-00000-of-00001.parquet")
    with pytest.raises(
        FacLensError, match=re.escape("no parquet shard of split testmini") + ".*'dev', 'test'"
    ):
        load_benchmark("mathvista-mini", source)
    assert len(list(load_benchmark("mathvista-mini", source, split="test"))) == 3


def test_pope_full_config_variant_folders(tmp_path):
    """lmms-lab/POPE's ``Full`` config: one folder of shards per variant, read with its variant."""
    from datasets import Dataset

    from .benchmark_fixtures import POPE_FEATURES, pope_hf

    rows = pope_hf()["test"]
    for variant in ("adversarial", "popular", "random"):
        part = [{**r, "category": None} for r in rows if r["category"] == variant]  # the folder names it
        (tmp_path / "Full" / variant).mkdir(parents=True)
        Dataset.from_list(part, features=POPE_FEATURES).to_parquet(
            str(tmp_path / "Full" / variant / "0000.parquet")
        )
    load = load_benchmark("pope", tmp_path, split="popular")
    assert "variant folders popular" in load.description
    assert [(s.kind, s.answer, pixel(s)) for s in load] == [("popular", "yes", RED), ("popular", "no", GREEN)]
    assert len(list(load_benchmark("pope", tmp_path))) == 6


def test_a_single_file_of_each_kind_is_read(tmp_path):
    build("mmstar", "parquet", tmp_path)
    assert load_benchmark("mmstar", tmp_path / "repo/mmstar.parquet").layout == "parquet"
    build("mmstar", "tsv", tmp_path)
    assert load_benchmark("mmstar", tmp_path / "vlmeval/MMStar.tsv").layout == "vlmevalkit-tsv"
    build("clevr", "original", tmp_path)
    file = tmp_path / "orig/questions/CLEVR_val_questions.json"
    assert [s.answer for s in load_benchmark("clevr", file)] == ["3", "yes", "cube"]


def test_limit_and_lazy_images(tmp_path):
    source, _ = build("mathvision-mini", "original", tmp_path)
    (tmp_path / "orig/images/3.jpg").write_bytes(b"not an image")
    assert [s.id for s in load_benchmark("mathvision-mini", source, limit=2)] == ["1", "2"]  # 3 never opened
    assert list(load_benchmark("mathvision-mini", source, limit=0)) == []
    with pytest.raises(FacLensError, match="limit"):
        load_benchmark("mathvision-mini", source, limit=-1)


def test_corrupt_embedded_image_is_warned_and_skipped(tmp_path):
    from fac_lens.data.benchmarks import ImageSkippedWarning

    rows = [
        {"index": 0, "image": "bm90IGFuIGltYWdl" * 8, "question": "Q?", "answer": "Yes", "category": "random"}
    ]
    write_tsv(tmp_path / "POPE.tsv", rows)
    report = LoadReport()
    with pytest.warns(ImageSkippedWarning) as record:
        assert list(load_benchmark("pope", tmp_path, report=report)) == []
    assert "could not be opened or decoded" in str(record[0].message)
    assert "POPE: skipped 1 of 1 samples" in str(record[-1].message)
    assert report.skipped == 1 and "row 0" in report.skipped_files[0]


def test_mmstar_tsv_record_without_options_is_named(tmp_path):
    row = {"index": 5, "question": "No options here", "answer": "A", "category": "x", "image": ""}
    write_tsv(tmp_path / "MMStar.tsv", [row])
    with pytest.raises(
        FacLensError, match=re.escape("MMStar.tsv: row 0 (index 5): no options 'A: ..., B: ...'")
    ):
        list(load_benchmark("mmstar", tmp_path))


def test_load_samples_reads_any_layout_and_pope(tmp_path):
    source, kwargs = build("pope", "original", tmp_path)
    samples = load_samples("pope", source)
    assert len(samples) == 6 and {s.kind for s in samples} == {"random", "popular", "adversarial"}
    assert [s.kind for s in load_samples("pope-popular", source)] == ["popular", "popular"]
    jsonl = tmp_path / "pope-one" / "coco_pope_random.json"
    write_jsonl(jsonl, [{"question_id": 7, "image": "x.jpg", "text": "Is there a cat?", "label": "no"}])
    png(jsonl.parent / "images/x.jpg", RED)
    (only,) = load_samples("pope", jsonl.parent)
    assert (only.id, only.answer, pixel(only)) == ("random-7", "no", RED)
