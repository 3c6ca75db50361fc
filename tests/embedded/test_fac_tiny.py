"""fac-tiny, the embedded default: loads like a real checkpoint, and its documented accuracy holds."""

import json

import pytest

import fac_lens as fl
from fac_lens.data.synthetic import load_split
from fac_lens.embedded import paths
from fac_lens.embedded.tiny_card import SUBSET, card_summary, evaluate

MODEL = paths.fac_tiny()
TEST_SPLIT = paths.synthetic_test()
pytestmark = pytest.mark.skipif(
    not (MODEL / "model.safetensors").exists(), reason="fac-tiny not trained: make train-tiny"
)


@pytest.fixture(scope="module")
def fac_tiny():
    return fl.load(MODEL)


@pytest.fixture(scope="module")
def card():
    return json.loads((MODEL / "evaluation.json").read_text())["summary"]


def test_committed_weights_are_small_safetensors():
    weights = MODEL / "model.safetensors"
    assert weights.exists() and weights.stat().st_size <= 25 * 2**20


def test_loads_through_the_real_checkpoint_path(fac_tiny):
    assert fac_tiny.spec.hf_architecture == "Qwen2_5_VLForConditionalGeneration"
    assert (fac_tiny.n_layers, fac_tiny.n_heads, fac_tiny.n_kv_heads) == (6, 4, 2)
    assert fac_tiny.processor is not None and fac_tiny.processor.chat_template
    sample = next(iter(load_split(TEST_SPLIT)))
    inputs = fac_tiny.prepare(sample.image, sample.question)
    assert int((inputs["input_ids"] == fac_tiny.image_token_id).sum()) == 25
    trace = fl.generate(fac_tiny, inputs, max_new_tokens=48).text[0]
    assert trace.split()[0] == "<think>" and "</think>" in trace


def test_documented_accuracy_holds_on_the_fixed_subset(fac_tiny, card):
    subset = list(load_split(TEST_SPLIT))[:SUBSET]
    summary = card_summary(evaluate(fac_tiny, subset, progress=False))
    assert summary["accuracy"] == pytest.approx(card["subset"]["accuracy"], abs=2 / SUBSET)
    for kind, row in summary["per_kind"].items():
        assert row["accuracy"] == pytest.approx(
            card["subset"]["per_kind"][kind]["accuracy"], abs=2 / row["n"]
        )


def test_card_documents_a_model_that_both_succeeds_and_fails(card):
    assert 0.25 < card["accuracy"] < 1.0  # trained (chance is far lower) and still wrong at times
    assert card["errors"].get("perception", 0) > 0 and card["errors"].get("reasoning", 0) > 0
    text = (MODEL / "README.md").read_text()
    assert f"**{card['accuracy']:.1%}**" in text
    assert ("met." in text) == (0.70 <= card["accuracy"] <= 0.90)  # the 70-90% target is reported honestly
    for kind, row in card["per_kind"].items():
        assert f"| {kind} | {row['n']} | {row['accuracy']:.1%} |" in text
