"""Benchmark loaders on tiny invented benchmarks in their original layouts (MMStar: the hub parquet):
fields, errors naming file and record, corrupt images, limits. Other layouts: test_benchmark_layouts.py."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import datasets
import pytest
from PIL import Image

from fac_lens.data.loaders import (
    BENCHMARKS,
    ImageSkippedWarning,
    LoadReport,
    benchmark_info,
    load_benchmark,
    load_clevr,
    load_hallusionbench,
    load_mathvision_mini,
    load_mathvista_mini,
    load_mmstar,
    load_seed_bench,
    split_options,
)
from fac_lens.errors import FacLensError

from .benchmark_fixtures import MMSTAR_FEATURES, struct

RED, GREEN, BLUE, GRAY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)


def png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (4, 3), mode: str = "RGB") -> None:
    """A small one-color PNG (also under a .jpg name: lossless); "L" / "RGBA" check the RGB conversion."""
    path.parent.mkdir(parents=True, exist_ok=True)
    value = color[0] if mode == "L" else (*color, 255) if mode == "RGBA" else color
    Image.new(mode, size, value).save(path, format="PNG")


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Fake benchmarks. Each builder writes 3 records; FIRST_IMAGE names the first record's image.
# ---------------------------------------------------------------------------------------------


def make_mathvista(root: Path) -> None:
    records = {
        "1": {
            "pid": "1",
            "question": "Which shape has the largest area?",
            "image": "images/1.jpg",
            "choices": ["circle", "square", "triangle"],
            "answer": "square",
            "question_type": "multi_choice",
            "answer_type": "text",
            "unit": None,
            "precision": None,
            "metadata": {"task": "figure question answering", "skills": ["geometry reasoning"]},
        },
        "2": {
            "pid": "2",
            "question": "How many bars are there?",
            "image": "images/2.png",
            "choices": None,
            "answer": "4",
            "question_type": "free_form",
            "answer_type": "integer",
            "metadata": {"task": "textbook question answering", "skills": ["arithmetic reasoning"]},
        },
        "3": {
            "pid": "3",
            "question": "What is the slope?",
            "image": "images/3.png",
            "answer": "1.5",
            "question_type": "free_form",
            "answer_type": "float",
            "precision": 1.0,
            "metadata": {
                "task": "math word problem",
                "skills": ["algebraic reasoning", "statistical reasoning"],
            },
        },
    }
    write_json(root / "testmini.json", records)
    png(root / "images/1.jpg", RED)
    png(root / "images/2.png", GREEN, mode="L")
    png(root / "images/3.png", BLUE, mode="RGBA")


def make_mathvision(root: Path) -> None:
    records = [
        {
            "id": "1",
            "question": "Which figure comes next?\n<image1>",
            "options": ["A", "B", "C", "D", "E"],
            "answer": "C",
            "image": "images/1.jpg",
            "subject": "logic",
            "level": 2,
            "solution": None,
        },
        {
            "id": "2",
            "question": "How many triangles?",
            "options": [],
            "answer": "7",
            "image": "images/2.jpg",
            "subject": "counting",
            "level": 1,
        },
        {
            "id": "3",
            "question": "Which is largest?",
            "options": ["1/2", "2/3", "3/4"],
            "answer": "c",
            "image": "images/3.jpg",
            "subject": "arithmetic",
            "level": 3,
        },
    ]
    write_jsonl(root / "testmini.jsonl", records)
    for i, color in enumerate((RED, GREEN, BLUE), start=1):
        png(root / f"images/{i}.jpg", color)


def hallusion_record(
    category: str, sub: str, set_id: str, fig: str, qid: str, gt: str, visual: str = "1"
) -> dict:
    filename = f"./hallusion_bench/{category}/{sub}/{set_id}_{fig}.png" if visual == "1" else None
    return {
        "category": category,
        "subcategory": sub,
        "visual_input": visual,
        "set_id": set_id,
        "figure_id": fig,
        "sample_note": "note",
        "question_id": qid,
        "question": f"Is statement {set_id}-{fig}-{qid} true?",
        "gt_answer_details": "details",
        "gt_answer": gt,
        "filename": filename,
    }


def make_hallusion(root: Path) -> None:
    records = [
        hallusion_record("VD", "illusion", "0", "0", "0", "1"),
        hallusion_record("VS", "chart", "1", "1", "0", "0"),
        hallusion_record("VS", "map", "2", "0", "1", "0", visual="0"),
    ]
    write_json(root / "HallusionBench.json", records)
    png(root / "hallusion_bench/VD/illusion/0_0.png", RED)
    png(root / "hallusion_bench/VS/chart/1_1.png", GREEN)


def make_clevr(root: Path) -> None:
    exist_program = [
        {"function": "scene", "inputs": [], "value_inputs": []},
        {"function": "filter_color", "inputs": [0], "value_inputs": ["red"]},
        {"function": "exist", "inputs": [1], "value_inputs": []},
    ]
    questions = [
        {
            "image_index": 0,
            "image_filename": "CLEVR_val_000000.png",
            "question_index": 10,
            "question_family_index": 39,
            "split": "val",
            "answer": "yes",
            "question": "Is there a red thing?",
            "program": exist_program,
        },
        {
            "image_index": 0,
            "image_filename": "CLEVR_val_000000.png",
            "question_index": 11,
            "question_family_index": 5,
            "answer": "2",
            "question": "How many cubes are there?",
        },
        {
            "image_index": 1,
            "image_filename": "CLEVR_val_000001.png",
            "question_index": 12,
            "question_family_index": 80,
            "answer": "no",
            "question": "Does the cube have the same color as the sphere?",
        },
    ]
    write_json(
        root / "questions/CLEVR_val_questions.json", {"info": {"split": "val"}, "questions": questions}
    )
    png(root / "images/val/CLEVR_val_000000.png", GRAY)
    png(root / "images/val/CLEVR_val_000001.png", BLUE)


def make_mmstar(root: Path) -> None:
    """MMStar as released on the hub: one mmstar.parquet, options inside the question text."""
    questions = [
        "Which option describe the object relationship in the image correctly?\n"
        "Options: A: The suitcase is on the book., B: The suitcase is beneath the cat., "
        "C: The suitcase is beneath the bed., D: The suitcase is beneath the book.",
        "What is the color of the car? Options: A: red, dark, B: blue",
        "Compute 2+2.\nA: 3\nB: 4\nC: 5",  # no "Options:" marker
    ]
    meta = [
        ("coarse perception", "image scene and topic", "MMBench"),
        ("fine-grained perception", "attribute recognition", "SEEDBench"),
        ("math", "numeric commonsense", "MathVista"),
    ]
    rows = [
        {
            "index": i,
            "question": q,
            "image": struct(color),
            "answer": answer,
            "category": c,
            "l2_category": l2,
            "meta_info": {"source": src, "split": "val", "image_path": f"images/{i}.jpg"},
        }
        for i, (q, color, answer, (c, l2, src)) in enumerate(
            zip(questions, (RED, GREEN, BLUE), "ABB", meta, strict=True)
        )
    ]
    datasets.Dataset.from_list(rows, features=MMSTAR_FEATURES).to_parquet(str(root / "mmstar.parquet"))


def seed_record(qid: str, answer: str, type_id: int, data_id: str, data_type: str = "image") -> dict:
    return {
        "question_id": qid,
        "question": f"Question {qid}?",
        "choice_a": "One",
        "choice_b": "Two",
        "choice_c": "Three",
        "choice_d": "Four",
        "answer": answer,
        "question_type_id": type_id,
        "data_type": data_type,
        "data_id": data_id,
    }


def make_seed(root: Path) -> None:
    data = {
        "question_type": {"Scene Understanding": 1, "Instance Counting": 5, "Action Recognition": 12},
        "questions": [
            seed_record("101669", "A", 5, "1454426_2591111986.jpg"),
            seed_record("101670", "D", 1, "555_777"),
            seed_record("v1", "B", 12, "video/abc.mp4", data_type="video"),
            seed_record("101671", "C", 9, "999_1.png"),
        ],
    }
    write_json(root / "SEED-Bench.json", data)
    png(root / "images/1454426_2591111986.jpg", RED)
    png(root / "images/555_777.jpg", GREEN)
    png(root / "images/999_1.png", BLUE)


BUILDERS = {
    "mathvista-mini": make_mathvista,
    "mathvision-mini": make_mathvision,
    "hallusionbench": make_hallusion,
    "clevr": make_clevr,
    "mmstar": make_mmstar,
    "seed-bench": make_seed,
}
FIRST_IMAGE = {
    "mathvista-mini": "images/1.jpg",
    "mathvision-mini": "images/1.jpg",
    "hallusionbench": "hallusion_bench/VD/illusion/0_0.png",
    "clevr": "images/val/CLEVR_val_000000.png",
    "seed-bench": "images/1454426_2591111986.jpg",
}
ANNOTATION = {
    "mathvista-mini": "testmini.json",
    "mathvision-mini": "testmini.jsonl",
    "hallusionbench": "HallusionBench.json",
    "clevr": "questions/CLEVR_val_questions.json",
    "mmstar": "MMStar.tsv",
    "seed-bench": "SEED-Bench.json",
}
SAMPLE_COUNT = {name: 3 for name in BUILDERS}
# The CLEVR first image is shared by two questions; SEED-Bench has 3 image questions + 1 video.
SKIPPED_BY_FIRST_IMAGE = {name: 2 if name == "clevr" else 1 for name in FIRST_IMAGE}


def pixel(sample) -> tuple[int, int, int]:
    assert sample.image.mode == "RGB"
    return sample.image.getpixel((0, 0))


# ---------------------------------------------------------------------------------------------
# Each loader: exact Sample fields.
# ---------------------------------------------------------------------------------------------


def test_mathvista_fields(tmp_path):
    make_mathvista(tmp_path)
    samples = list(load_mathvista_mini(tmp_path))
    assert [s.id for s in samples] == ["1", "2", "3"]
    first, second, third = samples
    assert first.question == "Which shape has the largest area?"
    assert first.choices == ("circle", "square", "triangle")
    assert first.answer == "B"  # the option text "square" becomes its letter
    assert first.kind == "multi_choice"
    assert first.source == "MathVista-mini"
    assert first.meta["skills"] == ["geometry reasoning"]
    assert first.meta["task"] == "figure question answering"
    assert first.image.size == (4, 3) and pixel(first) == RED
    assert (second.answer, second.kind, second.choices) == ("4", "free_form", ())
    assert pixel(second) == (0, 0, 0)  # grayscale 0 -> RGB black
    assert (third.answer, third.meta["precision"], third.meta["answer_type"]) == ("1.5", 1.0, "float")
    assert pixel(third) == BLUE  # RGBA converted to RGB


def test_mathvista_accepts_jsonl_list(tmp_path):
    make_mathvista(tmp_path)
    records = list(json.loads((tmp_path / "testmini.json").read_text()).values())
    (tmp_path / "testmini.json").unlink()
    write_jsonl(tmp_path / "testmini.jsonl", records)
    assert [(s.id, s.answer) for s in load_mathvista_mini(tmp_path)] == [("1", "B"), ("2", "4"), ("3", "1.5")]


def test_mathvision_fields(tmp_path):
    make_mathvision(tmp_path)
    first, second, third = load_mathvision_mini(tmp_path)
    assert first.id == "1"
    assert first.question == "Which figure comes next?\n<image1>"
    assert first.choices == ("A", "B", "C", "D", "E")
    assert (first.answer, first.kind, first.meta["level"]) == ("C", "logic", 2)
    assert first.source == "MathVision-mini"
    assert pixel(first) == RED
    assert (second.choices, second.answer, second.kind) == ((), "7", "counting")
    assert (third.choices, third.answer) == (("1/2", "2/3", "3/4"), "C")  # "c" upper-cased


def test_hallusionbench_fields(tmp_path):
    make_hallusion(tmp_path)
    first, second, third = load_hallusionbench(tmp_path)
    assert first.id == "VD_illusion_0_0_0"
    assert first.question == "Is statement 0-0-0 true?"
    assert (first.answer, first.kind, first.choices, first.source) == ("yes", "VD", (), "HallusionBench")
    assert first.meta["subcategory"] == "illusion"
    assert pixel(first) == RED
    assert (second.id, second.answer, second.kind) == ("VS_chart_1_1_0", "no", "VS")
    assert pixel(second) == GREEN
    assert (third.id, third.answer, third.image, third.meta["visual_input"]) == (
        "VS_map_2_0_1",
        "no",
        None,
        "0",
    )


def test_clevr_fields_and_kinds(tmp_path):
    make_clevr(tmp_path)
    first, second, third = load_clevr(tmp_path)
    assert (first.id, first.question, first.answer) == ("10", "Is there a red thing?", "yes")
    assert first.kind == "exist"  # from the program's last function
    assert (first.source, first.choices, first.meta["question_family_index"]) == ("CLEVR", (), 39)
    assert pixel(first) == GRAY
    assert (second.id, second.answer, second.kind) == ("11", "2", "count")  # heuristic: digit answer
    assert (third.id, third.answer, third.kind) == ("12", "no", "compare_attribute")  # "same color"
    assert pixel(third) == BLUE


@pytest.mark.parametrize(
    "question,answer,program_last,kind",
    [
        ("How many spheres?", "3", None, "count"),
        ("What color is the cube?", "red", None, "query_attribute"),
        ("Are there more cubes than spheres?", "no", None, "compare_integer"),
        ("Is the number of cubes greater than the number of balls?", "yes", None, "compare_integer"),
        ("Are there any other things that are the same size as the cube?", "yes", None, "exist"),
        ("Is the cube the same size as the ball?", "no", None, "compare_attribute"),
        ("Anything?", "yes", "equal_integer", "compare_integer"),
        ("Anything?", "yes", "equal_material", "compare_attribute"),
        ("Anything?", "metal", "query_material", "query_attribute"),
        ("Anything?", "4", "count", "count"),
    ],
)
def test_clevr_kind_rules(tmp_path, question, answer, program_last, kind):
    record = {"image_filename": "a.png", "question": question, "answer": answer}
    if program_last:
        record["program"] = [{"type": "scene"}, {"type": program_last}]  # the older "type" key
    write_json(tmp_path / "questions/CLEVR_val_questions.json", {"questions": [record]})
    png(tmp_path / "images/val/a.png", RED)
    (sample,) = load_clevr(tmp_path)
    assert sample.kind == kind
    assert sample.id == "0"  # no question_index: the record position


def test_mmstar_fields(tmp_path):
    make_mmstar(tmp_path)
    first, second, third = load_mmstar(tmp_path)
    assert first.id == "0"
    assert first.question == "Which option describe the object relationship in the image correctly?"
    assert first.choices == (
        "The suitcase is on the book.",
        "The suitcase is beneath the cat.",
        "The suitcase is beneath the bed.",
        "The suitcase is beneath the book.",
    )
    assert (first.answer, first.kind, first.source) == ("A", "coarse perception", "MMStar")
    assert (first.meta["l2_category"], first.meta["dataset"]) == ("image scene and topic", "MMBench")
    assert pixel(first) == RED
    assert (second.question, second.choices, second.answer) == (
        "What is the color of the car?",
        ("red, dark", "blue"),
        "B",
    )
    assert pixel(second) == GREEN
    assert (third.question, third.choices, third.kind) == ("Compute 2+2.", ("3", "4", "5"), "math")
    assert pixel(third) == BLUE


def test_split_options_without_options():
    assert split_options("What is shown here?") is None
    assert split_options("Pick. A: x B: y") == ("Pick.", ("x", "y"))


def test_seed_bench_fields(tmp_path):
    make_seed(tmp_path)
    report = LoadReport()
    first, second, third = load_seed_bench(tmp_path, report=report)
    assert (first.id, first.question, first.answer) == ("101669", "Question 101669?", "A")
    assert first.choices == ("One", "Two", "Three", "Four")
    assert (first.kind, first.source, first.meta["data_id"]) == (
        "Instance Counting",  # the file's own mapping
        "SEED-Bench",
        "1454426_2591111986.jpg",
    )
    assert pixel(first) == RED
    assert (second.id, second.answer, second.kind) == ("101670", "D", "Scene Understanding")
    assert pixel(second) == GREEN  # data_id without extension: found as .jpg
    assert (third.id, third.kind) == (
        "101671",
        "Text Understanding",
    )  # not in the file's mapping: README's table
    assert (report.yielded, report.skipped, report.excluded) == (3, 0, 1)  # the video question


# ---------------------------------------------------------------------------------------------
# Every loader: dispatcher, limit, errors, corrupt images.
# ---------------------------------------------------------------------------------------------


def test_benchmarks_table():
    assert list(BENCHMARKS) == [
        "mathvista-mini",
        "mathvision-mini",
        "hallusionbench",
        "clevr",
        "mmstar",
        "seed-bench",
        "pope",
    ]
    for name, annotation in ANNOTATION.items():  # each benchmark names its original file or its TSV
        spec = BENCHMARKS[name]
        assert annotation in [f.path.format(split=spec.splits[0]) for f in spec.original] + list(spec.tsv)


@pytest.mark.parametrize(
    "alias,name",
    [
        ("MathVista-mini", "mathvista-mini"),
        ("mathvista", "mathvista-mini"),
        ("MATHVISION_MINI", "mathvision-mini"),
        ("HallusionBench", "hallusionbench"),
        ("CLEVR", "clevr"),
        ("MMStar", "mmstar"),
        ("SEED-Bench", "seed-bench"),
        (" seed bench ", "seed-bench"),
    ],
)
def test_name_aliases(alias, name):
    assert benchmark_info(alias).name == name


def test_unknown_name():
    with pytest.raises(FacLensError, match="unknown benchmark 'vqav2'.*MathVista-mini"):
        load_benchmark("vqav2", ".")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_load_benchmark_dispatch_and_limit(tmp_path, name):
    BUILDERS[name](tmp_path)
    samples = list(load_benchmark(BENCHMARKS[name].display_name, tmp_path))
    assert len(samples) == SAMPLE_COUNT[name]
    assert {s.source for s in samples} == {BENCHMARKS[name].display_name}
    limited = list(load_benchmark(name, tmp_path, limit=2))
    assert [s.id for s in limited] == [s.id for s in samples[:2]]
    assert list(load_benchmark(name, tmp_path, limit=0)) == []


def test_bad_limit(tmp_path):
    make_clevr(tmp_path)
    with pytest.raises(FacLensError, match="limit"):
        load_clevr(tmp_path, limit=-1)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_missing_folder_names_path_and_every_layout(tmp_path, name):
    with pytest.raises(FacLensError) as info:
        load_benchmark(name, tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message and ANNOTATION[name] in message
    assert "Layouts looked for" in message and "fac_lens never downloads" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacLensError, match="no layout recognised in .*empty"):
        load_benchmark(name, tmp_path / "empty")


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    make_mathvision(tmp_path)
    path = tmp_path / "testmini.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", lines[2]]) + "\n")
    samples = load_mathvision_mini(tmp_path)
    assert next(samples).id == "1"  # records before the bad line are yielded
    with pytest.raises(FacLensError, match=re.escape(f"{path}: line 2: invalid JSON")):
        next(samples)


def test_missing_field_in_jsonl_names_line(tmp_path):
    make_mathvision(tmp_path)
    path = tmp_path / "testmini.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    del records[2]["answer"]
    write_jsonl(path, records)
    with pytest.raises(FacLensError, match=re.escape(f"{path}: line 3: missing required field(s) 'answer'")):
        list(load_mathvision_mini(tmp_path))


def test_missing_field_in_json_array_names_record(tmp_path):
    make_hallusion(tmp_path)
    path = tmp_path / "HallusionBench.json"
    records = json.loads(path.read_text())
    del records[1]["question"]
    write_json(path, records)
    with pytest.raises(
        FacLensError, match=re.escape(f"{path}: record 1: missing required field(s) 'question'")
    ):
        list(load_hallusionbench(tmp_path))


def test_bad_json_file_names_line(tmp_path):
    path = tmp_path / "SEED-Bench.json"
    path.write_text('{"questions": [\n{"question_id": 1,,}\n]}')
    with pytest.raises(FacLensError, match=re.escape(f"{path}: line 2: invalid JSON")):
        list(load_seed_bench(tmp_path))


@pytest.mark.parametrize(
    "builder,loader,path,mutate,message",
    [
        (
            make_mathvista,
            load_mathvista_mini,
            "testmini.json",
            ("1", "answer", "hexagon"),
            "record '1': answer 'hexagon'",
        ),
        (make_mathvision, load_mathvision_mini, "testmini.jsonl", (0, "answer", "F"), "line 1: answer 'F'"),
        (
            make_hallusion,
            load_hallusionbench,
            "HallusionBench.json",
            (0, "gt_answer", "2"),
            "record 0: gt_answer '2'",
        ),
    ],
)
def test_answer_that_does_not_fit(tmp_path, builder, loader, path, mutate, message):
    builder(tmp_path)
    file = tmp_path / path
    key, field, value = mutate
    if file.suffix == ".jsonl":
        records = [json.loads(line) for line in file.read_text().splitlines()]
        records[key][field] = value
        write_jsonl(file, records)
    else:
        records = json.loads(file.read_text())
        records[key][field] = value
        write_json(file, records)
    with pytest.raises(FacLensError, match=re.escape(f"{file}: {message}")):
        list(loader(tmp_path))


@pytest.mark.parametrize("name", list(FIRST_IMAGE))  # MMStar's images are inside its parquet
def test_corrupt_image_warned_skipped_and_counted(tmp_path, name):
    BUILDERS[name](tmp_path)
    bad = tmp_path / FIRST_IMAGE[name]
    bad.write_bytes(b"\x89PNG garbage, not an image")
    report = LoadReport()
    skipped, total = SKIPPED_BY_FIRST_IMAGE[name], SAMPLE_COUNT[name]
    with pytest.warns(ImageSkippedWarning) as record:
        samples = list(load_benchmark(name, tmp_path, report=report))
    messages = [str(w.message) for w in record]
    assert sum(str(bad) in m and "could not be opened or decoded" in m for m in messages) == skipped
    assert any(f"skipped {skipped} of {total} samples: images could not be decoded" in m for m in messages)
    assert len(samples) == total - skipped
    assert (report.yielded, report.skipped, report.skipped_files) == (
        total - skipped,
        skipped,
        [str(bad)] * skipped,
    )


def test_missing_image_file_is_skipped_too(tmp_path):
    make_mathvision(tmp_path)
    (tmp_path / "images/2.jpg").unlink()
    report = LoadReport()
    with pytest.warns(ImageSkippedWarning) as record:
        ids = [s.id for s in load_mathvision_mini(tmp_path, report=report)]
    assert ids == ["1", "3"]
    assert "FileNotFoundError" in str(record[0].message)
    assert "MathVision-mini: skipped 1 of 3 samples" in str(record[-1].message)
    assert report.skipped_files == [str(tmp_path / "images/2.jpg")]


def test_images_open_lazily(tmp_path):
    make_mathvision(tmp_path)
    (tmp_path / "images/3.jpg").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would fail the test
        samples = list(load_mathvision_mini(tmp_path, limit=2))
    assert [s.id for s in samples] == ["1", "2"]
    iterator = load_mathvision_mini(tmp_path)
    (tmp_path / "images/2.jpg").unlink()  # removed after the call, before iteration reaches it
    with pytest.warns(ImageSkippedWarning) as record:
        assert [s.id for s in iterator] == ["1"]
    assert len(record) == 3 and "skipped 2 of 3 samples" in str(record[-1].message)
