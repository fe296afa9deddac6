"""The subprocess launcher: ``python train.py`` with ``devices=N`` starts ranks 1..N-1.

Lightning's ``_SubprocessScriptLauncher``: the user's own process is rank 0; each other
local rank re-runs the same command line (``python script.py args`` or ``python -m mod
args``) with ``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` set, so its own Trainer finds ``LOCAL_RANK`` and launches nothing. A watcher
thread ends the other ranks when one of them exits with an error (Lightning kills them all
with SIGKILL after its poll; here the ranks' own failure path runs first, see
:mod:`lightcycle.strategies.failure`, and only what is left after a grace period is killed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import __main__

GRACE_S = 20.0
"""How long the watcher lets the ranks run their failure path before it kills what is left."""


def command_line() -> list[str]:
    """The command that started this process, to run again for the other ranks.

    Returns:
        ``[python, script, *args]`` or ``[python, -m, module, *args]``.

    Raises:
        RuntimeError: the process was not started from a script (an interactive session).
    """
    spec = getattr(__main__, "__spec__", None)
    if spec is not None and spec.name not in ("__main__", None):
        module = spec.name[: -len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        return [sys.executable, "-m", module, *sys.argv[1:]]
    script = getattr(__main__, "__file__", None)
    if script is None:
        raise RuntimeError(
            "Trainer(strategy='ddp', devices=N) re-runs the script for the other ranks, but this process has no "
            "script (an interactive session or notebook). Run `python train.py` or `torchrun --nproc-per-node N "
            "train.py`."
        )
    return [sys.executable, os.path.abspath(script), *sys.argv[1:]]


class SubprocessScriptLauncher:
    """Start the other local ranks of this node as copies of this process's command.

    Args:
        num_processes: processes per node (the Trainer's ``devices``).
        num_nodes: nodes in the job.
        main_address: rendezvous host.
        main_port: rendezvous port.
        node_rank: this node's rank.
    """

    def __init__(self, num_processes: int, num_nodes: int, main_address: str, main_port: int, node_rank: int) -> None:
        self.num_processes = num_processes
        self.num_nodes = num_nodes
        self.main_address = main_address
        self.main_port = main_port
        self.node_rank = node_rank
        self.procs: list[subprocess.Popen[bytes]] = []
        self._watcher: threading.Thread | None = None

    @property
    def launched(self) -> bool:
        """Whether the children have been started."""
        return bool(self.procs)

    def launch(self, command: Sequence[str] | None = None) -> None:
        """Set this process up as local rank 0 and start local ranks 1..N-1.

        Args:
            command: the command line to run (default: :func:`command_line`).
        """
        cmd = list(command) if command is not None else command_line()
        os.environ["MASTER_ADDR"] = self.main_address
        os.environ["MASTER_PORT"] = str(self.main_port)
        os.environ["NODE_RANK"] = str(self.node_rank)
        os.environ["LOCAL_RANK"] = "0"
        os.environ["WORLD_SIZE"] = str(self.num_processes * self.num_nodes)
        for local_rank in range(1, self.num_processes):
            env = {**os.environ, "LOCAL_RANK": str(local_rank)}
            self.procs.append(subprocess.Popen(cmd, env=env))
        self._watcher = threading.Thread(target=self._watch, name="lightcycle-rank-watcher", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        """End every rank when a child exits with an error and the others are still running."""
        while True:
            codes = [p.poll() for p in self.procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:
                deadline = time.monotonic() + GRACE_S
                while time.monotonic() < deadline and any(p.poll() is None for p in self.procs):
                    time.sleep(0.2)
                self.kill(signal.SIGKILL)
                return
            if all(c is not None for c in codes):
                return
            time.sleep(0.5)

    def kill(self, signum: int) -> None:
        """Send ``signum`` to every child still running (Lightning's ``launcher.kill``)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def wait(self, timeout: float | None = None) -> list[int | None]:
        """Wait for the children to end.

        Args:
            timeout: seconds in all; ``None`` waits for ever.

        Returns:
            Each child's exit status (``None`` for one still running at the timeout).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        out: list[int | None] = []
        for proc in self.procs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                out.append(proc.wait(left))
            except subprocess.TimeoutExpired:
                out.append(None)
        return out
