"""The synthetic benchmark: determinism, answers checked by an independent solver, files, traces."""

import re

import pytest

from fac_lens.data.synthetic import (
    COLORS,
    KINDS,
    diagnose,
    load_split,
    make_sample,
    samples,
    vocabulary,
    write_split,
)
from fac_lens.errors import FacLensError

NUMBER_WORDS = ["zero", "one", "two", "three", "four"]


def solve(question: str, objects: list[dict]) -> str:
    """An independent solver: parses the question text and answers from the scene description."""
    q = question.rstrip(" ?")
    if m := re.fullmatch(r"what color is the (small|large) (\w+)", q):
        (hit,) = [o for o in objects if o["size"] == m[1] and o["shape"] == m[2]]
        return hit["color"]
    if m := re.fullmatch(r"what shape is the (\w+) thing", q):
        (hit,) = [o for o in objects if o["color"] == m[1]]
        return hit["shape"]
    if m := re.fullmatch(r"how many (\w+) things are there", q):
        return NUMBER_WORDS[sum(o["color"] == m[1] for o in objects)]
    if m := re.fullmatch(r"how many (\w+)s are there", q):
        return NUMBER_WORDS[sum(o["shape"] == m[1] for o in objects)]
    if m := re.fullmatch(r"is there a (\w+) (\w+)", q):
        return "yes" if any(o["color"] == m[1] and o["shape"] == m[2] for o in objects) else "no"
    if m := re.fullmatch(
        r"what shape is the (small|large) thing that is the same color as the (small|large) (\w+)", q
    ):
        (ref,) = [o for o in objects if o["size"] == m[2] and o["shape"] == m[3]]
        (hit,) = [o for o in objects if o is not ref and o["color"] == ref["color"] and o["size"] == m[1]]
        return hit["shape"]
    raise AssertionError(f"unparsed question {question!r}")


def test_generator_is_deterministic():
    a, b = make_sample("test", 17), make_sample("test", 17)
    assert (a.question, a.answer, a.meta) == (b.question, b.answer, b.meta)
    assert a.image.tobytes() == b.image.tobytes()
    assert make_sample("train", 17).question != a.question or make_sample("train", 17).meta != a.meta


def test_answers_agree_with_an_independent_solver():
    seen = {kind: 0 for kind in KINDS}
    for sample in samples("validation", 400):
        assert solve(sample.question, sample.meta["scene"]["objects"]) == sample.answer, sample.id
        seen[sample.kind] += 1
    assert seen == {kind: 100 for kind in KINDS}


def test_exist_questions_are_half_absent_pope_style():
    answers = [s.answer for s in samples("validation", 400) if s.kind == "exist"]
    assert 0.35 < answers.count("no") / len(answers) < 0.65


def test_traces_state_the_steps_then_the_answer():
    for sample in samples("validation", 40):
        target = sample.meta["target"]
        assert target.startswith("<think> ") and target.endswith(f"</think> {sample.answer}")
        for step in sample.meta["steps"]:
            assert step["text"] in target and step["kind"] in ("perception", "reasoning")
        if sample.kind == "two_step":
            assert [s["kind"] for s in sample.meta["steps"]] == ["perception", "reasoning"]


def test_rendered_objects_have_their_colour_at_their_centre():
    for sample in samples("validation", 20):
        for obj in sample.meta["scene"]["objects"]:
            x = int((obj["col"] + 0.5) * 140 / 3 + obj["dx"])
            y = int((obj["row"] + 0.5) * 140 / 3 + obj["dy"])
            if obj["shape"] == "cylinder":
                y += 2
            assert sample.image.getpixel((x, y)) == COLORS[obj["color"]], (sample.id, obj)


def test_vocabulary_covers_every_word():
    vocab = set(vocabulary())
    for sample in samples("validation", 200):
        assert set(sample.question.split()) <= vocab
        assert set(sample.meta["target"].split()) <= vocab


def test_split_round_trip(tmp_path):
    path = write_split(tmp_path, "test", 8)
    loaded = list(load_split(path))
    original = list(samples("test", 8))
    assert [s.id for s in loaded] == [s.id for s in original]
    for a, b in zip(loaded, original, strict=True):
        assert (a.question, a.answer, a.kind, a.meta) == (b.question, b.answer, b.kind, b.meta)
        assert a.image.tobytes() == b.image.tobytes()


def test_committed_test_split_matches_the_generator():
    loaded = list(load_split("data/synthetic/test/test.jsonl"))
    assert len(loaded) == 600
    for index in (0, 299, 599):
        fresh = make_sample("test", index)
        assert loaded[index].question == fresh.question and loaded[index].answer == fresh.answer
        assert loaded[index].image.tobytes() == fresh.image.tobytes()


def test_malformed_split_names_file_and_line(tmp_path):
    path = write_split(tmp_path, "test", 2)
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(FacLensError, match=r"test.jsonl, line 2"):
        list(load_split(path))
    with pytest.raises(FacLensError, match="not found"):
        list(load_split(tmp_path / "missing.jsonl"))


def test_diagnose_finds_the_failing_step():
    sample = next(s for s in samples("validation", 8) if s.kind == "two_step")
    perception, reasoning = (step["text"] for step in sample.meta["steps"])
    right = sample.meta["target"]
    assert diagnose(sample, right, sample.answer) == "correct"
    assert (
        diagnose(sample, "<think> nothing . </think> cube", "cube" if sample.answer != "cube" else "ball")
        == "perception"
    )
    assert diagnose(sample, f"<think> {perception} . wrong . </think> x", "x") == "reasoning"
    assert diagnose(sample, f"<think> {perception} . {reasoning} . </think> x", "x") == "reasoning"


def test_diagnose_reads_exist_and_count_traces_for_self_consistency():
    exist = next(s for s in samples("validation", 40) if s.kind == "exist" and s.answer == "yes")
    color, shape = exist.question.rstrip(" ?").split()[-2:]
    # listed the object but answered no: the conclusion contradicts its own perception
    listing = f"<think> i see small {color} {shape} . </think> no"
    assert diagnose(exist, listing, "no") == "reasoning"
    # did not see it and said no accordingly: a perception error
    other = "cube" if shape != "cube" else "ball"
    assert diagnose(exist, f"<think> i see large {color} {other} . </think> no", "no") == "perception"
    count = next(s for s in samples("validation", 40) if s.kind == "count" and s.answer == "one")
    subject = count.meta["steps"][0]["text"].split(" : ")[0]
    assert diagnose(count, f"<think> {subject} : none . that makes two . </think> two", "two") == "reasoning"
    assert (
        diagnose(count, f"<think> {subject} : a b , c d . that makes two . </think> two", "two")
        == "perception"
    )
