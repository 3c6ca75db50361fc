"""Every notebook runs top to bottom on the embedded default (outputs not compared), and the
committed notebooks carry no outputs (so they diff cleanly)."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[notebook]'")
nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[notebook]'")

NOTEBOOKS = sorted(Path("notebooks").glob("*.ipynb"))
pytestmark = pytest.mark.skipif(
    not Path("data/models/fac-tiny/model.safetensors").exists(), reason="fac-tiny not trained"
)


def test_the_three_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names[:3] == ["01_explore_heads.ipynb", "02_regenerate_figures.ipynb", "03_case_study.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path}: clear outputs before committing"
            )


# fac-smol's notebook needs the converted parts (`make smol`, which CI runs before the slow tests)
NEEDS_SMOL = ("04_fac_smol_hallucination",)
RUNNABLE = [pytest.param(p, marks=pytest.mark.slow) if p.stem in NEEDS_SMOL else p for p in NOTEBOOKS]


def _require_smol() -> None:
    from fac_lens.embedded.smol.build import cached_parts
    from fac_lens.errors import FacLensError

    try:
        cached_parts()
    except FacLensError as e:
        pytest.skip(str(e))
    if not Path("data/models/fac-smol/projector.safetensors").exists():
        pytest.skip("fac-smol's projector is not trained (make train-smol)")


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    _run(path, tmp_path, monkeypatch, smol=path.stem in NEEDS_SMOL)


@pytest.mark.slow
def test_causal_notebook_runs_with_its_fac_smol_section(tmp_path, monkeypatch):
    _run(Path("notebooks/05_causal_head_analysis.ipynb"), tmp_path, monkeypatch, smol=True)


def _run(path: Path, tmp_path, monkeypatch, smol: bool) -> None:
    if smol:
        _require_smol()
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # write figures and results under tmp, not into the repository
        if cell.cell_type == "code":
            cell.source = cell.source.replace("'results/notebook.sqlite'", repr(str(tmp_path / "nb.sqlite")))
            cell.source = cell.source.replace("'figures/notebook'", repr(str(tmp_path / "figures")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FAC_LENS_NOTEBOOK_SMOL", "1" if smol else "0")  # 05's fac-smol section
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # the kernel starts in an empty folder: embedded models and data are found from any directory
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    if path.stem.startswith("02"):
        assert len(list((tmp_path / "figures").glob("*.png"))) >= 6
