"""The layering of DESIGN.md holds: no subpackage imports a higher one, at module level or inside functions.

Two checks: (a) a fresh interpreter imports each subpackage (every module in it) and no module of a
higher layer appears in ``sys.modules``; (b) an AST scan of every import statement in every module
(function-level and ``TYPE_CHECKING`` ones too, relative ones resolved) finds no edge that runs upward.
``accelkit/__init__.py`` is the top and may import anything but bench and cli, which sit beside it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "accelkit"

#: bottom first; names on one line are one layer (they may import each other)
ORDER = [
    ["errors", "cache_dir"],
    ["display"],
    ["backends"],
    ["hardware"],
    ["tensor", "ops"],
    ["graph"],
    ["nn"],
    ["io", "preprocess", "checkpoints"],
    ["sharing"],
    ["models"],
    ["webnn"],
    ["pool"],
    ["profiler"],
    ["notebook"],
    ["bench", "cli"],
]
LAYER = {name: i for i, names in enumerate(ORDER) for name in names}
# accelkit/__init__.py (the public facade ``ak``) is in the top layer with bench and cli: they are
# written against the public API, and the facade never imports them back (checked below).
TOP = LAYER["bench"]
NOT_YET = {"webnn"}  # named in DESIGN.md, written by later issues


def _part(module: str) -> str | None:
    """'accelkit.hardware.discovery' -> 'hardware'; 'accelkit' -> None (the top)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _layer(module: str) -> int:
    part = _part(module)
    return TOP if part is None else LAYER[part]


def _present() -> list[str]:
    """The subpackages and top-level modules of accelkit (names as in ORDER)."""
    names = [p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    names += [p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    return sorted(names)


def _module_name(path: Path) -> tuple[str, str]:
    """(module name, package it resolves relative imports against) for a file under accelkit/."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _targets(node: ast.AST, package: str) -> list[str]:
    """The accelkit modules an import statement loads (an imported name that is a module counts as
    that module, any other name as the module it comes from)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{module}.{alias.name}"
        out.append(sub if alias.name != "*" and _is_module(sub) else module)
    return out


def upward_edges() -> list[str]:
    """Every import in accelkit/ that runs against ORDER, as 'file:line: a -> b (layer x above y)'."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module, package = _module_name(path)
        if module == "accelkit":
            continue  # the top may import anything
        here = _layer(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(node, package):
                if target != "accelkit" and not target.startswith("accelkit."):
                    continue
                if _layer(target) > here:
                    where = path.relative_to(ROOT)
                    there = _part(target) or "accelkit/__init__ (the top)"
                    found.append(
                        f"{where}:{node.lineno}: {module} -> {target} ({there} is above {_part(module)})"
                    )
    return found


def test_every_subpackage_has_a_place_in_the_order():
    unknown = [name for name in _present() if name not in LAYER]
    assert not unknown, f"add these to ORDER (and DESIGN.md's layer table): {unknown}"
    missing = [name for name in LAYER if name not in _present() and name not in NOT_YET]
    assert not missing, f"ORDER names subpackages that do not exist: {missing}"


def test_the_scanner_sees_relative_function_level_and_upward_imports(tmp_path, monkeypatch):
    """The AST scan itself: a function-level ``from .. import x`` from a low layer to a high one is found."""
    fake = tmp_path / "accelkit"
    (fake / "hardware").mkdir(parents=True)
    (fake / "pool").mkdir()
    for init in (fake / "__init__.py", fake / "hardware" / "__init__.py", fake / "pool" / "__init__.py"):
        init.write_text("")
    (fake / "errors.py").write_text("")
    (fake / "hardware" / "discovery.py").write_text(
        "from ..errors import X\nfrom . import y\n\ndef f():\n    from .. import pool\n    import accelkit\n"
    )
    (fake / "pool" / "batching.py").write_text("from ..hardware import device\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    edges = upward_edges()
    assert [e.split(": ", 1)[1] for e in edges] == [
        "accelkit.hardware.discovery -> accelkit.pool (pool is above hardware)",
        "accelkit.hardware.discovery -> accelkit (accelkit/__init__ (the top) is above hardware)",
    ]
    assert all(e.startswith("accelkit/hardware/discovery.py:") for e in edges)


def test_no_import_runs_upward():
    edges = upward_edges()
    assert not edges, f"{len(edges)} imports run upward against DESIGN.md's layers:\n" + "\n".join(edges)


IMPORT_ALL = """
import importlib, json, pkgutil, sys
name = sys.argv[1]
module = importlib.import_module(name)
skipped = []
for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as exc:  # an optional third-party package that is not installed
        if (exc.name or "").split(".")[0] == "accelkit":
            raise
        skipped.append(info.name)
print(json.dumps({"modules": sorted(m for m in sys.modules if m.startswith("accelkit")), "skipped": skipped}))
"""


@pytest.mark.parametrize("name", [n for names in ORDER for n in names])
def test_importing_a_layer_loads_no_higher_layer(name):
    if name not in _present():
        assert name in NOT_YET, f"accelkit.{name} is missing"
        pytest.skip(f"accelkit.{name} does not exist yet")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(IMPORT_ALL), f"accelkit.{name}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])["modules"]
    higher = [m for m in loaded if m != "accelkit" and _layer(m) > LAYER[name]]
    assert not higher, f"importing accelkit.{name} loaded higher layers: {higher}"


def test_display_imports_only_the_standard_library_numpy_and_errors():
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    found = []
    for path in sorted((PACKAGE / "display").rglob("*.py")):
        _, package = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(node, package):
                top = target.split(".")[0]
                inside = target == "accelkit.errors" or target.startswith("accelkit.display")
                if not (inside or (top != "accelkit" and top in allowed)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {target}")
    assert not found, (
        "display may import only the standard library, numpy and accelkit.errors:\n" + "\n".join(found)
    )


def test_facade_does_not_import_bench_or_cli():
    """bench and cli use ``import accelkit as ak``; the facade must never import them back."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        for target in _targets(node, "accelkit"):
            assert _part(target) not in ("bench", "cli"), f"accelkit/__init__.py imports {target}"
    assert "accelkit.bench" not in (PACKAGE / "__init__.py").read_text()
