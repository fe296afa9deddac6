"""Where the tests find the repository, their helper programs and their recorded fixtures.

Test modules live in folders that mirror the package (``tests/engine``, ``tests/runtime``, ...),
so a path built from a test file's own ``__file__`` breaks when the file moves; these do not.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
"""The ``tests`` folder: helper modules and programs run as subprocesses (``ddp_program.py``, ...)."""

ROOT = TESTS.parent
"""The repository root: the working directory and ``PYTHONPATH`` of subprocesses."""

FIXTURES = TESTS / "fixtures"
"""Recorded data: Lightning 2.6.6 traces, checkpoints, the public-path list."""
