"""Imports point down: the method core at the bottom, data beside it, views above, experiments and
the embedded models on top (README "Where things are"). Every import in every module is checked,
including imports inside functions."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fac_lens"
VIEWS = {"fac_lens.plotting", "fac_lens.compare", "fac_lens.case_study", "fac_lens.explorer"}
# layer -> the layers its modules may import (the facade fac_lens/__init__.py and the CLI may import all)
ALLOWED = {
    "core": {"core"},
    "testing": {"core", "testing"},
    "data": {"core", "data"},
    "views": {"core", "data", "views"},
    "experiments": {"core", "data", "views", "experiments"},
    "embedded": {"core", "testing", "data", "views", "experiments", "embedded"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str | None:
    """The layer of a fac_lens module; None for the facade and the CLI (top, may import all)."""
    if module in ("fac_lens", "fac_lens.cli"):
        return None
    if module in VIEWS or any(module.startswith(v + ".") for v in VIEWS):
        return "views"
    for wing in ("testing", "data", "experiments", "embedded"):
        if module == f"fac_lens.{wing}" or module.startswith(f"fac_lens.{wing}."):
            return wing
    return "core"


def imported_modules(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every fac_lens import in a file (relative ones resolved)."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "fac_lens"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "fac_lens":
                continue
            # `from . import x` / `from .pkg import mod` import submodules: check each name too
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names if _is_module(f"{target}.{a.name}")]
    return found


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative / "__init__.py").exists()


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down(path):
    source_layer = layer(module_name(path))
    if source_layer is None:
        return
    wrong = [
        f"line {line}: {target} ({layer(target)})"
        for line, target in imported_modules(path)
        if layer(target) is not None and layer(target) not in ALLOWED[source_layer]
    ]
    assert not wrong, f"{module_name(path)} ({source_layer}) imports upward: " + "; ".join(wrong)


def test_the_walk_sees_function_level_and_relative_imports(tmp_path):
    """The checker itself: upward imports inside functions, relative or absolute, are found."""
    fake = tmp_path / "ratios.py"
    fake.write_text(
        "import torch\nfrom .errors import FacLensError\n\n\ndef f():\n"
        "    from .experiments.runner import Experiment\n    from . import plotting\n"
        "    import fac_lens.embedded.paths\n"
    )
    found = [target for _, target in imported_modules(fake, "fac_lens.ratios")]
    assert found == [
        "fac_lens.errors",
        "fac_lens.experiments.runner",
        "fac_lens",
        "fac_lens.plotting",
        "fac_lens.embedded.paths",
    ]
    assert layer("fac_lens.experiments.runner") == "experiments"
    assert layer("fac_lens.embedded.smol.build") == "embedded"
    assert layer("fac_lens.compare") == "views" and layer("fac_lens.rescale") == "core"
    assert "views" not in ALLOWED["core"] and "experiments" not in ALLOWED["views"]
    assert "embedded" not in ALLOWED["experiments"]
