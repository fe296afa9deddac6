"""The package is ruff-clean and mypy --strict clean (configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_clean() -> None:
    exe = shutil.which("ruff")
    assert exe is not None, "ruff is not installed: pip install -e '.[test]'"
    result = _run(exe, "check", "lightcycle")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_clean() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_embeds_the_generated_fit_lifecycle() -> None:
    from lightcycle.diagrams import readme_mermaid

    readme = (ROOT / "README.md").read_text()
    assert readme_mermaid() in readme, (
        "README.md's Mermaid block is stale: replace it with the output of "
        "`python -c 'from lightcycle.diagrams import readme_mermaid; print(readme_mermaid())'`"
    )
    assert "lightcycle demo" in readme
