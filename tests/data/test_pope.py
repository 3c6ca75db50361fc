"""POPE-style probes: checked against the scene descriptions by an independent reading."""

from __future__ import annotations

from collections import Counter

import pytest

from fac_lens.data.pope import VARIANTS, pope_samples
from fac_lens.data.synthetic import samples
from fac_lens.errors import FacLensError


@pytest.fixture(scope="module")
def probes():
    base = list(samples("validation", 24))
    return base, pope_samples(base)


def _present(scene: dict) -> set[tuple[str, str]]:
    return {(o["color"], o["shape"]) for o in scene["objects"]}


def test_balanced_yes_and_no_per_scene_and_variant(probes) -> None:
    base, out = probes
    assert len(out) == len(base) * len(VARIANTS) * 2
    counts = Counter((p.meta["pope"], p.answer) for p in out)
    assert set(counts.values()) == {len(base)}


def test_answers_agree_with_the_scene(probes) -> None:
    _, out = probes
    for probe in out:
        color, shape = probe.question.removeprefix("is there a ").removesuffix(" ?").split()
        assert ((color, shape) in _present(probe.meta["scene"])) == (probe.answer == "yes"), probe.id
        assert probe.meta["target"].endswith(f"</think> {probe.answer}")


def test_adversarial_probes_share_an_attribute_with_a_present_object(probes) -> None:
    _, out = probes
    for probe in out:
        if probe.meta["pope"] == "adversarial" and probe.answer == "no":
            color, shape = probe.meta["probe"].split()
            assert any(c == color or s == shape for c, s in _present(probe.meta["scene"])), probe.id


def test_popular_probes_pick_the_most_frequent_absent_pair(probes) -> None:
    base, out = probes
    popularity = Counter(pair for s in base for pair in _present(s.meta["scene"]))
    for probe in out:
        if probe.meta["pope"] == "popular" and probe.answer == "no":
            pair = tuple(probe.meta["probe"].split())
            absent_counts = [n for p, n in popularity.items() if p not in _present(probe.meta["scene"])]
            assert popularity[pair] == max(absent_counts, default=0), probe.id


def test_deterministic_from_the_seed(probes) -> None:
    base, out = probes
    again = pope_samples(base)
    assert [(p.id, p.question) for p in again] == [(p.id, p.question) for p in out]


def test_samples_without_scenes_are_refused() -> None:
    from fac_lens.data.sample import Sample

    plain = Sample(id="x", image=None, question="q", answer="a", kind="other", source="csv", meta={})
    with pytest.raises(FacLensError, match="no scene description"):
        pope_samples([plain])
    base = list(samples("validation", 2))
    with pytest.raises(FacLensError, match="unknown POPE variant"):
        pope_samples(base, variants=("frequent",))


def test_pope_breakdown_by_hand() -> None:
    from fac_lens.embedded.smol.study import pope_breakdown

    def record(variant: str, answer: str, predicted: str | None) -> dict:
        return {
            "sample_id": f"test-000001-pope-{variant}-{answer}",
            "answer": answer,
            "predicted": predicted,
            "correct": predicted == answer,
        }

    records = [
        record("random", "yes", "yes"),
        record("random", "no", "no"),
        record("adversarial", "yes", "yes"),
        record("adversarial", "no", "yes"),  # a hallucinated object
        record("adversarial", "yes", None),  # no answer: counts as a miss and as not "yes"
        record("adversarial", "no", "no"),
    ]
    out = pope_breakdown(records)
    assert set(out) == {"random", "adversarial"}
    assert out["random"] == {"n": 2, "accuracy": 1.0, "f1": 1.0, "yes_ratio": 0.5}
    adversarial = out["adversarial"]
    # yes positive: tp 1 (first), fp 1 (the hallucination), fn 1 (no answer) -> P = R = 1/2, F1 = 1/2
    assert adversarial["n"] == 4 and adversarial["accuracy"] == 0.5
    assert adversarial["f1"] == pytest.approx(0.5) and adversarial["yes_ratio"] == 0.5
