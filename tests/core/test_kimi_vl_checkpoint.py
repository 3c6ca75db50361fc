"""Kimi-VL checkpoints (``model_type`` "kimi_vl", remote code beside the weights) load onto
transformers' own classes without running that code, and compute what Kimi-VL computes.

The folder is written in the layout of a real download (config.json field names, safetensors names
in two shards with an index, processor/tokenizer configs naming remote classes, remote ``*.py``
files that leave a marker and raise if imported). References: the native model the folder was
written from, and a hand-written MoonViT + projector forward on the checkpoint's own tensors
(Kimi-VL's equations: complex 2-D RoPE on adjacent channel pairs, bicubic position-grid resampling,
fused qkv, 2 x 2 patch merge, LayerNorm-GELU projector), which goes through no fac_lens code.
"""

import copy
import json
import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import fac_lens as fl
from fac_lens.architectures.kimi_vl_checkpoint import DictSource, build
from fac_lens.testing import tiny_inputs
from fac_lens.testing.kimi_vl import REMOTE_FILES, kimi_vl_config, native_kimi_vl, save_tiny_kimi_vl
from tests.references import dynamic_reference

TOL = 1e-5  # float32, same operations in another order (SDPA vs eager, per-image attention)


@pytest.fixture(scope="module")
def native():
    return native_kimi_vl(seed=0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, native):
    path = tmp_path_factory.mktemp("kimi_vl")
    save_tiny_kimi_vl(path, hf=native)
    return path


def test_a_kimi_vl_folder_loads_without_running_its_code(folder, native):
    before = set(sys.modules)
    model = fl.load(folder)
    assert not list(folder.glob("*.was_imported")), "a remote-code file of the checkpoint was executed"
    assert not [m for m in set(sys.modules) - before if "kimi_vl" in m and "fac_lens" not in m]
    assert {p.name for p in folder.glob("*.py")} >= set(REMOTE_FILES)
    assert type(model.hf).__module__ == "fac_lens.architectures.kimi_vl"
    assert model.processor is None  # its processor is remote code; not trusted
    raw = kimi_vl_config()
    text = raw["text_config"]
    assert (model.n_layers, model.n_heads, model.d_head) == (
        text["num_hidden_layers"],
        text["num_attention_heads"],
        text["v_head_dim"],
    )
    assert model.image_token_id == raw["media_placeholder_token_id"]
    inputs = tiny_inputs(native, batch=2, padded=True)
    with torch.no_grad():
        loaded, expected = model.hf(**inputs).logits, native(**inputs).logits
    torch.testing.assert_close(loaded, expected, atol=TOL, rtol=0)


def test_the_kimi_vl_processor_grid_key_is_taken_as_the_native_one(folder, native):
    """``image_grid_hws`` [n, 2] (Kimi-VL's processor) == ``image_grid_thw`` [n, 3] with t = 1:
    in a plain forward, in generate, and through fac_lens (which calls the multimodal core directly)."""
    thw = tiny_inputs(native, batch=2, padded=True)
    hws = dict(thw, image_grid_hws=thw["image_grid_thw"][:, 1:])
    del hws["image_grid_thw"]
    with torch.no_grad():
        torch.testing.assert_close(native(**hws).logits, native(**thw).logits, atol=0, rtol=0)
        steps = dict(max_new_tokens=3, do_sample=False)
        assert torch.equal(native.generate(**hws, **steps), native.generate(**thw, **steps))
    model = fl.load(folder)
    ratios = [fl.attention_ratios(model, inputs, query="all").visual for inputs in (hws, thw)]
    torch.testing.assert_close(ratios[0], ratios[1], atol=0, rtol=0)


# ------------------------------------------------------------------ MoonViT by hand, from the checkpoint
def _layer_norm(x, t, prefix, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], t[prefix + ".weight"], t[prefix + ".bias"], eps)


def _linear(x, t, prefix):
    return F.linear(x, t[prefix + ".weight"], t[prefix + ".bias"])


def kimi_vl_image_features(t: dict, raw: dict, pixels: torch.Tensor, grids: list[tuple[int, int]]):
    """Kimi-VL's vision tower and projector on its own checkpoint tensors: [n_merged, text_hidden]."""
    vision = raw["vision_config"]
    width, heads = vision["hidden_size"], vision["num_attention_heads"]
    d = width // heads
    x = F.conv2d(pixels, t["vision_tower.patch_embed.proj.weight"], t["vision_tower.patch_embed.proj.bias"],
                 stride=vision["patch_size"]).flatten(1)  # fmt: skip
    grid_table = t["vision_tower.patch_embed.pos_emb.weight"]  # [H0, W0, D]
    positions, angles = [], []
    freqs = 1.0 / 10000 ** (torch.arange(0, d, 4)[: d // 4].float() / d)
    for h, w in grids:
        if (h, w) == tuple(grid_table.shape[:2]):
            positions.append(grid_table.flatten(0, 1))
        else:
            resized = F.interpolate(grid_table.permute(2, 0, 1)[None], size=(h, w), mode="bicubic")
            positions.append(resized[0].permute(1, 2, 0).flatten(0, 1))
        ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
        pair = torch.stack([xs.flatten()[:, None] * freqs, ys.flatten()[:, None] * freqs], dim=-1)
        angles.append(pair.flatten(1))  # channel pair 2i: column angle, 2i + 1: row angle
    x = x + torch.cat(positions)
    rotation = torch.polar(torch.ones_like(torch.cat(angles)), torch.cat(angles))[:, None, :]  # [L, 1, d/2]
    lengths = [h * w for h, w in grids]
    for i in range(vision["num_hidden_layers"]):
        p = f"vision_tower.encoder.blocks.{i}"
        q, k, v = _linear(_layer_norm(x, t, p + ".norm0"), t, p + ".wqkv").view(-1, 3, heads, d).unbind(1)
        q, k = (torch.view_as_real(torch.view_as_complex(z.reshape(*z.shape[:-1], -1, 2)) * rotation).flatten(-2)
                for z in (q, k))  # fmt: skip
        outs = []
        for qi, ki, vi in zip(q.split(lengths), k.split(lengths), v.split(lengths), strict=True):
            scores = torch.einsum("qhd,khd->hqk", qi, ki) / d**0.5
            outs.append(torch.einsum("hqk,khd->qhd", scores.softmax(-1), vi).flatten(1))
        x = x + _linear(torch.cat(outs), t, p + ".wo")
        hidden = F.gelu(_linear(_layer_norm(x, t, p + ".norm1"), t, p + ".mlp.fc0"), approximate="tanh")
        x = x + _linear(hidden, t, p + ".mlp.fc1")
    x = _layer_norm(x, t, "vision_tower.encoder.final_layernorm")
    kh, kw = vision["merge_kernel_size"]
    merged = [
        part.view(h // kh, kh, w // kw, kw, width).permute(0, 2, 1, 3, 4).reshape(-1, kh * kw, width)
        for part, (h, w) in zip(x.split(lengths), grids, strict=True)
    ]
    y = _layer_norm(torch.cat(merged), t, "multi_modal_projector.pre_norm").flatten(1)
    y = F.gelu(_linear(y, t, "multi_modal_projector.linear_1"))
    return _linear(y, t, "multi_modal_projector.linear_2")


def test_image_features_equal_kimi_vl_equations_on_the_checkpoint_tensors(folder):
    """Grids 4 x 6 (position grid resampled) and 8 x 8 (the stored grid itself)."""
    tensors = {}
    for shard in folder.glob("*.safetensors"):
        tensors.update(load_file(str(shard)))
    raw = json.loads((folder / "config.json").read_text())
    grids = [(4, 6), (8, 8)]
    pixels = torch.randn(sum(h * w for h, w in grids), 3, 14, 14, generator=torch.Generator().manual_seed(1))
    expected = kimi_vl_image_features(tensors, raw, pixels, grids)
    model = fl.load(folder)
    with torch.no_grad():
        out = model.hf.model.get_image_features(pixels, torch.tensor([[1, h, w] for h, w in grids]))
    got = torch.cat(out.pooler_output)
    assert (
        got.shape == expected.shape == (sum(h * w for h, w in grids) // 4, raw["text_config"]["hidden_size"])
    )
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


# ------------------------------------------------------------------------------------------ refusals
def _rewrite(folder, tmp_path, edit_tensors=None, edit_config=None):
    """A copy of the checkpoint with its tensors and/or config.json edited (one shard)."""
    tensors = {}
    for shard in folder.glob("*.safetensors"):
        tensors.update(load_file(str(shard)))
    raw = json.loads((folder / "config.json").read_text())
    if edit_tensors:
        edit_tensors(tensors)
    if edit_config:
        edit_config(raw)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(raw))
    return tmp_path


def _rename(tensors):
    tensors["vision_tower.encoder.blocks.0.out_proj.weight"] = tensors.pop(
        "vision_tower.encoder.blocks.0.wo.weight"
    )


def _reshape(tensors):
    name = "language_model.model.layers.1.self_attn.kv_b_proj.weight"
    tensors[name] = tensors[name][:-1]


def _drop_expert(tensors):
    del tensors["language_model.model.layers.2.mlp.experts.3.up_proj.weight"]


def _softmax_router(raw):
    raw["text_config"]["scoring_func"] = "softmax"


def _oblong_grid(raw):
    raw["vision_config"]["init_pos_emb_width"] = 6


@pytest.mark.parametrize(
    "edit_tensors, edit_config, named",
    [
        (_rename, None, ["vision_tower.encoder.blocks.0.out_proj.weight", "layers.0.attn.proj.weight"]),
        (_reshape, None, ["layers.1.self_attn.kv_b_proj.weight", "expected"]),
        (_drop_expert, None, ["model.language_model.layers.2.mlp.experts.gate_up_proj"]),
        (None, _softmax_router, ["scoring_func", "'softmax'"]),
        (None, _oblong_grid, ["init_pos_emb_height", "init_pos_emb_width"]),
    ],
    ids=["unknown-name", "shape", "missing-expert", "router", "position-grid"],
)
def test_a_checkpoint_that_differs_is_refused_naming_the_difference(
    folder, tmp_path, edit_tensors, edit_config, named
):
    bad = _rewrite(folder, tmp_path, edit_tensors, edit_config)
    with pytest.raises(fl.FacLensError) as error:
        fl.load(bad)
    for part in named:
        assert part in str(error.value)


def test_the_refusal_comes_before_any_weight_is_read(native):
    from fac_lens.testing.kimi_vl import kimi_vl_tensors

    tensors = kimi_vl_tensors(native)
    _reshape(tensors)
    source = DictSource(tensors)

    def never(name):
        raise AssertionError(f"read {name} before checking the layout")

    source.get = never
    with pytest.raises(fl.FacLensError, match="kv_b_proj"):
        build(kimi_vl_config(), source)


# ------------------------------------------------------------------------------------- the preset
def test_the_kimi_vl_preset_applies_to_a_loaded_checkpoint(tmp_path):
    """FacConfig.preset("Kimi-VL-A3B-Thinking") (l_reas 5, l_perc 10) on a 12-layer Kimi-VL folder:
    dynamic rescaling equals the paper's procedure done by hand in eager attention."""
    native = native_kimi_vl(seed=3, n_layers=12)
    reference = copy.deepcopy(native)
    reference.config.text_config._attn_implementation = "eager"
    save_tiny_kimi_vl(tmp_path, hf=native, n_layers=12)
    model = fl.load(tmp_path)
    cfg = fl.FacConfig.preset("Kimi-VL-A3B-Thinking")
    inputs = tiny_inputs(native, batch=1)
    fields = ("l_perc", "l_reas", "tau_perc", "tau_reas", "g_perc", "g_reas")
    with torch.no_grad():
        plain = model.hf(**inputs).logits
        with fl.rescale(model, cfg):
            rescaled = model.hf(**inputs).logits
        with dynamic_reference(
            reference, inputs["input_ids"], {f: getattr(cfg, f) for f in fields}, cfg.query
        ) as margins:
            expected = reference(**inputs).logits
    assert min(margins) > 1e-4  # no head's S_v sits on a threshold: the decisions are not rounding
    assert (rescaled - plain).abs().max() > 1e-3  # the preset selects heads in this model
    torch.testing.assert_close(rescaled, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(model.hf(**inputs).logits, plain, atol=0, rtol=0)  # left as it was


def test_dtype_is_the_checkpoints_unless_given(folder, native):
    """config.json's ``torch_dtype`` by default; ``dtype=`` for every part, tower and decoder alike,
    except the router weights, which transformers keeps in float32 (DeepSeek-V3's own rule)."""
    assert {p.dtype for p in fl.load(folder).hf.parameters()} == {torch.float32}
    model = fl.load(folder, dtype=torch.bfloat16)
    kept = [n for n, p in model.hf.named_parameters() if p.dtype != torch.bfloat16]
    assert kept and all(".gate." in n and n.endswith(".weight") and "expert" not in n for n in kept)
    inputs = tiny_inputs(native, batch=1)
    inputs["pixel_values"] = inputs["pixel_values"].bfloat16()
    with torch.no_grad():
        assert model.hf(**inputs).logits.dtype == torch.bfloat16


def test_a_missing_shard_is_refused_naming_it(folder, tmp_path):
    import shutil

    copy_dir = tmp_path / "partial"
    shutil.copytree(folder, copy_dir)
    (copy_dir / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(fl.FacLensError, match="model-00002-of-00002.safetensors"):
        fl.load(copy_dir)


def test_its_processor_code_runs_only_when_trusted(folder, monkeypatch):
    """Without trust_remote_code the Kimi-VL processor (remote code) is not touched; with it,
    transformers is asked for it with the flag, after a warning naming the files."""
    import transformers

    calls = []
    monkeypatch.setattr(
        transformers.AutoProcessor, "from_pretrained", lambda *a, **k: calls.append(k) or "processor"
    )
    assert fl.load(folder).processor is None and calls == []
    with pytest.warns(UserWarning, match="processing_kimi_vl.KimiVLProcessor"):
        model = fl.load(folder, trust_remote_code=True)
    assert model.processor == "processor" and calls[0]["trust_remote_code"] is True


A3B = dict(  # Kimi-VL-A3B's sizes (16B parameters in all, MoonViT ~0.4B); weights never materialised
    text=dict(hidden_size=2048, intermediate_size=11264, moe_intermediate_size=1408, num_hidden_layers=27,
              num_attention_heads=16, num_key_value_heads=16, n_routed_experts=64, num_experts_per_tok=6,
              n_shared_experts=2, kv_lora_rank=512, qk_rope_head_dim=64, qk_nope_head_dim=128,
              v_head_dim=128, vocab_size=163840, max_position_embeddings=131072, torch_dtype="bfloat16"),
    vision=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                init_pos_emb_height=64, init_pos_emb_width=64),
)  # fmt: skip


def test_the_table_covers_a_full_size_kimi_vl_exactly():
    """At Kimi-VL-A3B's size, on the meta device: every checkpoint name maps, every native tensor
    is filled exactly once, every shape agrees; 16.4B parameters, 0.4B of them MoonViT."""
    from transformers.initialization import no_init_weights

    from fac_lens.architectures.kimi_vl import KimiVLForConditionalGeneration
    from fac_lens.architectures.kimi_vl_checkpoint import native_config, plan
    from fac_lens.testing.kimi_vl import kimi_vl_tensors

    raw = kimi_vl_config()
    raw["text_config"].update(A3B["text"])
    raw["vision_config"].update(A3B["vision"])
    config = native_config(raw)
    with no_init_weights(), torch.device("meta"):
        hf = KimiVLForConditionalGeneration(config)
    shapes = {name: tuple(t.shape) for name, t in kimi_vl_tensors(hf).items()}
    pieces = plan(shapes, config, {name: t.shape for name, t in hf.state_dict().items()})
    assert len(pieces) == len(shapes) > 27 * 64 * 3
    assert sum(p.numel() for p in hf.parameters()) / 1e9 == pytest.approx(16.4, abs=0.05)
    assert sum(p.numel() for p in hf.model.vision_tower.parameters()) / 1e9 == pytest.approx(0.42, abs=0.01)
