"""SIGTERM during a run (spec 4.3), in a real subprocess that receives a real signal.

The child runs four cases in turn (through the Trainer, and in a second child through
:class:`~lightcycle.custom_loop.LoopDriver` with the same schedule as a custom loop); in
each, a callback blocks inside a chosen hook, says ``ready`` on stdout and waits until the
run's SIGTERM handler has seen the signal the parent sends. The run must then go on to the
next point the spec names and raise
``SIGTERMException`` (a ``SystemExit`` with code 143) there:

- ``eval_last``: SIGTERM during the last validation batch of ``validate()``: no check
  after the last evaluation batch, so the run finishes normally;
- ``eval``: during validation batch 0 of 3: raised right after that batch's
  ``on_validation_batch_end``;
- ``epoch``: during the last training batch of epoch 0 (of 2): the batch, the epoch-end
  validation and ``on_train_epoch_end`` still run, then it is raised; no epoch 1;
- ``batch``: during training batch 0 of 3, with validation after every batch: the batch's
  ``on_train_batch_end`` and the validation it triggers run, then it is raised.

In every case ``on_exception`` receives the very exception that propagates, status is
interrupted, the handler that was installed before the run is chained (it sees the
signal) and restored afterwards. The last case is not caught: the child exits with 143.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = textwrap.dedent(
    r'''
    import json, signal, sys, time, warnings
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    import lightcycle as L
    from lightcycle.callbacks import HookRecorder
    from lightcycle.errors import SIGTERMException

    OUT = sys.argv[1]
    warnings.simplefilter("ignore")
    previous_calls = []

    def previous(signum, frame):
        previous_calls.append(signum)

    signal.signal(signal.SIGTERM, previous)

    def data(n):
        g = torch.Generator().manual_seed(n)
        return TensorDataset(torch.randn(2 * n, 4, generator=g), torch.randn(2 * n, 1, generator=g))

    class Model(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(4, 1)
        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.layer(x), y)
        def validation_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.layer(x), y)
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)
        def train_dataloader(self):
            return DataLoader(data(3), batch_size=2)
        def val_dataloader(self):
            return DataLoader(data(3), batch_size=2)

    class Waiter(HookRecorder):
        """Blocks in one hook call until the trainer has received SIGTERM."""
        def __init__(self, hook, epoch, batch_idx):
            super().__init__()
            self.wait_at = (hook, epoch, batch_idx)
            self.seen = []
        def record_hook(self, src, hook, named):
            super().record_hook(src, hook, named)
            t = self._trainer
            if src == "callback" and (hook, t.current_epoch, named.get("batch_idx")) == self.wait_at:
                print("ready", flush=True)
                deadline = time.monotonic() + 30
                while not t.received_sigterm:
                    if time.monotonic() > deadline:
                        raise RuntimeError("no SIGTERM arrived")
                    time.sleep(0.005)
        def on_exception(self, trainer, pl_module, exception):
            self.seen.append(exception)
            super().on_exception(trainer, pl_module, exception)

    CASES = [
        ("eval_last", "validate", dict(limit_val_batches=2), ("on_validation_batch_start", 0, 1)),
        ("eval", "validate", dict(limit_val_batches=3), ("on_validation_batch_start", 0, 0)),
        ("epoch", "fit", dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0),
         ("on_train_batch_start", 0, 1)),
        ("batch", "fit", dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1, num_sanity_val_steps=0,
                              val_check_interval=1), ("on_train_batch_start", 0, 0)),
    ]

    def custom_loop(lc, entry, kw):
        """The Trainer's schedule for the case, written as a custom loop (docs/custom-loop.md)."""
        from itertools import islice
        model = lc.lightning_module
        val_limit = kw["limit_val_batches"]
        if entry == "validate":
            with lc.validate():
                for i, batch in enumerate(islice(model.val_dataloader(), val_limit)):
                    lc.validation_batch(batch, i)
            return

        def validation():
            with lc.validation():
                for j, vb in enumerate(islice(lc.val_dataloaders, val_limit)):
                    lc.validation_batch(vb, j)

        with lc.fit():
            for _ in lc.epochs(kw["max_epochs"]):
                n = kw["limit_train_batches"]
                for i, batch in enumerate(islice(lc.train_dataloader, n)):
                    lc.train_batch(batch, i)
                    if kw.get("val_check_interval") == 1 or i == n - 1:
                        validation()

    CUSTOM = len(sys.argv) > 2 and sys.argv[2] == "custom"
    for name, entry, kwargs, wait_at in CASES:
        waiter = Waiter(*wait_at)
        if CUSTOM:
            from lightcycle import LoopDriver
            trainer = LoopDriver(Model(), callbacks=[waiter])
        else:
            trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                                enable_checkpointing=False, callbacks=[waiter], **kwargs)
        before = len(previous_calls)
        summary = {"case": name}
        try:
            if CUSTOM:
                custom_loop(trainer, entry, kwargs)
            else:
                getattr(trainer, entry)(Model())
            summary["raised"] = None
        except BaseException as exc:
            summary.update(
                raised=type(exc).__name__,
                is_sigterm=isinstance(exc, SIGTERMException),
                is_system_exit=isinstance(exc, SystemExit),
                code=getattr(exc, "code", None),
                same_object=len(waiter.seen) == 1 and waiter.seen[0] is exc,
            )
            if name != CASES[-1][0]:
                exc = None
            else:
                raise
        finally:
            summary.update(
                status=trainer.state.status.value,
                stage=trainer.state.stage,
                received_sigterm=trainer.received_sigterm,
                previous_handler_called=len(previous_calls) - before,
                handler_restored=signal.getsignal(signal.SIGTERM) is previous,
                on_exception=len(waiter.seen),
                events=[[e["src"], e["hook"], e["args"].get("batch_idx"), e["ctx"]["epoch"]] for e in waiter.events],
            )
            with open(OUT, "a") as fh:
                fh.write(json.dumps(summary, default=str) + "\n")
    '''
)


def _run_child(tmp: Path, mode: str) -> tuple[int, dict[str, dict[str, Any]]]:
    script, out = tmp / "child.py", tmp / "out.jsonl"
    script.write_text(CHILD)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    signals = 0
    for line in proc.stdout:
        if line.strip() == "ready":
            proc.send_signal(signal.SIGTERM)
            signals += 1
    stderr = proc.stderr.read() if proc.stderr is not None else ""
    code = proc.wait(timeout=120)
    assert signals == 4, f"the child reached {signals} wait points; stderr:\n{stderr[-3000:]}"
    cases = {}
    for line in out.read_text().splitlines():
        row = json.loads(line)
        cases[row["case"]] = row
    return code, cases


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, dict[str, Any]]]:
    return _run_child(tmp_path_factory.mktemp("sigterm"), "trainer")


@pytest.fixture(scope="module")
def custom_child(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, dict[str, Any]]]:
    """The same four cases through LoopDriver, the Trainer's schedule written as a custom loop."""
    return _run_child(tmp_path_factory.mktemp("sigterm_custom"), "custom")


def _hooks(case: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """The callback events (module events are recorded too, but the contract is stated for callbacks)."""
    return [tuple(e) for e in case["events"] if e[0] == "callback"]  # type: ignore[misc]


def _after_wait(case: dict[str, Any], hook: str, epoch: int, batch_idx: int) -> list[tuple[str, str, Any, Any]]:
    events = _hooks(case)
    i = events.index(("callback", hook, batch_idx, epoch))
    return events[i + 1 :]


def test_child_exits_with_status_143(child: tuple[int, dict[str, dict[str, Any]]]) -> None:
    code, cases = child
    assert code == 143
    assert set(cases) == {"eval_last", "eval", "epoch", "batch"}


@pytest.mark.parametrize("name", ["eval", "epoch", "batch"])
def test_sigterm_is_raised_as_system_exit_143_with_on_exception(
    child: tuple[int, dict[str, dict[str, Any]]], name: str
) -> None:
    case = child[1][name]
    assert case["raised"] == "SIGTERMException"
    assert case["is_sigterm"] and case["is_system_exit"] and case["code"] == 143
    assert case["same_object"], "on_exception did not receive the exception that propagated"
    assert case["on_exception"] == 1
    assert case["status"] == "interrupted" and case["stage"] is None
    assert case["received_sigterm"] is True
    assert case["previous_handler_called"] == 1, "the handler installed before the run was not chained"
    assert case["handler_restored"], "the pre-run SIGTERM handler was not restored"
    assert _hooks(case)[-1][:2] == ("callback", "on_exception")


def test_no_check_after_the_last_evaluation_batch(child: tuple[int, dict[str, dict[str, Any]]]) -> None:
    case = child[1]["eval_last"]
    assert case["raised"] is None and case["status"] == "finished"
    assert case["received_sigterm"] is True and case["on_exception"] == 0
    assert case["handler_restored"] and case["previous_handler_called"] == 1
    assert _hooks(case)[-1][:2] == ("callback", "teardown")


def test_eval_raises_after_the_batch_it_arrived_in(child: tuple[int, dict[str, dict[str, Any]]]) -> None:
    rest = [e[:3] for e in _after_wait(child[1]["eval"], "on_validation_batch_start", 0, 0)]
    assert rest == [("callback", "on_validation_batch_end", 0), ("callback", "on_exception", None)]


def test_epoch_end_raises_after_on_train_epoch_end(child: tuple[int, dict[str, dict[str, Any]]]) -> None:
    rest = [e[:2] for e in _after_wait(child[1]["epoch"], "on_train_batch_start", 0, 1)]
    assert ("callback", "on_train_batch_end") in rest
    assert ("callback", "on_validation_end") in rest, "the epoch-end validation must still run"
    assert rest[-2:] == [("callback", "on_train_epoch_end"), ("callback", "on_exception")]
    assert ("callback", "on_train_epoch_start") not in rest


def test_batch_raises_after_its_end_and_the_validation_it_triggered(
    child: tuple[int, dict[str, dict[str, Any]]],
) -> None:
    rest = [e[:2] for e in _after_wait(child[1]["batch"], "on_train_batch_start", 0, 0)]
    assert rest.index(("callback", "on_train_batch_end")) < rest.index(("callback", "on_validation_start"))
    assert rest[-2:] == [("callback", "on_validation_end"), ("callback", "on_exception")]
    assert ("callback", "on_train_batch_start") not in rest, "no further batch may start"
    assert ("callback", "on_train_epoch_end") not in rest


def test_custom_loop_child_exits_with_status_143(custom_child: tuple[int, dict[str, dict[str, Any]]]) -> None:
    code, cases = custom_child
    assert code == 143
    assert set(cases) == {"eval_last", "eval", "epoch", "batch"}


@pytest.mark.parametrize("name", ["eval_last", "eval", "epoch", "batch"])
def test_custom_loop_sees_the_trainers_hooks_and_exception(
    child: tuple[int, dict[str, dict[str, Any]]], custom_child: tuple[int, dict[str, dict[str, Any]]], name: str
) -> None:
    # LoopDriver checks at the next batch start (it cannot know which batch is the last,
    # nor where the user's validation ends) and at the epoch end: the callbacks see the
    # Trainer's hooks, the same exception, the same handler chaining and restoring.
    ours, trainer = custom_child[1][name], child[1][name]
    assert _hooks(ours) == _hooks(trainer)
    for key in (
        "raised",
        "is_sigterm",
        "is_system_exit",
        "code",
        "same_object",
        "status",
        "stage",
        "received_sigterm",
        "previous_handler_called",
        "handler_restored",
        "on_exception",
    ):
        assert ours.get(key) == trainer.get(key), key
