"""Loading from directories, the HF cache and model objects; offline, without installs."""

import subprocess
import sys

import pytest
import torch
from PIL import Image

import fac_lens as fl
from fac_lens.testing import save_tiny_checkpoint, tiny_inputs, tiny_qwen2_5_vl
from tests.references import reference_logits


@pytest.fixture
def no_subprocess(monkeypatch):
    """Any attempt to run pip (or anything else) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    for name in ("check_call", "call", "run", "Popen", "check_output"):
        monkeypatch.setattr(subprocess, name, refuse)


def red_square(size=56):
    return Image.new("RGB", (size, size), (220, 30, 30))


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "llava"])
def test_load_directory_prepare_and_analyse(tmp_path, kind, no_subprocess):
    save_tiny_checkpoint(tmp_path, kind)
    model = fl.load(tmp_path)
    assert model.processor is not None and model.tokenizer is not None
    inputs = model.prepare(red_square(), "what color is the cube ?")
    n_image = int((inputs["input_ids"] == model.image_token_id).sum())
    if kind == "qwen2_5_vl":
        grid = inputs["image_grid_thw"][0]
        assert n_image == int(grid.prod()) // 4
        assert torch.equal(inputs["mm_token_type_ids"], (inputs["input_ids"] == model.image_token_id).int())
    else:
        assert n_image == 16
    ratios = fl.attention_ratios(model, inputs)
    assert ratios.visual.shape == (model.n_layers, model.n_heads)
    out = fl.generate(model, inputs, max_new_tokens=4)
    assert isinstance(out.text, list) and len(out.text) == 1
    batch = model.prepare([red_square(), red_square(84)], ["what color ?", "how many objects are there ?"])
    assert batch["input_ids"].shape[0] == 2 and bool((batch["attention_mask"][:, -1] == 1).all())


def test_load_hub_id_from_local_cache_only(tmp_path, no_subprocess):
    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--tiny-vl" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_tiny_checkpoint(snapshot, "qwen2_5_vl")
    (cache / "models--acme--tiny-vl" / "refs").mkdir()
    (cache / "models--acme--tiny-vl" / "refs" / "main").write_text("0" * 40)
    model = fl.load("acme/tiny-vl", cache_dir=str(cache))
    assert model.n_layers == 4
    with pytest.raises(fl.FacLensError, match="never downloads"):
        fl.load("acme/not-in-cache", cache_dir=str(cache))


def test_load_dtype(tmp_path):
    save_tiny_checkpoint(tmp_path, "llava")
    model = fl.load(tmp_path, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16


def test_bare_model_object_works_on_raw_dicts(no_subprocess):
    import copy

    hf = tiny_qwen2_5_vl(seed=3)
    reference = copy.deepcopy(hf)
    model = fl.load(hf)
    assert model.processor is None
    inputs = tiny_inputs(hf, batch=1)
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward(inputs).logits, reference_logits(reference, inputs), atol=1e-5, rtol=0
        )
    with pytest.raises(fl.FacLensError, match="no processor"):
        model.prepare(red_square(), "what")
    with pytest.raises(fl.FacLensError, match="already wrapped"):
        fl.load(hf)


def test_transformer_lens_state_is_restored_after_load():
    from transformer_lens.factories.architecture_adapter_factory import ArchitectureAdapterFactory
    from transformer_lens.model_bridge.sources.transformers import helpers
    from transformer_lens.model_bridge.supported_architectures.llava import LlavaArchitectureAdapter
    from transformer_lens.model_bridge.supported_architectures.qwen2_5_vl import Qwen2_5_VLArchitectureAdapter

    ensure = helpers._ensure_torchvision
    fl.load(tiny_qwen2_5_vl())
    adapters = ArchitectureAdapterFactory._adapters
    assert adapters["Qwen2_5_VLForConditionalGeneration"] is Qwen2_5_VLArchitectureAdapter
    assert adapters["LlavaForConditionalGeneration"] is LlavaArchitectureAdapter
    assert Qwen2_5_VLArchitectureAdapter.required_libraries == ["torchvision"]
    assert helpers._ensure_torchvision is ensure


@pytest.mark.parametrize("arch", ["kimi_k25", "smolvlm", "qwen2_vl"])
def test_adapters_transformer_lens_lacks_are_registered_only_during_the_build(arch):
    """Kimi-K2.5, SmolVLM and Qwen2-VL have no transformer-lens adapter: fac_lens registers its own
    through transformer-lens's register_adapter for the build, and removes it afterwards."""
    from transformer_lens.factories.architecture_adapter_factory import ArchitectureAdapterFactory

    from tests.conftest import BUILDERS

    hf = BUILDERS[arch]()
    name = type(hf).__name__
    seen = []
    original = ArchitectureAdapterFactory.register_adapter.__func__

    def spy(cls, architecture, adapter):
        seen.append((architecture, adapter))
        return original(cls, architecture, adapter)

    ArchitectureAdapterFactory.register_adapter = classmethod(spy)
    try:
        model = fl.load(hf)
    finally:
        ArchitectureAdapterFactory.register_adapter = classmethod(original)
    assert seen == [(name, model.spec.adapter_class)]
    assert name not in ArchitectureAdapterFactory._adapters
    z = []
    inputs = tiny_inputs(hf, batch=1)
    with (
        torch.no_grad(),
        model.bridge.hooks(fwd_hooks=[("blocks.0.attn.hook_z", lambda t, hook: z.append(t))]),
    ):
        model.forward(inputs)
    assert z[0].shape == (1, inputs["input_ids"].shape[1], model.n_heads, model.d_head)


def test_unsupported_architecture_names_the_supported_ones():
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
        )
    )
    with pytest.raises(fl.FacLensError, match="Qwen2_5_VLForConditionalGeneration.*fac_lens/architectures"):
        fl.load(hf)


def test_prompt_without_image_is_refused_and_model_untouched():
    model = fl.load(tiny_qwen2_5_vl())
    inputs = tiny_inputs(model.hf, batch=1)
    with torch.no_grad():
        before = model.forward(inputs).logits
    text_only = {
        "input_ids": torch.tensor([[5, 6, 7, 8]]),
        "attention_mask": torch.ones(1, 4, dtype=torch.long),
    }
    with pytest.raises(fl.FacLensError, match="no image tokens"):
        fl.attention_ratios(model, text_only)
    with pytest.raises(fl.FacLensError, match="does not match input_ids"):
        fl.attention_ratios(model, {**inputs, "attention_mask": torch.ones(1, 3)})
    with pytest.raises(fl.FacLensError, match="query set"):
        fl.attention_ratios(model, inputs, query="first")
    with torch.no_grad():
        assert torch.equal(model.forward(inputs).logits, before)


def test_import_has_no_side_effects():
    code = (
        "import fac_lens, sys\n"
        "from transformers import AttentionInterface\n"
        "assert 'fac_lens_sdpa' not in AttentionInterface._global_mapping\n"
        "assert 'transformer_lens' not in sys.modules, 'transformer_lens imported at import time'\n"
    )
    subprocess_run = subprocess.run  # the real one (no fixture here)
    result = subprocess_run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


QWEN_LIKE_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|> "
    "{% else %}{{ c['text'] }} {% endif %}{% endfor %}<|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def test_prepare_uses_the_chat_template_when_there_is_one(tmp_path):
    save_tiny_checkpoint(tmp_path, "qwen2_5_vl")
    model = fl.load(tmp_path)
    model.tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    model.processor.chat_template = QWEN_LIKE_TEMPLATE
    inputs = model.prepare(red_square(), "what color is the cube ?")
    text = model.tokenizer.decode(inputs["input_ids"][0])
    assert text.startswith("<|im_start|> user <|vision_start|> <|image_pad|>")
    assert text.rstrip().endswith("<|im_start|> assistant")
    plain = model.prepare(red_square(), "what color is the cube ?", chat=False)
    assert model.tokenizer.decode(plain["input_ids"][0]).startswith("<|vision_start|>")
