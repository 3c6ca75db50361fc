"""The README's supported-models matrix, generated from the contract tests.

    python tools/supported_models.py            # run the contract tests, rewrite the README matrix
    python tools/supported_models.py --check    # run them, exit 1 if the README matrix differs
    python tools/supported_models.py --results outcomes.json [--check]   # use saved outcomes

Rows are the architectures registered in ``fac_lens/architectures/__init__.py``; a cell is the
outcome of every test marked ``contract(<part>)`` for that architecture (tests/conftest.py records
them; ``tests/core/test_supported_models.py`` fails when the README differs from a full test run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
README = ROOT / "README.md"
START, END = "<!-- supported-models:start -->", "<!-- supported-models:end -->"
PARTS = (
    "ratios",
    "identification",
    "static",
    "dynamic",
    "contribution",
    "generation",
    "normalized ratio",
    "concentration",
    "ablation",
    "erasure",
    "patching",
    "per-layer gains",
    "config search",
    "image_attention",
    "vcd",
    "pai",
    "vaf",
    "midlayer",
    "cgd",
    "agla",
)
CONTRACT_TESTS = [
    "tests/core/test_ratios.py",
    "tests/core/test_rescale.py",
    "tests/core/test_contribution.py",
    "tests/core/test_generation.py",
    "tests/core/test_normalized_ratios.py",
    "tests/core/test_concentration.py",
    "tests/core/test_ablation.py",
    "tests/core/test_erasure.py",
    "tests/core/test_patching.py",
    "tests/core/test_layer_gains.py",
    "tests/core/test_config_search.py",
    "tests/core/test_image_attention.py",
    "tests/core/test_baseline_vcd.py",
    "tests/core/test_baseline_pai.py",
    "tests/core/test_baseline_attention.py",
    "tests/core/test_baseline_scored.py",
]
PASS, FAIL, UNTESTED = "✓", "✗", "—"


def architectures() -> dict[str, str]:
    """Test id (the module name in fac_lens/architectures) -> HF class, in registry order."""
    from fac_lens.architectures import _MODULES

    return {module: hf_class for hf_class, module in _MODULES.items()}


def adapter_cell(hf_class: str) -> str:
    """Whether fac_lens uses transformer-lens's own adapter, a subclass of it, or its own."""
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES

    from fac_lens.architectures import spec_for

    ours = spec_for(hf_class).adapter_class
    stock = SUPPORTED_ARCHITECTURES.get(hf_class)
    if stock is ours:
        return "stock"
    if stock is not None and issubclass(ours, stock):
        return f"stock `{stock.__name__}`, fac_lens subclass"
    base = next((c for c in ours.__mro__[1:] if c.__module__.startswith("transformer_lens")), None)
    origin = f", from `{base.__name__}`" if base is not None else ""
    return f"fac_lens `{ours.__name__}` (none in transformer-lens{origin})"


def status(counts: dict[str, int] | None) -> str:
    if not counts:
        return UNTESTED
    if counts.get("failed"):
        return f"{FAIL} {counts['failed']} failed"
    return PASS if counts.get("passed") else UNTESTED


def render(results: dict[str, dict[str, dict[str, int]]]) -> str:
    """The Markdown table, from ``{arch: {part: {"passed": n, "failed": n, ...}}}``."""
    from fac_lens.architectures import spec_for

    header = ["architecture", "HF class", "TL adapter", *PARTS, "known limits"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arch, hf_class in architectures().items():
        cells = [status(results.get(arch, {}).get(part)) for part in PARTS]
        limits = spec_for(hf_class).known_limits or UNTESTED
        lines.append(
            "| " + " | ".join([f"`{arch}`", f"`{hf_class}`", adapter_cell(hf_class), *cells, limits]) + " |"
        )
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """The table between the README markers."""
    if START not in text or END not in text:
        raise SystemExit(f"README.md lacks the markers {START} ... {END}")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def with_table(text: str, table: str) -> str:
    head, rest = text.split(START, 1)
    return f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}"


def run_contract_tests() -> dict:
    """Run the contract tests in a subprocess; their per-architecture outcomes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "outcomes.json")
        env = dict(os.environ, FAC_LENS_CONTRACT_JSON=path, HF_HUB_OFFLINE="1")
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CONTRACT_TESTS],
            cwd=ROOT,
            env=env,
            check=False,
        )
        with open(path) as handle:
            return json.load(handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", help="outcomes saved by a test run (FAC_LENS_CONTRACT_JSON)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README matrix differs")
    args = parser.parse_args(argv)
    if args.results:
        with open(args.results) as handle:
            results = json.load(handle)
    else:
        results = run_contract_tests()
    table = render(results)
    text = README.read_text()
    if args.check:
        if readme_table(text) != table:
            print("README supported-models matrix is out of date; run python tools/supported_models.py")
            print(table)
            return 1
        return 0
    README.write_text(with_table(text, table))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
