"""Tiny invented benchmarks written in each real released layout (no real benchmark content).

For every benchmark: records in the release's own schema (column names, types, answer encodings,
options inside the question text, items without image, data ids with or without extension),
8x8 one-colour images, and writers for each layout: hub parquet shards, a ``save_to_disk`` folder,
a fake Hugging Face hub cache, the original JSON + image files, VLMEvalKit's TSV (base64 images).
``EXPECTED[name]`` lists what every layout must yield: (answer, choices, kind, colour or None).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import datasets
import pandas as pd
from datasets import Features, Image, List, Value
from PIL import Image as PILImage

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
S = Value("string")


def png_bytes(color: tuple[int, int, int], mode: str = "RGB") -> bytes:
    """An 8x8 one-colour PNG; "L" / "RGBA" check the RGB conversion."""
    value = color[0] if mode == "L" else (*color, 255) if mode == "RGBA" else color
    buffer = io.BytesIO()
    PILImage.new(mode, (8, 8), value).save(buffer, format="PNG")
    return buffer.getvalue()


def png(path: Path, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(color))


def struct(color: tuple[int, int, int] | None, name: str | None = None) -> dict | None:
    """A ``datasets.Image`` cell as the hub's parquet stores it."""
    return None if color is None else {"bytes": png_bytes(color), "path": name}


def b64(color: tuple[int, int, int]) -> str:
    return base64.b64encode(png_bytes(color)).decode()


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def write_tsv(path: Path, rows: list[dict]) -> None:
    """As VLMEvalKit writes its TSVs: pandas, tab-separated, no index column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


def dataset(rows: list[dict], features: Features) -> datasets.Dataset:
    return datasets.Dataset.from_list(rows, features=features)


# ---------------------------------------------------------------------------------------------
# MathVista testmini (AI4Math/MathVista).
# ---------------------------------------------------------------------------------------------

MATHVISTA_FEATURES = Features(
    {
        "pid": S,
        "question": S,
        "image": S,
        "decoded_image": Image(),
        "choices": List(S),
        "unit": S,
        "precision": Value("float64"),
        "answer": S,
        "question_type": S,
        "answer_type": S,
        "metadata": {"category": S, "skills": List(S), "source": S, "task": S},
        "query": S,
    }
)
QUERY_FLOAT = (
    "Hint: Please answer the question requiring a floating-point number with one decimal place and "
    "provide the final value, e.g., 1.2, 1.3, 1.4, at the end.\nQuestion: How long is the bar (in cm)?"
)


def mathvista_records() -> list[dict]:
    meta = {
        "category": "math-targeted-vqa",
        "skills": ["arithmetic reasoning"],
        "source": "Invented",
        "task": "figure question answering",
    }
    return [
        {
            "pid": "1",
            "question": "Which shape has the largest area?",
            "image": "images/1.jpg",
            "choices": ["circle", "square", "triangle"],
            "unit": None,
            "precision": None,
            "answer": "square",  # the option text, as released
            "question_type": "multi_choice",
            "answer_type": "text",
            "metadata": meta,
            "query": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, "
            "at the end.\nQuestion: Which shape has the largest area?\nChoices:\n(A) circle\n(B) square\n(C) triangle",
        },
        {
            "pid": "2",
            "question": "How many bars are there?",
            "image": "images/2.jpg",
            "choices": None,
            "unit": None,
            "precision": None,
            "answer": "4",
            "question_type": "free_form",
            "answer_type": "integer",
            "metadata": meta,
            "query": "Hint: Please answer the question requiring an integer answer.\nQuestion: How many bars are there?",
        },
        {
            "pid": "3",
            "question": "How long is the bar?",
            "image": "images/3.jpg",
            "choices": None,
            "unit": "cm",
            "precision": 1.0,
            "answer": "1.5",
            "question_type": "free_form",
            "answer_type": "float",
            "metadata": meta,
            "query": QUERY_FLOAT,
        },
    ]


def mathvista_hf() -> dict[str, list[dict]]:
    colors = (RED, GREEN, BLUE)
    return {
        "testmini": [
            {**r, "decoded_image": struct(c, r["image"])}
            for r, c in zip(mathvista_records(), colors, strict=True)
        ]
    }


def mathvista_original(root: Path) -> None:
    write_json(root / "annot_testmini.json", {r["pid"]: r for r in mathvista_records()})
    for r, c in zip(mathvista_records(), (RED, GREEN, BLUE), strict=True):
        png(root / r["image"], c)


def mathvista_tsv() -> list[dict]:
    return [
        {
            "index": int(r["pid"]),
            "image": b64(c),
            "question": r["query"],
            "answer": r["answer"],
            "question_type": r["question_type"],
            "answer_type": r["answer_type"],
            "choices": repr(r["choices"] or []),
            "precision": r["precision"],
            "unit": r["unit"],
            "task": r["metadata"]["task"],
            "skills": repr(r["metadata"]["skills"]),
        }
        for r, c in zip(mathvista_records(), (RED, GREEN, BLUE), strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# MathVision testmini (MathLLMs/MathVision).
# ---------------------------------------------------------------------------------------------

MATHVISION_FEATURES = Features(
    {
        "id": S,
        "question": S,
        "options": List(S),
        "image": S,
        "decoded_image": Image(),
        "answer": S,
        "solution": S,
        "level": Value("int64"),
        "subject": S,
    }
)


def mathvision_records() -> list[dict]:
    base = {"solution": None, "level": 2}
    return [
        {
            **base,
            "id": "1",
            "question": "Which figure comes next?\n<image1>",
            "options": ["A", "B", "C", "D", "E"],
            "image": "images/1.jpg",
            "answer": "C",
            "subject": "logic",
        },
        {
            **base,
            "id": "2",
            "question": "How many triangles?\n<image1>",
            "options": [],
            "image": "images/2.jpg",
            "answer": "7",
            "subject": "counting",
        },
        {
            **base,
            "id": "3",
            "question": "Which is larger?\n<image1>",
            "options": ["2 cm", "3 cm"],
            "image": "images/3.jpg",
            "answer": "B",
            "subject": "metric geometry - length",
        },
    ]


def mathvision_hf() -> dict[str, list[dict]]:
    return {
        "testmini": [
            {**r, "decoded_image": struct(c, r["image"])}
            for r, c in zip(mathvision_records(), (RED, GREEN, BLUE), strict=True)
        ]
    }


def mathvision_original(root: Path) -> None:
    write_jsonl(root / "data/testmini.jsonl", mathvision_records())
    for r, c in zip(mathvision_records(), (RED, GREEN, BLUE), strict=True):
        png(root / r["image"], c)


def mathvision_tsv() -> list[dict]:
    return [
        {
            "index": int(r["id"]),
            "image": b64(c),
            "question": r["question"],
            "answer": r["answer"],
            "choices": repr(r["options"]),
            "category": r["subject"],
            "level": r["level"],
        }
        for r, c in zip(mathvision_records(), (RED, GREEN, BLUE), strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# HallusionBench (tianyi-lab/HallusionBench, lmms-lab/HallusionBench, VLMEvalKit).
# ---------------------------------------------------------------------------------------------

HALLUSION_FIELDS = (
    "category",
    "subcategory",
    "visual_input",
    "set_id",
    "figure_id",
    "sample_note",
    "question_id",
    "question",
    "gt_answer_details",
    "gt_answer",
    "filename",
)
HALLUSION_FEATURES = Features({**{f: S for f in HALLUSION_FIELDS}, "image": Image()})


def hallusion_records() -> list[dict]:
    def record(category, sub, visual, set_id, figure, qid, answer, filename):
        return {
            "category": category, "subcategory": sub, "visual_input": visual, "set_id": set_id,
            "figure_id": figure, "sample_note": "invented", "question_id": qid,
            "question": f"Is statement {set_id}-{figure}-{qid} true?", "gt_answer_details": "details",
            "gt_answer": answer, "filename": filename,
        }  # fmt: skip

    return [
        record("VD", "illusion", "1", "0", "0", "0", "1", "./hallusion_bench/VD/illusion/0_0.png"),
        record("VS", "chart", "0", "0", "0", "1", "0", None),  # no image: text-only question
        record("VS", "chart", "2", "1", "1", "0", "0", "./hallusion_bench/VS/chart/1_1.png"),
    ]


def hallusion_hf() -> dict[str, list[dict]]:
    rows = [{**r, "image": struct(c)} for r, c in zip(hallusion_records(), (RED, None, BLUE), strict=True)]
    return {"image": [rows[0], rows[2]], "non_image": [rows[1]]}


def hallusion_original(root: Path) -> None:
    write_json(root / "HallusionBench.json", hallusion_records())
    png(root / "hallusion_bench/VD/illusion/0_0.png", RED)
    png(root / "hallusion_bench/VS/chart/1_1.png", BLUE)


def hallusion_tsv() -> list[dict]:
    rows = []
    for r, c in zip(hallusion_records(), (RED, None, BLUE), strict=True):
        if c is None:  # VLMEvalKit's TSV holds the image questions only
            continue
        index = f"HB_{r['category']}_{r['set_id']}_{r['figure_id']}_{r['question_id']}"
        answer = "Yes" if r["gt_answer"] == "1" else "No"
        rows.append(
            {
                "index": index,
                "image": b64(c),
                "question": r["question"],
                "answer": answer,
                "category": r["category"],
                "l2-category": r["subcategory"],
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# CLEVR v1.0 (original release; community parquet copies).
# ---------------------------------------------------------------------------------------------

CLEVR_FEATURES = Features(
    {
        "image_index": Value("int64"),
        "image_filename": S,
        "question_index": Value("int64"),
        "question_family_index": Value("int64"),
        "split": S,
        "question": S,
        "answer": S,
        "image": Image(),
    }
)


def clevr_records() -> list[dict]:
    def record(i, image_index, family, question, answer):
        return {
            "image_index": image_index,
            "image_filename": f"CLEVR_val_{image_index:06d}.png",
            "question_index": i,
            "question_family_index": family,
            "split": "val",
            "question": question,
            "answer": answer,
        }

    return [
        record(0, 0, 39, "How many cylinders are there?", "3"),
        record(1, 0, 12, "Are there any rubber spheres?", "yes"),
        record(2, 1, 90, "What shape is the big metal object?", "cube"),
    ]


PROGRAMS = [
    [
        {"function": "scene", "inputs": [], "value_inputs": []},
        {"function": "count", "inputs": [0], "value_inputs": []},
    ],
    [{"type": "exist", "inputs": [0]}],
    None,
]


def clevr_hf() -> dict[str, list[dict]]:
    return {
        "val": [{**r, "image": struct(c)} for r, c in zip(clevr_records(), (RED, RED, GREEN), strict=True)]
    }


def clevr_original(root: Path) -> None:
    questions = [
        {**r, **({"program": p} if p else {})} for r, p in zip(clevr_records(), PROGRAMS, strict=True)
    ]
    write_json(
        root / "questions/CLEVR_val_questions.json", {"info": {"split": "val"}, "questions": questions}
    )
    png(root / "images/val/CLEVR_val_000000.png", RED)
    png(root / "images/val/CLEVR_val_000001.png", GREEN)


# ---------------------------------------------------------------------------------------------
# MMStar (Lin-Chen/MMStar: mmstar.parquet, MMStar.tsv).
# ---------------------------------------------------------------------------------------------

MMSTAR_FEATURES = Features(
    {
        "index": Value("int64"),
        "question": S,
        "image": Image(),
        "answer": S,
        "category": S,
        "l2_category": S,
        "meta_info": {"source": S, "split": S, "image_path": S},
    }
)
MMSTAR_OPTIONS = [
    ("The cat is on the mat, asleep.", "The cat is under the mat."),
    ("red", "green", "blue", "yellow"),
    ("1", "2"),
]


def mmstar_records() -> list[dict]:
    stems = ["Which option describes the image?", "What colour is the square?", "How many dots?"]
    rows = []
    for i, (stem, options, answer) in enumerate(zip(stems, MMSTAR_OPTIONS, ("A", "B", "B"), strict=True)):
        written = ", ".join(f"{letter}: {text}" for letter, text in zip("ABCD", options, strict=False))
        rows.append(
            {
                "index": i,
                "question": f"{stem}\nOptions: {written}",
                "answer": answer,
                "category": "coarse perception",
                "l2_category": "image scene and topic",
                "meta_info": {"source": "Invented", "split": "val", "image_path": f"images/{i}.jpg"},
            }
        )
    return rows


def mmstar_hf() -> dict[str, list[dict]]:
    return {
        "val": [{**r, "image": struct(c)} for r, c in zip(mmstar_records(), (RED, GREEN, BLUE), strict=True)]
    }


def mmstar_tsv() -> list[dict]:
    rows = []
    for r, c, options in zip(mmstar_records(), (RED, GREEN, BLUE), MMSTAR_OPTIONS, strict=True):
        row = {
            "index": r["index"],
            "question": r["question"].split("\nOptions:")[0],
            "answer": r["answer"],
            "category": r["category"],
            "l2-category": r["l2_category"],
            "image": b64(c),
        }
        row.update({letter: text for letter, text in zip("ABCD", options, strict=False)})
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# SEED-Bench (AILab-CVC/SEED-Bench, lmms-lab/SEED-Bench, VLMEvalKit SEEDBench_IMG).
# ---------------------------------------------------------------------------------------------

SEED_FIELDS = (
    "answer",
    "choice_a",
    "choice_b",
    "choice_c",
    "choice_d",
    "data_id",
    "data_type",
    "question",
    "question_id",
    "question_type_id",
    "segment",
)
SEED_FEATURES = Features({**{f: S for f in SEED_FIELDS}, "image": List(Image())})
SEED_TYPES = {"Scene Understanding": 1, "Instances Counting": 5}


def seed_records() -> list[dict]:
    def record(qid, question, choices, answer, type_id, data_type, data_id):
        return {
            "question_id": qid,
            "question": question,
            **dict(zip(("choice_a", "choice_b", "choice_c", "choice_d"), choices, strict=True)),
            "answer": answer,
            "question_type_id": type_id,
            "data_type": data_type,
            "data_id": data_id,
            "segment": None,
        }

    return [
        record(
            "101669",
            "How many towels are in the image?",
            ("One", "Two", "Three", "Four"),
            "A",
            5,
            "image",
            "1454426_2591111986.jpg",
        ),
        record(
            "101670",
            "Where is the scene?",
            ("Beach", "Office", "Forest", "Kitchen"),
            "D",
            1,
            "image",
            "2000000_1",
        ),  # id without extension
        record(
            "201", "What happens next?", ("a", "b", "c", "d"), "B", 10, "video", "v_clip_01"
        ),  # video: left out
        record(
            "101671", "What is written?", ("x", "y", "z", "w"), "C", 9, "image", "3000000_2.png"
        ),  # type 9 not in the mapping
    ]


def seed_hf() -> dict[str, list[dict]]:
    rows = []
    for r, c in zip(seed_records(), (RED, GREEN, None, BLUE), strict=True):
        images = [struct(c)] if c else [struct(RED), struct(GREEN)]  # video rows carry frames
        rows.append({**{k: (str(v) if v is not None else None) for k, v in r.items()}, "image": images})
    return {"test": rows}


def seed_original(root: Path) -> None:
    write_json(root / "SEED-Bench.json", {"question_type": SEED_TYPES, "questions": seed_records()})
    png(root / "SEED-Bench-image/1454426_2591111986.jpg", RED)
    png(root / "SEED-Bench-image/2000000_1.jpg", GREEN)
    png(root / "SEED-Bench-image/3000000_2.png", BLUE)


def seed_tsv() -> list[dict]:
    names = {1: "Scene Understanding", 5: "Instances Counting", 9: "Text Understanding"}
    rows = []
    for r, c in zip(seed_records(), (RED, GREEN, None, BLUE), strict=True):
        if c is None:  # SEEDBench_IMG: image questions only
            continue
        rows.append(
            {
                "index": int(r["question_id"]),
                "image": b64(c),
                "question": r["question"],
                "A": r["choice_a"],
                "B": r["choice_b"],
                "C": r["choice_c"],
                "D": r["choice_d"],
                "answer": r["answer"],
                "category": names[r["question_type_id"]],
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# POPE (RUCAIBox/POPE, lmms-lab/POPE, VLMEvalKit POPE.tsv).
# ---------------------------------------------------------------------------------------------

POPE_FEATURES = Features(
    {
        "id": S,
        "question_id": S,
        "question": S,
        "answer": S,
        "image_source": S,
        "image": Image(),
        "category": S,
    }
)
POPE_VARIANTS = ("adversarial", "popular", "random")  # the hub's row order
POPE_IMAGES = {"COCO_val2014_000000000001.jpg": RED, "COCO_val2014_000000000002.jpg": GREEN}


def pope_records() -> dict[str, list[dict]]:
    """Per variant, as the original JSON Lines files hold them: two probes, one yes one no."""
    objects = {"adversarial": "fork", "popular": "person", "random": "kite"}
    out = {}
    for variant in POPE_VARIANTS:
        out[variant] = [
            {
                "question_id": 1,
                "image": "COCO_val2014_000000000001.jpg",
                "text": "Is there a dog in the image?",
                "label": "yes",
            },
            {
                "question_id": 2,
                "image": "COCO_val2014_000000000002.jpg",
                "text": f"Is there a {objects[variant]} in the image?",
                "label": "no",
            },
        ]
    return out


def pope_hf() -> dict[str, list[dict]]:
    rows = []
    for variant, records in pope_records().items():
        for r in records:
            rows.append(
                {
                    "id": str(len(rows)),
                    "question_id": str(r["question_id"]),
                    "question": r["text"],
                    "answer": r["label"],
                    "image_source": r["image"][:-4],
                    "image": struct(POPE_IMAGES[r["image"]]),
                    "category": variant,
                }
            )
    return {"test": rows}


def pope_original(root: Path) -> None:
    for variant, records in pope_records().items():
        write_jsonl(root / f"output/coco/coco_pope_{variant}.json", records)
    for name, color in POPE_IMAGES.items():
        png(root / "val2014" / name, color)


def pope_tsv() -> list[dict]:
    rows = []
    for variant, records in pope_records().items():
        for r in records:
            index = len(rows)
            first = next((row["index"] for row in rows if row["_image"] == r["image"]), None)
            image = (
                str(first) if first is not None else b64(POPE_IMAGES[r["image"]])
            )  # VLMEvalKit stores each image once
            rows.append(
                {
                    "index": index,
                    "image": image,
                    "question": r["text"],
                    "answer": r["label"].capitalize(),
                    "category": variant,
                    "_image": r["image"],
                }
            )
    return [{k: v for k, v in row.items() if k != "_image"} for row in rows]


# ---------------------------------------------------------------------------------------------
# The table the tests run over.
# ---------------------------------------------------------------------------------------------

BENCH = {
    "mathvista-mini": dict(
        hub="AI4Math/MathVista",
        features=MATHVISTA_FEATURES,
        hf=mathvista_hf,
        original=mathvista_original,
        tsv=("MathVista_MINI.tsv", mathvista_tsv),
    ),
    "mathvision-mini": dict(
        hub="MathLLMs/MathVision",
        features=MATHVISION_FEATURES,
        hf=mathvision_hf,
        original=mathvision_original,
        tsv=("MathVision_MINI.tsv", mathvision_tsv),
    ),
    "hallusionbench": dict(
        hub="lmms-lab/HallusionBench",
        features=HALLUSION_FEATURES,
        hf=hallusion_hf,
        original=hallusion_original,
        tsv=("HallusionBench.tsv", hallusion_tsv),
    ),
    "clevr": dict(
        hub="someone/clevr-val", features=CLEVR_FEATURES, hf=clevr_hf, original=clevr_original, tsv=None
    ),
    "mmstar": dict(
        hub="Lin-Chen/MMStar",
        features=MMSTAR_FEATURES,
        hf=mmstar_hf,
        original=None,
        tsv=("MMStar.tsv", mmstar_tsv),
        single_file="mmstar.parquet",
    ),
    "seed-bench": dict(
        hub="lmms-lab/SEED-Bench",
        features=SEED_FEATURES,
        hf=seed_hf,
        original=seed_original,
        tsv=("SEEDBench_IMG.tsv", seed_tsv),
    ),
    "pope": dict(
        hub="lmms-lab/POPE",
        features=POPE_FEATURES,
        hf=pope_hf,
        original=pope_original,
        tsv=("POPE.tsv", pope_tsv),
    ),
}

# What every layout yields: (answer, choices, kind, colour or None for no image).
EXPECTED = {
    "mathvista-mini": [
        ("B", ("circle", "square", "triangle"), "multi_choice", RED),
        ("4", (), "free_form", GREEN),
        ("1.5", (), "free_form", BLUE),
    ],
    "mathvision-mini": [
        ("C", ("A", "B", "C", "D", "E"), "logic", RED),
        ("7", (), "counting", GREEN),
        ("B", ("2 cm", "3 cm"), "metric geometry - length", BLUE),
    ],
    "hallusionbench": [("yes", (), "VD", RED), ("no", (), "VS", None), ("no", (), "VS", BLUE)],
    "clevr": [("3", (), "count", RED), ("yes", (), "exist", RED), ("cube", (), "query_attribute", GREEN)],
    "mmstar": [
        ("A", MMSTAR_OPTIONS[0], "coarse perception", RED),
        ("B", MMSTAR_OPTIONS[1], "coarse perception", GREEN),
        ("B", MMSTAR_OPTIONS[2], "coarse perception", BLUE),
    ],
    "seed-bench": [
        ("A", ("One", "Two", "Three", "Four"), "Instances Counting", RED),
        ("D", ("Beach", "Office", "Forest", "Kitchen"), "Scene Understanding", GREEN),
        ("C", ("x", "y", "z", "w"), "Text Understanding", BLUE),
    ],
    "pope": [(a, (), v, c) for v in POPE_VARIANTS for a, c in (("yes", RED), ("no", GREEN))],
}


def layouts(name: str) -> list[str]:
    spec = BENCH[name]
    return [
        "parquet",
        "save_to_disk",
        "arrow-cache",
        "hub-cache",
        *(["original"] if spec["original"] else []),
        *(["tsv"] if spec["tsv"] else []),
    ]


def write_parquet_folder(name: str, root: Path) -> None:
    """The hub repo's files: ``data/<split>-00000-of-00001.parquet`` (MMStar: one mmstar.parquet)."""
    spec = BENCH[name]
    for split, rows in spec["hf"]().items():
        target = root / spec.get("single_file", f"data/{split}-00000-of-00001.parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        dataset(rows, spec["features"]).to_parquet(str(target))


def build(name: str, layout: str, tmp: Path) -> tuple[str, dict]:
    """Write ``name`` in ``layout`` under ``tmp``; (the source to pass, extra load_benchmark kwargs)."""
    spec = BENCH[name]
    if layout == "parquet":
        write_parquet_folder(name, tmp / "repo")
        return str(tmp / "repo"), {}
    if layout == "save_to_disk":
        splits = {split: dataset(rows, spec["features"]) for split, rows in spec["hf"]().items()}
        datasets.DatasetDict(splits).save_to_disk(str(tmp / "disk"))
        return str(tmp / "disk"), {}
    if layout == "arrow-cache":  # what load_dataset writes to its cache, written by datasets itself
        write_parquet_folder(name, tmp / "repo")
        shards = sorted((tmp / "repo").rglob("*.parquet"))
        splits = {p.name.split("-")[0] if "-" in p.name else "val": str(p) for p in shards}
        datasets.load_dataset("parquet", data_files=splits, cache_dir=str(tmp / "cache"))
        (folder,) = {p.parent for p in (tmp / "cache").rglob("*.arrow")}
        return str(folder), {}
    if layout == "hub-cache":
        repo = tmp / "hub" / f"datasets--{spec['hub'].replace('/', '--')}"
        revision = "0123456789abcdef0123456789abcdef01234567"
        write_parquet_folder(name, repo / "snapshots" / revision)
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(revision)
        return spec["hub"], {"cache_dir": str(tmp / "hub")}
    if layout == "original":
        spec["original"](tmp / "orig")
        return str(tmp / "orig"), {}
    file_name, rows = spec["tsv"]
    write_tsv(tmp / "vlmeval" / file_name, rows())
    return str(tmp / "vlmeval"), {}
