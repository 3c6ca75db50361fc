"""Answer extraction, normalization, correctness, and the metrics against values worked out by hand."""

from __future__ import annotations

import math
from functools import partial

import pytest

from fac_lens.data.answers import answer_format, answer_segment, extract_answer, is_correct, normalize_answer
from fac_lens.data.metrics import (
    accuracy,
    binary_f1,
    f1_labels,
    f1_scheme,
    per_kind,
    reported_f1,
    weighted_f1,
)
from fac_lens.data.sample import Sample
from fac_lens.errors import FacLensError

SHAPES = ("sphere", "cube", "cylinder")

EXTRACTION_CASES = [
    # --- the answer after </think> --------------------------------------------------------------
    ("<think> the small ball is red . the large red thing is a cube . </think> cube", "auto", (), "cube"),
    ("<think> the small ball is red . the large red thing is a cube . </think> cube", "choice", SHAPES, "B"),
    ("<think>I count 2 then 3 then 4</think> There are 3.", "number", (), "3"),
    ("<think>so the answer is 7</think>", "number", (), "7"),  # nothing after the thought: use it
    ("<think>maybe B</think><answer>(C)</answer>", "choice", SHAPES, "C"),
    # --- \boxed{...}: the last one, nested braces ----------------------------------------------
    ("\\boxed{\\frac{1}{2}}", "auto", (), "1/2"),
    ("first \\boxed{3}, then corrected: \\boxed{5}", "number", (), "5"),
    ("The final answer is $\\boxed{\\text{cube}}$. I hope it is correct.", "auto", (), "cube"),
    ("\\boxed{\\sqrt{\\frac{1}{2}}}", "text", (), "\\sqrt{1/2}"),  # nested braces kept whole
    ("\\boxed{-\\dfrac{3}{4}}", "number", (), "-3/4"),
    # --- answer markers --------------------------------------------------------------------------
    ("Answer: (C)", "auto", (), "C"),
    ("Answer: (C)", "choice", SHAPES, "C"),
    ("the answer is two", "number", (), "2"),
    ("the answer is two", "auto", (), "2"),
    ("x = 12 is wrong, so the final answer is 7.", "number", (), "7"),
    ("The answer is 3.5. Because 7 / 2 = 3.5", "auto", (), "3.5"),
    ("The answer is metal because it shines.", "text", (), "metal"),
    ("**Answer:** B", "choice", SHAPES, "B"),
    # --- option letters ---------------------------------------------------------------------------
    ("B.", "choice", SHAPES, "B"),
    ("B) cube", "choice", SHAPES, "B"),
    ("I would pick option C here", "choice", SHAPES, "C"),
    ("A", "choice", SHAPES, "A"),
    ("The correct option is (A) because the ball is round", "choice", SHAPES, "A"),
    ("The answer is E", "choice", SHAPES, None),  # only three options: E is not one
    ("The answer is D", "choice", (), "D"),  # no choices given: any letter
    # --- option text matched to its letter --------------------------------------------------------
    ("The large thing is a cylinder.", "choice", SHAPES, "C"),
    ("Answer: a cube", "choice", SHAPES, "B"),
    ("It is either a cube or a sphere.", "choice", SHAPES, None),  # ambiguous: no guess
    ("Answer: it is the red cube", "choice", ("cube", "red cube", "sphere"), "B"),  # longest match wins
    # --- yes / no ---------------------------------------------------------------------------------
    ("Yes, the cube is red.", "yesno", (), "yes"),
    ("no.", "yesno", (), "no"),
    ("There is no cube, so the answer is yes.", "yesno", (), "yes"),
    ("<think>there is no cube</think> No", "auto", (), "no"),
    ("I am not sure", "yesno", (), None),
    # --- numbers ----------------------------------------------------------------------------------
    ("The population is 1,000 people", "number", (), "1000"),
    ("The temperature is -3.5 degrees", "number", (), "-3.5"),
    ("It takes 3/4 of the time", "number", (), "3/4"),
    ("First 3, then 5, finally 8", "number", (), "8"),  # no marker: the last number
    ("The answer is .5", "number", (), ".5"),
    ("The angle is 30^\\circ", "number", (), "30"),
    ("CLEVR_val_000123 shows three cubes", "number", (), "3"),  # digits inside a name are not numbers
    ("The answer is 25%", "auto", (), "25"),
    ("no idea at all", "number", (), None),
]


@pytest.mark.parametrize("text,kind,choices,expected", EXTRACTION_CASES)
def test_extract_answer(text, kind, choices, expected):
    assert extract_answer(text, kind=kind, choices=choices) == expected


def test_extract_answer_unknown_kind():
    with pytest.raises(FacLensError, match="unknown answer kind 'letters'"):
        extract_answer("B", kind="letters")


@pytest.mark.parametrize("alias,expected", [("multi_choice", "B"), ("yes_no", None), ("free_form", "B")])
def test_extract_answer_kind_aliases(alias, expected):
    assert extract_answer("(B)", kind=alias, choices=SHAPES if alias == "multi_choice" else ()) == expected


@pytest.mark.parametrize(
    "text,segment",
    [
        ("<think> a </think> b", "b"),
        ("<think> a </think>  ", "a"),
        ("plain text", "plain text"),
        ("<think> x </think><answer> y </answer>", "y"),
        ("<think> unfinished thought", "unfinished thought"),
    ],
)
def test_answer_segment(text, segment):
    assert answer_segment(text) == segment


@pytest.mark.parametrize(
    "raw,normalized",
    [
        ("1.0", "1"),
        ("1", "1"),
        ("1,000", "1000"),
        ("-2.50", "-2.5"),
        ("3/4", "0.75"),
        ("0.75", "0.75"),
        ("two", "2"),
        ("Two cubes.", "2 cubes"),
        ("The Cube!", "cube"),
        ("  Yes. ", "yes"),
        ("A", "a"),  # an article alone is kept
        ("50%", "50"),
        ("$\\frac{1}{2}$", "0.5"),
        ("large, red", "large red"),
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def sample(answer: str, choices: tuple[str, ...] = (), **meta) -> Sample:
    return Sample(id="0", image=None, question="q", answer=answer, kind="k", choices=choices, meta=meta)


@pytest.mark.parametrize(
    "prediction,truth,expected",
    [
        ("<think>the big one is a cube</think> cube", sample("B", SHAPES), True),
        ("B", sample("B", SHAPES), True),
        ("(b)", sample("B", SHAPES), True),
        ("<think>...</think> sphere", sample("B", SHAPES), False),
        ("Yes, it is.", sample("yes"), True),
        ("No", sample("yes"), False),
        ("the answer is two", sample("2"), True),
        ("2.0", sample("2"), True),
        ("\\boxed{\\frac{1}{2}}", sample("0.5"), True),
        ("1.46", sample("1.5", precision=1.0), True),  # MathVista: compared at 1 decimal
        ("1.44", sample("1.5", precision=1.0), False),
        ("1.46", sample("1.5"), False),  # no precision: exact up to 1e-6
        ("The answer is the Cube.", sample("cube"), True),
        ("metal", sample("rubber"), False),
        (None, sample("yes"), False),
        ("I cannot tell", sample("3"), False),
    ],
)
def test_is_correct(prediction, truth, expected):
    assert is_correct(prediction, truth) is expected


@pytest.mark.parametrize(
    "truth,fmt",
    [
        (sample("A", ("x", "y")), "choice"),
        (sample("no"), "yesno"),
        (sample("1,000"), "number"),
        (sample("red"), "text"),
    ],
)
def test_answer_format(truth, fmt):
    assert answer_format(truth) == fmt


# ---------------------------------------------------------------------------------------------
# Metrics, against values worked out by hand.
# ---------------------------------------------------------------------------------------------

# Binary example. Positive "yes":
#   i:     0    1    2    3    4    5    6    7
#   ref:   yes  yes  yes  no   no   no   no   yes
#   pred:  yes  no   yes  yes  no   no   yes  yes
#   tp (pred yes, ref yes) = i 0, 2, 7 -> 3; fp (pred yes, ref no) = i 3, 6 -> 2;
#   fn (pred no, ref yes)  = i 1      -> 1; correct = i 0, 2, 4, 5, 7 -> 5 of 8.
#   precision = 3/5, recall = 3/4, F1 = 2 * 0.6 * 0.75 / (0.6 + 0.75) = 0.9 / 1.35 = 2/3.
#   Positive "no": tp = i 4, 5 -> 2; fp = i 1 -> 1; fn = i 3, 6 -> 2; P = 2/3, R = 1/2, F1 = 4/7.
BIN_REF = ["yes", "yes", "yes", "no", "no", "no", "no", "yes"]
BIN_PRED = ["yes", "no", "yes", "yes", "no", "no", "yes", "yes"]


def test_accuracy_by_hand():
    assert accuracy(BIN_PRED, BIN_REF) == pytest.approx(5 / 8)
    assert accuracy(["a", None, "c"], ["a", "b", "b"]) == pytest.approx(1 / 3)  # None is wrong


def test_binary_f1_by_hand():
    precision, recall = 3 / 5, 3 / 4
    assert binary_f1(BIN_PRED, BIN_REF) == pytest.approx(2 * precision * recall / (precision + recall))
    assert binary_f1(BIN_PRED, BIN_REF) == pytest.approx(2 / 3)
    assert binary_f1(BIN_PRED, BIN_REF, positive="no") == pytest.approx(4 / 7)


def test_binary_f1_undefined_is_zero():
    assert binary_f1(["no", "no"], ["no", "no"]) == 0.0  # no positive anywhere: zero_division=0
    assert binary_f1(["no", None], ["yes", "yes"]) == 0.0  # tp = 0, fn = 2
    assert binary_f1(["yes", "no"], ["no", "no"]) == 0.0  # tp = 0, fp = 1


def test_weighted_f1_three_classes_by_hand():
    # ref:  cat cat cat dog dog  bird
    # pred: cat cat dog dog bird bird
    # cat:  tp 2, fp 0, fn 1 (cat -> dog)   P 1,   R 2/3 -> F1 = 4 / (4 + 0 + 1) = 0.8,  support 3
    # dog:  tp 1, fp 1 (cat), fn 1 (-> bird) P 1/2, R 1/2 -> F1 = 2 / (2 + 1 + 1) = 0.5,  support 2
    # bird: tp 1, fp 1 (dog), fn 0           P 1/2, R 1   -> F1 = 2 / (2 + 1 + 0) = 2/3, support 1
    # weighted = (3 * 0.8 + 2 * 0.5 + 1 * 2/3) / 6 = (2.4 + 1 + 0.6667) / 6 = 0.67778
    ref = ["cat", "cat", "cat", "dog", "dog", "bird"]
    pred = ["cat", "cat", "dog", "dog", "bird", "bird"]
    assert weighted_f1(pred, ref) == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert weighted_f1(pred, ref) == pytest.approx(0.677777777)


def test_weighted_f1_prediction_only_labels_weigh_zero():
    # ref:  a a b b ; pred: a c b None
    # a: tp 1, fp 0, fn 1 -> F1 = 2/3 (support 2); b: tp 1, fp 0, fn 1 -> 2/3 (support 2);
    # c and None: support 0, weight 0 -> weighted = (2 * 2/3 + 2 * 2/3) / 4 = 2/3
    assert weighted_f1(["a", "c", "b", None], ["a", "a", "b", "b"]) == pytest.approx(2 / 3)


def test_weighted_f1_perfect_and_all_wrong():
    assert weighted_f1(["x", "y", "y"], ["x", "y", "y"]) == 1.0
    assert weighted_f1(["y", "x"], ["x", "y"]) == 0.0


@pytest.mark.parametrize("metric", [accuracy, binary_f1, weighted_f1])
def test_metrics_reject_empty_and_mismatched(metric):
    with pytest.raises(FacLensError, match="both are empty"):
        metric([], [])
    with pytest.raises(FacLensError, match="2 predictions, 3 references"):
        metric(["a", "b"], ["a", "b", "c"])


def test_per_kind_by_hand():
    records = [
        ("count", "2", "2"),
        ("count", "3", "2"),
        ("exist", "yes", "yes"),
        {"kind": "exist", "prediction": "no", "reference": "yes"},
        {"kind": "exist", "prediction": "yes", "reference": "no"},
        ("color", "red", "red"),
    ]
    assert per_kind(records) == pytest.approx({"color": 1.0, "count": 0.5, "exist": 1 / 3})
    assert list(per_kind(records)) == ["color", "count", "exist"]
    # exist, positive "yes": tp 1, fp 1, fn 1 -> F1 = 2 / (2 + 1 + 1) = 0.5
    assert per_kind(records, partial(binary_f1, positive="yes"))["exist"] == pytest.approx(0.5)


def test_per_kind_rejects_bad_records():
    with pytest.raises(FacLensError, match="no records"):
        per_kind([])
    with pytest.raises(FacLensError, match="kind, prediction, reference"):
        per_kind([("count", "2")])
    with pytest.raises(FacLensError, match="lacks the key 'reference'"):
        per_kind([{"kind": "count", "prediction": "2"}])


# --- Appendix G: the reported F1 of records --------------------------------------------------------


def _records(answers, predicted, choices=()):
    return [
        {"answer": a, "predicted": p, "correct": p == a, "choices": list(choices)}
        for a, p in zip(answers, predicted, strict=True)
    ]


def test_always_yes_model_weighted_f1_is_half_the_binary_f1():
    answers = ["yes"] * 4 + ["no"] * 4
    predicted = ["yes"] * 8
    # binary (positive "yes"): tp 4, fp 4, fn 0 -> 2*4 / (2*4 + 4 + 0) = 2/3
    assert binary_f1(predicted, answers) == pytest.approx(2 / 3)
    # weighted: F1(yes) = 2/3 with support 4, F1(no) = 0 with support 4 -> (4 * 2/3 + 4 * 0) / 8 = 1/3
    assert reported_f1(_records(answers, predicted)) == pytest.approx(1 / 3)
    assert f1_scheme(_records(answers, predicted)) == "binary"


def test_multiple_choice_reported_f1_by_hand():
    answers = ["A", "A", "B", "C"]
    predicted = ["A", "B", "B", None]  # None: no letter found
    records = _records(answers, predicted, choices=("x", "y", "z"))
    assert f1_scheme(records) == "multiple_choice"
    # A: tp 1, fp 0, fn 1 -> 2/3 (support 2); B: tp 1, fp 1, fn 0 -> 2/3 (support 1); C: tp 0 -> 0
    assert reported_f1(records) == pytest.approx((2 * 2 / 3 + 1 * 2 / 3 + 0) / 4)


def test_binary_labels_follow_correctness_and_drop_non_labels():
    records = [
        {"answer": "yes", "predicted": "Yes.", "correct": True, "choices": []},
        {"answer": "no", "predicted": "maybe", "correct": False, "choices": []},
        {"answer": "no", "predicted": "yes", "correct": False, "choices": []},
    ]
    assert f1_labels(records) == (["yes", None, "yes"], ["yes", "no", "no"])


def test_free_form_and_mixed_records_have_no_f1():
    mixed = _records(["yes", "3"], ["yes", "3"])
    assert f1_scheme(mixed) is None and f1_labels(mixed) is None
    assert math.isnan(reported_f1(mixed))
