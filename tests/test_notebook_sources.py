"""The walkthrough notebooks are pairs: ``notebooks/NN_name.py`` (jupytext py:percent, the source that ruff
lints and people edit) and ``notebooks/NN_name.ipynb`` (the same cells, executed, with their outputs).
These tests fail when a notebook lacks its pair, when the two disagree on any cell, or when the stored
notebook was not executed top to bottom after its last edit. The fix is in notebooks/README.md."""

from __future__ import annotations

import copy
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
IPYNB = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
FIX = "run `jupytext --sync notebooks/NN_name.py`, then re-execute (see notebooks/README.md)"


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def differences(source: nbformat.NotebookNode, executed: nbformat.NotebookNode) -> list[str]:
    """Where the cells of the py:percent source and of the stored notebook differ (empty: in sync)."""
    a, b = cells(source), cells(executed)
    found = [
        f"cell {i}: {x!r} in the .py, {y!r} in the .ipynb" for i, (x, y) in enumerate(zip(a, b)) if x != y
    ]
    if len(a) != len(b):
        found.append(f"{len(a)} cells in the .py, {len(b)} in the .ipynb")
    return found


def test_every_notebook_has_its_source_and_back():
    assert IPYNB, f"no notebooks found in {NOTEBOOKS}"
    assert [p.stem for p in IPYNB] == [p.stem for p in SOURCES]


def test_the_pairing_is_configured_for_jupytext():
    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(NOTEBOOKS)))
    assert config.formats in ("ipynb,py:percent", ["ipynb,py:percent"])


@pytest.mark.parametrize("ipynb", IPYNB, ids=lambda p: p.stem)
def test_source_and_notebook_are_in_sync(ipynb: Path):
    source = jupytext.read(ipynb.with_suffix(".py"), fmt="py:percent")
    executed = nbformat.read(ipynb, as_version=4)
    found = differences(source, executed)
    assert not found, f"{ipynb.name} is out of sync with its .py ({FIX}):\n" + "\n".join(found[:5])


@pytest.mark.parametrize("ipynb", IPYNB, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_top_to_bottom(ipynb: Path):
    code = [cell for cell in nbformat.read(ipynb, as_version=4).cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), f"{ipynb.name} was not re-executed after an edit ({FIX})"


def test_an_edited_cell_is_found():
    executed = nbformat.read(IPYNB[0], as_version=4)
    source = jupytext.read(IPYNB[0].with_suffix(".py"), fmt="py:percent")
    edited = copy.deepcopy(source)
    edited.cells[-1].source += "\nprint('edited')"
    assert len(differences(edited, executed)) == 1
    shorter = copy.deepcopy(source)
    del shorter.cells[-1]
    assert differences(shorter, executed) == [
        f"{len(source.cells) - 1} cells in the .py, {len(source.cells)} in the .ipynb"
    ]
