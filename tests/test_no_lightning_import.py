"""lightcycle never imports Lightning: not at import time, not in any submodule, not in source."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import lightcycle

FORBIDDEN = ("lightning", "pytorch_lightning", "lightning_fabric", "lightning_utilities")
PACKAGE_DIR = Path(lightcycle.__file__).parent


def _submodules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="lightcycle."))


def test_importing_every_submodule_loads_no_lightning() -> None:
    modules = ["lightcycle", *_submodules()]
    assert "lightcycle.commands.main" in modules and "lightcycle.trainer.trainer" in modules
    code = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
        assert not loaded, loaded
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def _imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr in ("import_module", "find_spec"))
            )
        ):
            names.append((node.lineno, node.args[0].value))
    return names


def test_no_source_file_imports_lightning() -> None:
    """A static check: it also covers imports inside functions that no test calls."""
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(files) > 10
    offenders = [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {name}"
        for path in files
        for line, name in _imported_names(ast.parse(path.read_text(), filename=str(path)))
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_the_static_check_sees_every_kind_of_import() -> None:
    tree = ast.parse(
        "import pytorch_lightning\n"
        "from lightning.pytorch import Trainer\n"
        "def f():\n    import lightning_fabric.utilities as u\n"
        "__import__('lightning_utilities')\n"
        "importlib.import_module('lightning.pytorch')\n"
    )
    found = sorted(name.split(".")[0] for _, name in _imported_names(tree))
    assert found == sorted(["pytorch_lightning", "lightning", "lightning_fabric", "lightning_utilities", "lightning"])
