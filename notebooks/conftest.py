"""Run the walkthrough notebooks as tests: nbval in lax mode, sanitised with notebooks/sanitize.cfg.

The project's plain ``python3 -m pytest -q`` collects every ``notebooks/*.ipynb`` through this hook, with
no command-line option: each notebook runs top to bottom in a fresh kernel of this interpreter (cwd =
this directory); every cell must run without error, and cells marked ``# NBVAL_CHECK_OUTPUT`` must
also print what the stored notebook shows. Passing ``--nbval`` or ``--nbval-lax`` yourself hands
collection back to nbval's own hook (``--nbval-kernel-name`` and ``--nbval-sanitize-with`` are honoured).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

SANITIZE = Path(__file__).with_name("sanitize.cfg")

# the notebooks' py:percent sources (NN_name.py, paired with NN_name.ipynb by jupytext) are not test
# modules: never collect or import them; the .ipynb is what runs
collect_ignore_glob = ["[0-9][0-9]_*.py"]

# wgpu (through Mesa's Vulkan loader) complains on every adapter enumeration without it; the kernels
# started below inherit this environment
if not os.environ.get("XDG_RUNTIME_DIR"):
    _xdg = os.path.join(tempfile.gettempdir(), f"accelkit-xdg-{os.getuid()}")
    os.makedirs(_xdg, mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = _xdg

try:
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel
    from nbval.plugin import IPyNbFile
except ImportError:  # nbval comes with the dev extras; without it the notebooks skip, visibly
    IPyNbFile = None


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix != ".ipynb" or file_path.parent != SANITIZE.parent:
        return None
    if IPyNbFile is None:
        return NotebookWithoutNbval.from_parent(parent, path=file_path)
    opt = parent.config.option
    if opt.nbval or opt.nbval_lax:
        return None  # nbval's own hook collects it
    return LaxNotebook.from_parent(parent, path=file_path)


if IPyNbFile is not None:

    class LaxNotebook(IPyNbFile):
        """nbval's notebook collector as ``--nbval-lax --nbval-current-env --nbval-sanitize-with sanitize.cfg``."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.compare_outputs = False  # lax: only cells marked NBVAL_CHECK_OUTPUT are compared

        def get_sanitize_files(self) -> list[str]:
            return [str(SANITIZE)] + super().get_sanitize_files()

        def setup(self) -> None:
            # the kernel runs this interpreter (the one with accelkit installed), not whatever
            # "python3" kernelspec the machine has, unless --nbval-kernel-name says otherwise
            kernel_name = self.config.option.nbval_kernel_name or CURRENT_ENV_KERNEL_NAME
            self.kernel = RunningKernel(
                kernel_name,
                cwd=str(self.path.parent),
                startup_timeout=self.config.option.nbval_kernel_startup_timeout,
            )
            self.setup_sanitize_files()


class NotebookWithoutNbval(pytest.File):
    def collect(self):
        yield SkippedNotebook.from_parent(self, name="notebook")


class SkippedNotebook(pytest.Item):
    def runtest(self) -> None:
        pytest.skip("nbval is not installed (pip install -e '.[dev]')")

    def reportinfo(self):
        return self.path, None, f"notebook {self.path.name}"
