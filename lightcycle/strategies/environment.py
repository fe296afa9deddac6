"""Cluster environments: where a process learns its ranks and the rendezvous address.

Lightning's ``ClusterEnvironment`` classes, first match wins (its accelerator connector's
order): torchrun/TorchElastic, SLURM, else the plain environment that lightcycle's own
launcher fills in. Nothing here talks to the network; reading the environment is all.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import warnings


class ClusterEnvironment:
    """Ranks and rendezvous of this process, read from the environment.

    ``creates_processes_externally`` says whether someone else (torchrun, SLURM, or
    lightcycle's launcher in a child) has started every rank: then nothing is launched.
    """

    def __init__(self) -> None:
        self._world_size = 1
        self._global_rank = 0

    @property
    def creates_processes_externally(self) -> bool:
        """Whether the other ranks are started by someone else."""
        return True

    @property
    def main_address(self) -> str:
        """The rendezvous host (``MASTER_ADDR``, default ``127.0.0.1``)."""
        return os.environ.get("MASTER_ADDR", "127.0.0.1")

    @property
    def main_port(self) -> int:
        """The rendezvous port (``MASTER_PORT``)."""
        return int(os.environ.get("MASTER_PORT", "12910"))

    def world_size(self) -> int:
        """Number of processes in the job."""
        return self._world_size

    def set_world_size(self, size: int) -> None:
        """Record the world size the strategy computed (ignored where the environment sets it)."""
        self._world_size = size

    def global_rank(self) -> int:
        """This process's rank in the job."""
        return self._global_rank

    def set_global_rank(self, rank: int) -> None:
        """Record the rank the strategy computed (ignored where the environment sets it)."""
        self._global_rank = rank

    def local_rank(self) -> int:
        """This process's rank on its node."""
        return int(os.environ.get("LOCAL_RANK", "0"))

    def node_rank(self) -> int:
        """This node's rank (``NODE_RANK`` or ``GROUP_RANK``, default 0)."""
        return int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0")))

    def validate_settings(self, num_devices: int, num_nodes: int) -> None:
        """Check the Trainer's ``devices``/``num_nodes`` against the environment.

        Raises:
            ValueError: they disagree (only environments that fix the world size check).
        """

    def teardown(self) -> None:
        """Undo what the environment set for the run."""


class LightningEnvironment(ClusterEnvironment):
    """A plain ``python train.py``: lightcycle's launcher starts ranks 1..N-1 itself.

    Child processes find ``LOCAL_RANK`` set by the launcher and launch nothing. The port is
    ``MASTER_PORT`` or a free one chosen once (Lightning's ``find_free_network_port``).
    """

    @property
    def creates_processes_externally(self) -> bool:
        return "LOCAL_RANK" in os.environ

    @property
    def main_port(self) -> int:
        if "MASTER_PORT" not in os.environ:
            os.environ["MASTER_PORT"] = str(find_free_port())
        return int(os.environ["MASTER_PORT"])

    def teardown(self) -> None:
        # Lightning's LightningEnvironment.teardown: a later single-process run must not see it
        os.environ.pop("WORLD_SIZE", None)


class TorchElasticEnvironment(ClusterEnvironment):
    """Started by ``torchrun`` (or another TorchElastic agent): every rank is given."""

    @staticmethod
    def detect() -> bool:
        """Whether this process was started by TorchElastic."""
        return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"))

    def world_size(self) -> int:
        return int(os.environ["WORLD_SIZE"])

    def global_rank(self) -> int:
        return int(os.environ["RANK"])

    def validate_settings(self, num_devices: int, num_nodes: int) -> None:
        if num_devices * num_nodes != self.world_size():
            raise ValueError(
                f"You set `devices={num_devices}` and `num_nodes={num_nodes}` in the Trainer, but torchrun started "
                f"WORLD_SIZE={self.world_size()} processes. Pass devices=--nproc-per-node and num_nodes=--nnodes."
            )


class SLURMEnvironment(ClusterEnvironment):
    """Started by ``srun``: ranks from ``SLURM_PROCID``/``SLURM_LOCALID``/``SLURM_NODEID``.

    Lightning's arguments are taken, but lightcycle does not requeue: Lightning's
    ``auto_requeue=True`` (its default) saves ``hpc_ckpt_N.ckpt`` and runs ``scontrol requeue`` on
    ``requeue_signal`` (``SIGUSR1``); here nothing handles that signal, so asking for it warns.

    Args:
        auto_requeue: Lightning's requeue on ``requeue_signal`` (not done here; ``True`` warns).
        requeue_signal: the signal Lightning requeues on (default ``SIGUSR1``), kept as given.
    """

    def __init__(self, auto_requeue: bool = True, requeue_signal: signal.Signals | None = None) -> None:
        super().__init__()
        self.auto_requeue = auto_requeue
        self.requeue_signal = requeue_signal if requeue_signal is not None else getattr(signal, "SIGUSR1", None)
        if auto_requeue:
            warnings.warn(
                "SLURMEnvironment(auto_requeue=True): lightcycle does not save an hpc checkpoint and requeue the "
                f"job on {self.requeue_signal!s}, as Lightning does; with `#SBATCH --signal=USR1@...` that signal "
                "ends the process. Use `--signal=TERM@...` with an OnExceptionCheckpoint (lightcycle stops on "
                "SIGTERM as Lightning does), and pass SLURMEnvironment(auto_requeue=False) to silence this.",
                UserWarning,
                stacklevel=2,
            )

    @staticmethod
    def detect() -> bool:
        """Whether ``srun`` started this process (not an interactive ``salloc`` shell)."""
        return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")

    @property
    def main_address(self) -> str:
        if "MASTER_ADDR" in os.environ:
            return os.environ["MASTER_ADDR"]
        return _first_slurm_host(os.environ.get("SLURM_NODELIST", "127.0.0.1"))

    @property
    def main_port(self) -> int:
        if "MASTER_PORT" in os.environ:
            return int(os.environ["MASTER_PORT"])
        # Lightning's rule: 10000 + the last four digits of the job id
        return 10000 + int(os.environ.get("SLURM_JOB_ID", "0")[-4:] or 0)

    def world_size(self) -> int:
        return int(os.environ["SLURM_NTASKS"])

    def global_rank(self) -> int:
        return int(os.environ["SLURM_PROCID"])

    def local_rank(self) -> int:
        return int(os.environ["SLURM_LOCALID"])

    def node_rank(self) -> int:
        return int(os.environ["SLURM_NODEID"])

    def validate_settings(self, num_devices: int, num_nodes: int) -> None:
        if num_devices * num_nodes != self.world_size():
            raise ValueError(
                f"You set `devices={num_devices}` and `num_nodes={num_nodes}` in the Trainer, but SLURM started "
                f"SLURM_NTASKS={self.world_size()} tasks. Set --ntasks-per-node=devices and --nodes=num_nodes."
            )


def _first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``node[03-05,07]`` → ``node03``)."""
    match = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist)
    if match is None:
        return "127.0.0.1"
    prefix, _, ranges = match.groups()
    if not ranges:
        return str(prefix)
    return f"{prefix}{ranges.split(',')[0].split('-')[0]}"


def find_free_port() -> int:
    """A TCP port that was free a moment ago (Lightning's ``find_free_network_port``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def detect() -> ClusterEnvironment:
    """The environment of this process, first match wins: TorchElastic, SLURM, plain.

    Returns:
        A new environment object.
    """
    if TorchElasticEnvironment.detect():
        return TorchElasticEnvironment()
    if SLURMEnvironment.detect():
        return SLURMEnvironment(auto_requeue=False)  # (not requeued: docs/distributed.md says so)
    return LightningEnvironment()
