"""Nothing runs that the user did not ask for: no checkpoint code without ``trust_remote_code=True``
(and never a ``[y/N]`` prompt), and no network, whatever ``HF_HUB_OFFLINE`` says."""

import builtins
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from huggingface_hub import constants

import fac_lens as fl
from fac_lens.testing import save_tiny_checkpoint

REPO = Path(__file__).resolve().parents[2]
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def add_code(folder: Path, file: str, auto_class: str, module: str, marker: Path, **fields) -> None:
    """Name ``module.Remote`` in ``file``'s auto_map; importing the module writes ``marker``."""
    (folder / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nRemote = None\n")
    path = folder / file
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(fields, auto_map={auto_class: f"{module}.Remote"})
    path.write_text(json.dumps(data))


@pytest.fixture
def no_prompt(monkeypatch):
    """Every call of input() is recorded (transformers swallows what a failing input() raises)."""
    calls = []
    monkeypatch.setattr(builtins, "input", lambda *args: calls.append(args) or "y")
    return calls


NEEDED = [  # transformers has no class of its own for these: only the checkpoint's code loads them
    ("config.json", "AutoConfig", {"model_type": "fac_remote_tiny"}),
    ("processor_config.json", "AutoProcessor", {"processor_class": "FacRemoteProcessor"}),
    ("preprocessor_config.json", "AutoImageProcessor", {"image_processor_type": "FacRemoteImageProcessor"}),
]


@pytest.mark.parametrize(("file", "auto_class", "fields"), NEEDED, ids=lambda v: str(v))
def test_code_a_checkpoint_needs_is_refused_without_the_flag(tmp_path, no_prompt, file, auto_class, fields):
    folder, marker = tmp_path / "ckpt", tmp_path / "marker"
    save_tiny_checkpoint(folder, "qwen2_5_vl")
    add_code(folder, file, auto_class, "remote_code_here", marker, **fields)
    expected = rf"{folder}.*{file}: {auto_class} -> remote_code_here.Remote.*trust_remote_code=True"
    with pytest.raises(fl.FacLensError, match=expected):
        fl.load(folder)
    with pytest.raises(fl.FacLensError, match="trust_remote_code must be True or False"):
        fl.load(folder, trust_remote_code="yes")
    assert not marker.exists() and no_prompt == []


def test_a_processor_given_is_not_loaded(tmp_path, no_prompt):
    """The fix the processor refusal names: pass a processor; the checkpoint's is then not loaded."""
    from fac_lens.architectures.qwen_vl_processor import QwenVLProcessor

    folder, marker = tmp_path / "ckpt", tmp_path / "marker"
    save_tiny_checkpoint(folder, "qwen2_5_vl")
    processor = QwenVLProcessor.from_pretrained(str(folder))
    add_code(
        folder, "processor_config.json", "AutoProcessor", "remote_processor", marker, processor_class="X"
    )
    with pytest.raises(fl.FacLensError, match="or pass fl.load.*processor="):
        fl.load(folder)
    assert fl.load(folder, processor=processor).processor is processor
    assert not marker.exists() and no_prompt == []


NOT_NEEDED = [  # transformers has its own classes: they are used, the checkpoint's code is not run
    ("config.json", "AutoConfig"),
    ("tokenizer_config.json", "AutoTokenizer"),
]


@pytest.mark.parametrize(("file", "auto_class"), NOT_NEEDED)
def test_code_a_checkpoint_does_not_need_is_not_run(tmp_path, no_prompt, file, auto_class):
    folder, marker = tmp_path / "ckpt", tmp_path / "marker"
    save_tiny_checkpoint(folder, "qwen2_5_vl")
    add_code(folder, file, auto_class, "remote_code_here", marker)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fl.load(folder)
    assert model.tokenizer is not None
    assert not [w for w in caught if "trust_remote_code" in str(w.message)]  # no code runs: nothing to state
    assert not marker.exists() and no_prompt == []


def test_unknown_model_type_without_code_names_the_fix(tmp_path, no_prompt):
    save_tiny_checkpoint(tmp_path, "qwen2_5_vl")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "fac_unknown_tiny"}))
    with pytest.raises(
        fl.FacLensError, match="does not know model_type 'fac_unknown_tiny'.*upgrade transformers"
    ):
        fl.load(tmp_path)
    assert no_prompt == []


TRUSTED = """
import warnings, fac_lens as fl
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = fl.load({folder!r}, trust_remote_code=True)
print("WARNINGS", [(w.filename, str(w.message)) for w in caught if "trust_remote_code" in str(w.message)])
tokenizer = getattr(model.processor, "tokenizer", model.processor)  # AutoProcessor may give the tokenizer
print("CONFIG", type(model.hf.config).__name__, "TOKENIZER", type(tokenizer).__name__)
"""

REMOTE_CONFIG = """
open({marker!r}, "w").write("ran")
from transformers import Qwen2_5_VLConfig


class TinyRemoteConfig(Qwen2_5_VLConfig):
    pass
"""

REMOTE_TOKENIZER = """
open({marker!r}, "w").write("ran")
from transformers import PreTrainedTokenizerFast


class TinyRemoteTokenizer(PreTrainedTokenizerFast):
    pass
"""


def test_trusted_code_runs_and_is_stated(tmp_path):
    """With trust_remote_code=True the config's and the tokenizer's own classes are imported and
    used, and a warning names them (in a subprocess: transformers imports them into sys.path)."""
    folder = tmp_path / "ckpt"
    save_tiny_checkpoint(folder, "qwen2_5_vl")
    for module, source, file, entry in [
        ("remote_config", REMOTE_CONFIG, "config.json", {"AutoConfig": "remote_config.TinyRemoteConfig"}),
        (
            "remote_tokenizer",
            REMOTE_TOKENIZER,
            "tokenizer_config.json",
            {"AutoTokenizer": [None, "remote_tokenizer.TinyRemoteTokenizer"]},
        ),
    ]:
        (folder / f"{module}.py").write_text(source.format(marker=str(tmp_path / module)))
        data = json.loads((folder / file).read_text())
        (folder / file).write_text(json.dumps({**data, "auto_map": entry}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run(
        [sys.executable, "-c", TRUSTED.format(folder=str(folder))],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "remote_config").exists() and (tmp_path / "remote_tokenizer").exists()
    assert "WARNINGS [('<string>', 'trust_remote_code=True: " in result.stdout  # the caller's line
    assert "config.json: AutoConfig -> remote_config.TinyRemoteConfig" in result.stdout
    assert "tokenizer_config.json: AutoTokenizer -> remote_tokenizer.TinyRemoteTokenizer" in result.stdout
    assert "CONFIG TinyRemoteConfig TOKENIZER TinyRemoteTokenizer" in result.stdout


def test_hub_is_offline_during_load_and_restored_after(tmp_path, monkeypatch):
    import transformers
    from transformers import dynamic_module_utils

    prompt_timeout = dynamic_module_utils.TIME_OUT_REMOTE_CODE

    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    seen = []
    original = transformers.AutoConfig.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        offline = [constants.is_offline_mode(), *(os.environ.get(n) for n in OFFLINE_VARIABLES)]
        seen.append((offline, dynamic_module_utils.TIME_OUT_REMOTE_CODE, kwargs))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", classmethod(spy))
    save_tiny_checkpoint(tmp_path / "ckpt", "llava")
    fl.load(tmp_path / "ckpt")
    assert seen[0][:2] == ([True, "1", "1"], 0) and seen[0][2]["trust_remote_code"] is False
    cache = tmp_path / "hub"
    with pytest.raises(
        fl.FacLensError, match=rf"not in the local HF cache \(looked in {cache}\).*hf download"
    ):
        fl.load("acme/not-in-cache", cache_dir=str(cache))
    with pytest.raises(fl.FacLensError, match="no checkpoint folder at"):
        fl.load(str(tmp_path / "missing" / "folder"))
    assert constants.HF_HUB_OFFLINE is False
    assert all(name not in os.environ for name in OFFLINE_VARIABLES)
    assert dynamic_module_utils.TIME_OUT_REMOTE_CODE == prompt_timeout  # prompts are off only inside


NO_NETWORK = """
import os, sys
network = []


def refuse(event, args):
    if event.startswith("socket.") and event != "socket.__new__" or event.startswith("urllib"):
        network.append((event, repr(args)[:200]))
        raise OSError("test: network refused: " + event)


sys.addaudithook(refuse)
import torch
from huggingface_hub import constants
from PIL import Image

import fac_lens as fl
from fac_lens.cli import main

assert not constants.HF_HUB_OFFLINE and "HF_HUB_OFFLINE" not in os.environ
model = fl.load("fac-tiny")
try:
    fl.load("acme/not-in-any-cache")
    raise SystemExit("an unknown hub id loaded")
except fl.FacLensError as error:
    assert "not in the local HF cache" in str(error), error
inputs = model.prepare(Image.new("RGB", (56, 56), (220, 30, 30)), "what color is the cube ?")
try:
    model.prepare(["https://example.com/cube.png"], "what color is the cube ?")
    raise SystemExit("an image URL was accepted")
except fl.FacLensError as error:
    assert "never downloads" in str(error), error
ratios = fl.attention_ratios(model, inputs)
selection = fl.identify_heads(ratios, l_perc=1, l_reas=1, tau_perc=0.0, tau_reas=0.0)
with fl.rescale(model, fl.Gains.from_selection(selection, g_perc=1.2, g_reas=1.3)):
    fl.generate(model, inputs, max_new_tokens=3)
fl.contribution_map(model, inputs, target=int(inputs["input_ids"][0, -1]), position=-1)
assert main(["eval", "--limit", "2", "--max-new-tokens", "4", "--store", {store!r}]) == 0
assert not constants.HF_HUB_OFFLINE and "HF_HUB_OFFLINE" not in os.environ
print("NETWORK", network)
"""


def test_no_network_whatever_the_environment_says(tmp_path):
    """Sockets are refused by an audit hook (in a subprocess: hooks cannot be removed), with
    HF_HUB_OFFLINE unset and an empty HF cache; every call still works, and none tries to connect."""
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}
    env.update(PYTHONPATH=str(REPO), HF_HOME=str(tmp_path / "hf"), MPLBACKEND="Agg")
    script = NO_NETWORK.format(store=str(tmp_path / "store.sqlite"))
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "NETWORK []" in result.stdout, result.stdout[-2000:]
