"""Run ``boring_cli.py`` once per scenario in one process (one framework import instead of one per run).

``python run_many.py SCENARIOS.json``: a list of ``{"cwd", "args", "env"}``. Each run gets a fresh
``__main__`` module (so ``__main__.OtherData`` class paths resolve as under ``python boring_cli.py``),
its own working folder, ``sys.argv`` and environment; its stdout goes to ``cwd/stdout.txt``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import types
from pathlib import Path

PROGRAM = Path(__file__).with_name("boring_cli.py")


def run(cwd: str, args: list[str], env: dict[str, str]) -> None:
    saved_env, saved_main = dict(os.environ), sys.modules["__main__"]
    module = types.ModuleType("__main__")
    module.__file__ = str(PROGRAM)
    os.chdir(cwd)
    os.environ.update(env)
    sys.argv = [str(PROGRAM), *args]
    sys.modules["__main__"] = module
    try:
        with open("stdout.txt", "w") as out, contextlib.redirect_stdout(out):
            try:
                exec(compile(PROGRAM.read_text(), str(PROGRAM), "exec"), module.__dict__)
            except SystemExit as exc:  # --print_config exits 0 after printing
                if exc.code not in (0, None):
                    raise
    finally:
        sys.modules["__main__"] = saved_main
        os.environ.clear()
        os.environ.update(saved_env)


def main() -> None:
    for scenario in json.loads(Path(sys.argv[1]).read_text()):
        run(scenario["cwd"], scenario["args"], scenario["env"])


if __name__ == "__main__":
    main()
