"""The failing rank's error, carried to the other ranks through the process-group store.

Lightning leaves the healthy ranks to fail later in a collective with gloo's "Connection
closed by peer" (or to hang until the collective timeout) and to run ``on_exception`` with
that error. Here the rank that raises first writes ``{rank, type, message}`` into the
rendezvous store (a TCP key-value store every rank already holds: torchrun's agent store or
rank 0's), then closes its process group, which makes the peers' pending collective fail at
once. A peer whose collective fails reads the key, acknowledges it and raises
:class:`RankFailedError` naming the failing rank. The failing rank waits (at most
:data:`ACK_WAIT_S`) for the acknowledgements before it goes on: under the self-launch rank 0
hosts the store, and under torchrun the agent ends the other ranks as soon as one exits,
so leaving early could take the message with it.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import timedelta
from typing import Any

_KEY = "lightcycle/failure"
_ACK = "lightcycle/failure_ack/"
_MEET = "lightcycle/meet/"
POLL_S = 0.05
"""How often a rank waiting in :meth:`FailureChannel.meet` looks at the store."""
ACK_WAIT_S = 10.0
"""How long a failing store host waits for the other ranks to read its error."""


class RankFailedError(RuntimeError):
    """Another rank raised; this rank stopped because of it.

    Attributes:
        rank: the global rank that raised first.
        type_name: its exception's type.
        text: its exception's message.
    """

    def __init__(self, rank: int, type_name: str, text: str, seen_here: BaseException | None) -> None:
        self.rank = rank
        self.type_name = type_name
        self.text = text
        if seen_here is None:
            where = "This rank stopped while it waited for the other ranks."
        else:
            first = str(seen_here).splitlines()[0] if str(seen_here) else ""
            where = f"This rank stopped in its next collective ({type(seen_here).__name__}: {first})."
        super().__init__(f"rank {rank} raised {type_name}: {text}. {where}")


class FailureChannel:
    """Publish and read the first failure of a job through a ``torch.distributed`` store.

    Args:
        store: the process group's store (``None``: nothing is carried).
        rank: this process's global rank.
        world_size: the number of processes.
    """

    def __init__(self, store: Any, rank: int, world_size: int) -> None:
        self.store = store
        self.rank = rank
        self.world_size = world_size
        self._meetings: dict[str, int] = {}

    def peer_failure(self) -> dict[str, Any] | None:
        """The failure another rank published, if any (never blocks for long)."""
        if self.store is None:
            return None
        try:
            if not self.store.check([_KEY]):
                return None
            info: dict[str, Any] = json.loads(self.store.get(_KEY).decode())
        except Exception:  # the store's host is gone: nothing more can be learned
            return None
        if info.get("rank") == self.rank:
            return None
        with contextlib.suppress(Exception):  # the host is gone; it no longer waits for us
            self.store.set(f"{_ACK}{self.rank}", "1")
        return info

    def meet(self, name: str) -> dict[str, Any] | None:
        """Wait, without a timeout, until every rank has called ``meet`` with this ``name`` once more.

        The ranks count themselves in under a key per name and call; between polls
        (:data:`POLL_S`) the waiting rank looks for a failure another rank published.

        Args:
            name: what the ranks meet for (one counter per name, counted per call).

        Returns:
            ``None`` once every rank arrived, or the failure another rank published meanwhile.

        Raises:
            RuntimeError: the store's host is gone (the run cannot go on).
        """
        calls = self._meetings.get(name, 0) + 1
        self._meetings[name] = calls
        key = f"{_MEET}{name}/{calls}"
        self.store.add(key, 1)
        while self.store.add(key, 0) < self.world_size:
            peer = self.peer_failure()
            if peer is not None:
                return peer
            time.sleep(POLL_S)
        return None

    def publish(self, exception: BaseException) -> None:
        """Record this rank's exception as the job's failure (the first writer wins)."""
        if self.store is None:
            return
        payload = json.dumps({"rank": self.rank, "type": type(exception).__name__, "message": str(exception)})
        # compare_set writes only if the key is absent, so the first failing rank is kept; a
        # failure here means the store's host is gone (it failed first and told the others itself)
        with contextlib.suppress(Exception):
            self.store.compare_set(_KEY, "", payload)

    def wait_for_readers(self) -> None:
        """As the failing rank: give the other ranks time to read the failure before this process ends."""
        if self.store is None:
            return
        keys = [f"{_ACK}{r}" for r in range(self.world_size) if r != self.rank]
        with contextlib.suppress(Exception):  # a peer already gone, or never in a collective: bounded anyway
            self.store.wait(keys, timedelta(seconds=ACK_WAIT_S))
