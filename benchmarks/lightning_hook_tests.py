"""Lightning's own hook tests, run against lightcycle through the import aliases; prints how many pass.

Usage::

    python benchmarks/lightning_hook_tests.py PATH/TO/tests/tests_pytorch/models/test_hooks.py [pytest args]

PATH is a checkout of Lightning's repository (https://github.com/Lightning-AI/pytorch-lightning,
tag 2.6.5 or later 2.6.x, Apache-2.0). Nothing is fetched: the test file is read where it is.
Its ``lightning.pytorch`` imports resolve to lightcycle (:func:`lightcycle.compat.aliases.install`);
``tests_pytorch.helpers.runif.RunIf`` becomes a skip for GPU/multi-process requirements; and
while lightcycle has no ``demos`` package, ``lightning.pytorch.demos.boring_classes`` is the
installed Lightning's own ``boring_classes.py`` source executed against lightcycle (its imports
go through the aliases too), so ``BoringModel`` is Lightning's code on lightcycle.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = """
import importlib.machinery, importlib.util, os, sys, types
import pytest

spec = importlib.machinery.PathFinder.find_spec("pytorch_lightning")
BORING = os.path.join(os.path.dirname(spec.origin), "demos", "boring_classes.py") if spec else None

from lightcycle.compat.aliases import install

install()
if importlib.util.find_spec("lightcycle.demos") is None and BORING and os.path.exists(BORING):
    import lightning.pytorch
    demos = types.ModuleType("lightning.pytorch.demos")
    demos.__path__ = []
    boring = types.ModuleType("lightning.pytorch.demos.boring_classes")
    boring.__file__ = BORING
    sys.modules["lightning.pytorch.demos"] = demos
    sys.modules["lightning.pytorch.demos.boring_classes"] = boring
    source = open(BORING).read().replace("pytorch_lightning", "lightning.pytorch")
    exec(compile(source, BORING, "exec"), boring.__dict__)
    demos.boring_classes = boring


def RunIf(**kwargs):
    needs = [k for k, v in kwargs.items() if v and k in (
        "min_cuda_gpus", "mps", "standalone", "deepspeed", "tpu", "bf16_cuda", "sklearn", "rich", "onnx")]
    return pytest.mark.skipif(bool(needs), reason=f"RunIf({', '.join(needs)}): not on this machine/lightcycle")


helpers = types.ModuleType("tests_pytorch.helpers.runif")
helpers.RunIf = RunIf
for name in ("tests_pytorch", "tests_pytorch.helpers"):
    pkg = types.ModuleType(name)
    pkg.__path__ = []
    sys.modules[name] = pkg
sys.modules["tests_pytorch.helpers.runif"] = helpers
"""


def main() -> int:
    if len(sys.argv) < 2 or not os.path.isfile(sys.argv[1]):
        print(__doc__)
        return 2
    test_file, *extra = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "lightcycle_hooktests.py").write_text(PLUGIN)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tmp, str(ROOT), os.environ.get("PYTHONPATH", "")]))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "lightcycle_hooktests",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                tmp,
                "-c",
                os.devnull,
                test_file,
                *extra,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
    print(done.stdout[-20000:])
    print(done.stderr[-3000:], file=sys.stderr)
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", done.stdout)}
    total = sum(v for k, v in counts.items() if k != "skipped")
    print(
        f"Lightning's {Path(test_file).name} on lightcycle: {counts.get('passed', 0)} of {total} pass "
        f"({counts.get('skipped', 0)} skipped: GPU/multi-process)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
