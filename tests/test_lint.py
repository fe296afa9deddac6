"""The code is ruff-clean and the package mypy --strict clean (both configured in pyproject.toml).

``ruff check`` and ``ruff format --check`` cover the package and the code around it (tests,
benchmarks, examples), so that a test or an example is held to the package's style.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.paths import ROOT

LINTED = ("lightcycle", "tests", "benchmarks", "examples")


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _ruff() -> str:
    exe = shutil.which("ruff")
    assert exe is not None, "ruff is not installed: pip install -e '.[test]'"
    return exe


def test_ruff_clean() -> None:
    result = _run(_ruff(), "check", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_clean() -> None:
    result = _run(_ruff(), "format", "--check", *LINTED)
    assert result.returncode == 0, f"run `ruff format {' '.join(LINTED)}`:\n{result.stdout}{result.stderr}"


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
