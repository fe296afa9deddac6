"""Per-event cost of the two executors, unchecked and checked mode, in a micro-benchmark.

One internal event (it stays in its state, so it can fire again and again) with one hook,
fired 20,000 times, best of 25 (process time), warm caches: what one event costs each way,
on a machine too loaded for ``overhead.py``'s paired µs. Multiply by the nine per-batch
events of a training step for a per-step figure; inside the training loop calls cost more
than here (cold caches), so read it as a lower bound.

Usage::

    python benchmarks/executor_micro.py
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch

import lightcycle as L
from lightcycle.engine.driver import LifecycleDriver
from lightcycle.states.stages import TrainerState

FIRES = 20_000
REPEATS = 25


class _Host:
    def __init__(self) -> None:
        self.state = TrainerState()


class _Module(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)


class _Callback(L.Callback):
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        pass


def _driver(executor: str, checked: bool) -> LifecycleDriver:
    driver = LifecycleDriver(_Host(), executor=executor, checked=checked)
    driver.bind(_Module(), [_Callback()])
    return driver


def _internal_event(driver: LifecycleDriver) -> tuple[str, str]:
    """An (event, state) pair that stays in its state and calls at least one hook."""
    for state, row in enumerate(driver._rows):
        for trigger, step in row.items():
            if step.dest is None and step.ops and not trigger.optional_tail:
                return trigger.name, driver.table.states[state]
    raise RuntimeError("no internal event with a hook in this bind")


def per_event(executor: str, checked: bool, event: str, state: str) -> float:
    """Best µs per fire of ``event`` from ``state``."""
    driver = _driver(executor, checked)
    trigger = driver.table.triggers[event]
    driver._ids = driver._id_rows[driver.table.index[state]]
    fire = driver.caller(trigger)
    args = tuple(object() for _ in trigger.params)
    fire(*args)  # the first: the general path (and, checked, the machine's answer)
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        for _ in range(FIRES):
            fire(*args)
        best = min(best, (time.process_time() - start) / FIRES * 1e6)
    return best


def main() -> None:
    warnings.simplefilter("ignore")
    event, state = _internal_event(_driver("generated", False))
    print(f"{event} from {state}: best of {REPEATS} x {FIRES:,} fires, process time")
    results = {}
    for executor in ("generated", "interpreted"):
        for checked in (False, True):
            results[executor, checked] = per_event(executor, checked, event, state)
            print(f"{executor:<12} checked={checked!s:<6}{results[executor, checked]:7.3f} us/event")
    for executor in ("generated", "interpreted"):
        print(f"{executor}: checked mode costs {results[executor, True] - results[executor, False]:+.3f} us/event")
    extra = results["interpreted", False] - results["generated", False]
    print(f"interpreted over generated, unchecked: {extra:+.3f} us/event")


if __name__ == "__main__":
    main()
