"""Training fac-tiny: a smoke test of a few steps, and the labels of the training batches."""

import csv
import math

import torch

import fac_lens as fl
from fac_lens.data.synthetic import make_sample
from fac_lens.embedded.train_tiny import build_processor, collate, train


def test_labels_cover_exactly_the_assistant_reply():
    processor = build_processor()
    batch = [make_sample("train", i) for i in range(4)]
    inputs = collate(processor, batch)
    for row, sample in enumerate(batch):
        labels = inputs["labels"][row]
        reply = processor.tokenizer.decode(labels[labels != -100])
        assert reply == f"{sample.meta['target']} <|im_end|>"
    image = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert torch.equal(inputs["mm_token_type_ids"], (inputs["input_ids"] == image).int())
    assert int(inputs["mm_token_type_ids"][0].sum()) == 25  # 140 x 140 -> 10 x 10 patches -> 25 tokens


def test_a_few_training_steps_save_a_checkpoint_that_loads_like_a_real_one(tmp_path):
    out = tmp_path / "fac-tiny"
    loss = train(out, steps=3, batch_size=4, lr=1e-3, seed=0, log_every=1)
    assert math.isfinite(loss)
    with (out / "training_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    model = fl.load(out)
    sample = make_sample("test", 3)
    inputs = model.prepare(sample.image, sample.question)
    assert int((inputs["input_ids"] == model.image_token_id).sum()) == 25
    text = model.tokenizer.decode(inputs["input_ids"][0])
    assert text.startswith("<|im_start|> user <|vision_start|>") and text.rstrip().endswith("assistant")
    out_text = fl.generate(model, inputs, max_new_tokens=3).text
    assert isinstance(out_text[0], str)
