"""The README's supported-models matrix is what the contract tests produce (run last: conftest)."""

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import BUILDERS, CONTRACT_RESULTS

ROOT = Path(__file__).resolve().parents[2]


def load_tool():
    spec = importlib.util.spec_from_file_location("supported_models", ROOT / "tools" / "supported_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def readme_table() -> str:
    return tool.readme_table((ROOT / "README.md").read_text())


def statuses_in(table: str) -> dict:
    """The outcomes a README table shows, in the form the tests record them."""
    results = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        arch = cells[0].strip("`")
        for part, cell in zip(tool.PARTS, cells[3 : 3 + len(tool.PARTS)], strict=True):
            if cell == tool.PASS:
                results.setdefault(arch, {})[part] = {"passed": 1}
            elif cell.startswith(tool.FAIL):
                results.setdefault(arch, {})[part] = {"failed": int(cell.split()[1])}
    return results


def test_every_registered_architecture_has_a_tiny_model_under_test():
    assert sorted(BUILDERS) == sorted(tool.architectures())


def test_readme_matrix_rows_match_the_registry():
    """Rows, HF classes, adapters and known limits, whatever the outcomes."""
    table = readme_table()
    assert tool.render(statuses_in(table)) == table, "run: python tools/supported_models.py"


def test_readme_matrix_matches_the_outcomes_of_this_run(request):
    results = request.config.stash[CONTRACT_RESULTS]
    missing = [(a, p) for a in BUILDERS for p in tool.PARTS if p not in results.get(a, {})]
    if missing:
        pytest.skip(
            f"{len(missing)} (architecture, part) pairs did not run in this session (make test runs all)"
        )
    assert tool.render(results) == readme_table(), "run: python tools/supported_models.py"
