"""Answer handling on benchmark records laid out as the loaders read them (written here, in tmp_path):
CLEVR attributes answered in a sentence, MathVista asked its ``query``, HallusionBench's text-only
questions left out and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from fac_lens.data.answers import answer_format, clevr_attribute, extract_answer, is_correct
from fac_lens.data.datasets import load_samples, split_text_only
from fac_lens.data.loaders import load_clevr, load_hallusionbench, load_mathvista_mini
from fac_lens.data.sample import Sample


def png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 3), (128, 128, 128)).save(path, format="PNG")


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


# --- CLEVR ------------------------------------------------------------------------------------------

CLEVR_QUESTIONS = [  # (question_index, question, answer, last program function)
    (0, "What shape is the large red object?", "cube", "query_shape"),
    (1, "What color is the cylinder left of the red cube?", "blue", "query_color"),
    (2, "What size is the metal sphere?", "large", "query_size"),
    (3, "What material is the small cylinder?", "rubber", "query_material"),
    (4, "How many cylinders are there?", "3", "count"),
    (5, "What shape is the small thing?", "sphere", "query_shape"),
]


@pytest.fixture
def clevr(tmp_path) -> dict[str, Sample]:
    questions = [
        {
            "image_index": 0,
            "image_filename": "CLEVR_val_000000.png",
            "question_index": index,
            "question_family_index": 7,
            "split": "val",
            "answer": answer,
            "question": question,
            "program": [
                {"function": "scene", "inputs": [], "value_inputs": []},
                {"function": last, "inputs": [0], "value_inputs": []},
            ],
        }
        for index, question, answer, last in CLEVR_QUESTIONS
    ]
    write_json(tmp_path / "questions/CLEVR_val_questions.json", {"info": {}, "questions": questions})
    png(tmp_path / "images/val/CLEVR_val_000000.png")
    return {s.id: s for s in load_clevr(tmp_path)}


def scored(trace: str, sample: Sample) -> bool:
    """As the harness scores a trace: extract in the sample's format, then compare."""
    return is_correct(extract_answer(trace, kind=answer_format(sample), choices=sample.choices), sample)


@pytest.mark.parametrize(
    "sample_id, trace, right",
    [
        ("0", "<think> the big red one has flat faces </think> The shape is a red cube.", True),
        ("0", "The shape is a red sphere.", False),
        ("0", "cube", True),
        ("0", "It is a block.", True),  # CLEVR's own synonym of cube
        ("0", "It is not a cube.", False),  # negated: no shape named
        ("0", "It is not a cube, it is a cylinder.", False),
        ("5", "It is not a cube, it is a sphere.", True),
        ("0", "It is a cube or a sphere.", False),  # two shapes: no answer
        ("1", "The cylinder left of the red cube is blue.", True),  # red describes the object asked about
        ("1", "The cylinder left of the red cube is green.", False),
        ("1", "It is red.", False),
        ("1", "It is blue or green.", False),
        ("2", "The metal sphere is big.", True),  # big = large in CLEVR
        ("2", "The metal sphere is small.", False),
        ("3", "It is made of matte rubber.", True),
        ("3", "The small cylinder is shiny metal.", False),
        ("4", "There are three cylinders.", True),
        ("4", "There are two cylinders.", False),
    ],
)
def test_clevr_sentence_answers(clevr, sample_id, trace, right):
    assert clevr[sample_id].source == "CLEVR"
    assert scored(trace, clevr[sample_id]) is right


def test_sentence_matching_is_clevr_only():
    other = Sample("q", None, "What shape is it?", "cube", "query", source="MathVista-mini")
    assert not scored("The shape is a red cube.", other)
    assert clevr_attribute("The shape is a red cube.", "cube") == "cube"
    assert clevr_attribute("The answer is 3.", "3") is None  # not an attribute


# --- MathVista --------------------------------------------------------------------------------------


def test_mathvista_is_asked_its_query(tmp_path):
    query = (
        "Hint: Please answer the question requiring a floating-point number with two decimal places "
        "and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.\nQuestion: What is the slope?"
    )
    records = {
        "7": {
            "pid": "7",
            "question": "What is the slope?",
            "image": "images/7.png",
            "choices": None,
            "answer": "0.25",
            "question_type": "free_form",
            "answer_type": "float",
            "precision": 2.0,
            "query": query,
            "metadata": {"task": "figure question answering"},
        },
        "8": {  # an export without query: the question is asked
            "pid": "8",
            "question": "Which is longer?",
            "image": "images/7.png",
            "choices": ["left", "right"],
            "answer": "right",
            "question_type": "multi_choice",
        },
    }
    write_json(tmp_path / "testmini.json", records)
    png(tmp_path / "images/7.png")
    slope, longer = load_mathvista_mini(tmp_path)
    assert slope.prompt() == query and slope.question == "What is the slope?"
    assert longer.prompt() == "Which is longer?\nA. left\nB. right\nAnswer with the option's letter."
    assert is_correct("so the slope is 0.25", slope) and not is_correct("0.3", slope)


# --- HallusionBench ---------------------------------------------------------------------------------


def hallusion_record(set_id: str, question_id: str, gt: str, visual: str) -> dict:
    return {
        "category": "VS",
        "subcategory": "chart",
        "visual_input": visual,
        "set_id": set_id,
        "figure_id": "0",
        "sample_note": "chart",
        "question_id": question_id,
        "question": f"Is the value in chart {set_id} above 10?",
        "gt_answer_details": "",
        "gt_answer": gt,
        "filename": f"./hallusion_bench/VS/chart/{set_id}_0.png" if visual == "1" else None,
    }


def make_hallusion(root: Path) -> None:
    records = [
        hallusion_record("0", "0", "1", "1"),
        hallusion_record("0", "1", "0", "0"),  # text-only: no image
        hallusion_record("1", "0", "0", "1"),
        hallusion_record("1", "1", "1", "0"),  # text-only
    ]
    write_json(root / "HallusionBench.json", records)
    png(root / "hallusion_bench/VS/chart/0_0.png")
    png(root / "hallusion_bench/VS/chart/1_0.png")


def test_text_only_hallusionbench_questions_are_split_off_and_counted(tmp_path):
    make_hallusion(tmp_path)
    samples = list(load_hallusionbench(tmp_path))
    with_image, text_only = split_text_only(samples)
    assert [s.id for s in with_image] == ["VS_chart_0_0_0", "VS_chart_1_0_0"]
    assert [s.id for s in text_only] == ["VS_chart_0_0_1", "VS_chart_1_0_1"]
    assert all(s.image is not None for s in with_image) and all(s.image is None for s in text_only)
    assert len(load_samples("hallusionbench", tmp_path)) == 4  # loading keeps them; evaluation skips
