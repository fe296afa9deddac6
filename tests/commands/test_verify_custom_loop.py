"""``lightcycle verify`` on traces recorded (HookRecorder) from custom loops.

A :class:`~lightcycle.custom_loop.LoopDriver` run skips the module hooks its caller
supplies: ``configure_optimizers`` when the optimizers are passed to ``lc.fit``, the
module's step when the loop's own code is the step (``training_step``,
``validation_step``, ...). Their events fire with nothing recorded, and the next event's
``ctx.state`` shows the lifecycle went through them. Checked here:

- the example custom loop (``examples/custom_loop.py``) and the custom event example
  with its extended declaration (``examples.custom_event:LIFECYCLE``) verify, in-process
  and through the command line (the installed ``lightcycle`` script, run from the
  repository root);
- small LoopDriver runs of each kind (fit with the module's optimizers, validate, test,
  predict without steps, an exception in the loop) verify;
- a HookRecorder trace of a Trainer run with a plain module (no hook overridden) verifies;
- mutated custom-loop traces fail: a dropped ``on_train_batch_end`` (callback or module),
  swapped callback hooks, and every drop, duplicate, swap and move of a whole-trace
  sweep except the ones the declaration allows;
- without ``ctx.state`` (as in Lightning's traces) nothing is skipped: the same trace
  then fails on its missing ``configure_optimizers``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import examples.custom_event as custom_event
import examples.custom_loop as custom_loop
import lightcycle as L
from lightcycle import LoopDriver
from lightcycle.callbacks import HookRecorder
from lightcycle.commands.main import main as cli_main
from lightcycle.states import LIFECYCLE
from lightcycle.verify import VerifyResult, verify_trace
from tests import kit
from tests.commands.test_verify import _mutations, _same_order
from tests.paths import ROOT

TraceEvent = dict[str, Any]


class _Recorded(LoopDriver):
    """A LoopDriver with a HookRecorder appended to its callbacks."""

    recorders: ClassVar[list[HookRecorder]] = []

    def __init__(self, module: L.LightningModule, callbacks: Any = None, **kwargs: Any) -> None:
        recorder = HookRecorder()
        type(self).recorders.append(recorder)
        given = [] if callbacks is None else list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        super().__init__(module, [*given, recorder], **kwargs)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[HookRecorder]]:
    """The examples' LoopDriver replaced by one that records; yields the recorders made."""
    recorders: list[HookRecorder] = []
    monkeypatch.setattr(_Recorded, "recorders", recorders)
    monkeypatch.setattr(custom_loop, "LoopDriver", _Recorded)
    monkeypatch.setattr(custom_event, "LoopDriver", _Recorded)
    yield recorders


@pytest.fixture(scope="module")
def loop_trace() -> list[TraceEvent]:
    """The example custom loop, small, recorded (2 epochs of 2 batches, validation each epoch)."""
    with pytest.MonkeyPatch.context() as mp:
        recorders: list[HookRecorder] = []
        mp.setattr(_Recorded, "recorders", recorders)
        mp.setattr(custom_loop, "LoopDriver", _Recorded)
        custom_loop.main(max_epochs=2, n_train=128, batch_size=64)
    (recorder,) = recorders
    return recorder.events


def _hooks(events: list[TraceEvent], src: str) -> list[str]:
    return [e["hook"] for e in events if e["src"] == src]


def _ok(result: VerifyResult, name: str = "trace") -> None:
    assert result.ok, result.report(name)


def _copy(events: list[TraceEvent]) -> list[TraceEvent]:
    copied: list[TraceEvent] = json.loads(json.dumps(events))
    return copied


def _index(events: list[TraceEvent], src: str, hook: str, nth: int = 0) -> int:
    return [i for i, e in enumerate(events) if (e["src"], e["hook"]) == (src, hook)][nth]


def _write(path: Path, events: list[TraceEvent]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


# --------------------------------------------------------------------------- the examples


def test_custom_loop_example_trace_verifies(loop_trace: list[TraceEvent]) -> None:
    assert loop_trace and all("state" in e["ctx"] for e in loop_trace)
    module_hooks = _hooks(loop_trace, "module")
    # what the bug was about: the caller supplied the optimizers and the training step
    assert "configure_optimizers" not in module_hooks and "training_step" not in module_hooks
    assert "validation_step" not in module_hooks and module_hooks.count("on_train_batch_end") == 4
    result = verify_trace(loop_trace)
    _ok(result, "custom_loop")
    assert result.callbacks == (1,) and result.checked == len(loop_trace)


def test_custom_event_example_trace_verifies_with_its_lifecycle(recorded: list[HookRecorder]) -> None:
    ema = custom_event.main(epochs=2, batches=3)
    (recorder,) = recorded
    events = recorder.events
    assert _hooks(events, "callback").count("on_ema_update") == ema.updates == 6
    _ok(verify_trace(events, custom_event.LIFECYCLE), "custom_event")
    result = verify_trace(events)  # lightcycle's own declaration has no ema_update
    assert not result.ok and "on_ema_update" in result.violation.message  # type: ignore[union-attr]
    # the custom event only where it is declared: after a batch's optimizer step
    moved = _copy(events)
    k = _index(moved, "callback", "on_ema_update", 1)
    ema_event = moved.pop(k)
    moved.insert(_index(moved, "callback", "on_train_batch_start", 1), ema_event)
    assert not verify_trace(moved, custom_event.LIFECYCLE).ok


def test_cli_verifies_the_examples_traces(
    tmp_path: Path, loop_trace: list[TraceEvent], recorded: list[HookRecorder], capsys: pytest.CaptureFixture[str]
) -> None:
    custom_event.main(epochs=2, batches=2)
    loop_file = _write(tmp_path / "custom_loop.jsonl", loop_trace)
    event_file = _write(tmp_path / "custom_event.jsonl", recorded[0].events)
    capsys.readouterr()
    assert cli_main(["verify", str(loop_file)]) == 0
    assert cli_main(["verify", str(event_file), "--lifecycle", "examples.custom_event:LIFECYCLE"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK ") == 2 and "on_ema_update" in out
    assert cli_main(["verify", str(event_file)]) == 1

    # the installed console script, from the repository root (examples/ is not installed)
    script = Path(sys.executable).with_name("lightcycle")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lightcycle"]
    done = subprocess.run(
        [*command, "verify", str(event_file), "--lifecycle", "examples.custom_event:LIFECYCLE"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK ")
    done = subprocess.run([*command, "verify", str(loop_file)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- mutations fail


def _fails(events: list[TraceEvent], *words: str) -> str:
    result = verify_trace(events)
    assert not result.ok, "the mutated trace passed"
    assert result.violation is not None
    for word in words:
        assert word in result.violation.message, result.report("mutated")
    return result.violation.message


def test_dropped_on_train_batch_end_fails(loop_trace: list[TraceEvent]) -> None:
    for src in ("callback", "module"):
        events = _copy(loop_trace)
        del events[_index(events, src, "on_train_batch_end", 1)]
        _fails(events, "on_train_batch_")


def test_swapped_callback_hooks_fail(loop_trace: list[TraceEvent]) -> None:
    events = _copy(loop_trace)
    i = _index(events, "callback", "on_before_backward")
    j = _index(events, "callback", "on_before_optimizer_step")
    events[i], events[j] = events[j], events[i]
    _fails(events)
    events = _copy(loop_trace)
    i, j = _index(events, "callback", "on_fit_start"), _index(events, "callback", "on_train_start")
    events[i], events[j] = events[j], events[i]
    _fails(events)


def test_every_mutation_of_the_custom_loop_trace_is_caught(loop_trace: list[TraceEvent]) -> None:
    """The sweep of tests/commands/test_verify.py on the custom loop's trace (with ctx.state)."""
    missed: list[str] = []
    wrongly: list[str] = []
    mutations = _mutations(loop_trace)
    for what, mutated, allowed in mutations:
        ok = verify_trace(mutated).ok
        if ok and not allowed and not _same_order(loop_trace, what):
            missed.append(what)
        if allowed and not ok:
            wrongly.append(what)
    assert len(mutations) > 400
    assert not missed, f"{len(missed)} mutation(s) not caught: {missed[:10]}"
    assert not wrongly, f"allowed mutations rejected: {wrongly[:10]}"


def test_skipped_hooks_need_the_recorded_state(loop_trace: list[TraceEvent]) -> None:
    """Without ctx.state (Lightning's traces) a missing required module hook is not inferred."""
    stateless = _copy(loop_trace)
    for e in stateless:
        del e["ctx"]["state"]
    _fails(stateless, "on_fit_start", "configure_optimizers")
    # and a state that does not follow from the skipped transition is no proof
    events = _copy(loop_trace)
    events[_index(events, "callback", "on_fit_start")]["ctx"]["state"] = "fit.setup"
    _fails(events, "on_fit_start")
    events = _copy(loop_trace)
    events[_index(events, "callback", "on_before_backward")]["ctx"]["state"] = "fit.train.epoch.batch.started"
    _fails(events, "on_before_backward")


# --------------------------------------------------------------------------- small LoopDriver runs


Plain = kit.plain_module_class(L)  # only ``forward``: every step is the loop's own code


class WithOptimizers(Plain):
    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g)) for _ in range(n)]


def _record(module: L.LightningModule, **kwargs: Any) -> tuple[LoopDriver, HookRecorder]:
    recorder = HookRecorder()
    return LoopDriver(module, callbacks=[recorder], **kwargs), recorder


def _train(lc: LoopDriver, model: nn.Module, opt: torch.optim.Optimizer, epochs: int = 2) -> None:
    for _ in lc.epochs(epochs):
        for i, batch in enumerate(_data()):
            x, y = lc.train_batch_start(batch, i)
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            lc.backward(loss)
            lc.optimizer_step(opt)
            lc.train_batch_end(loss)
        with lc.validation():
            for i, batch in enumerate(_data(2)):
                x, y = lc.validation_batch_start(batch, i)
                lc.validation_batch_end(nn.functional.mse_loss(model(x), y))


def test_loop_with_the_modules_optimizers_verifies() -> None:
    model = WithOptimizers()
    lc, recorder = _record(model)
    with lc.fit():
        _train(lc, model, lc.optimizers[0] if isinstance(lc.optimizers, list) else lc.optimizers)
    assert "configure_optimizers" in _hooks(recorder.events, "module")
    _ok(verify_trace(recorder.events))


def test_given_optimizers_skip_the_modules_configure_optimizers() -> None:
    model = WithOptimizers()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lc, recorder = _record(model)
    with lc.fit(optimizers=opt):
        _train(lc, model, opt, epochs=1)
    assert "configure_optimizers" not in _hooks(recorder.events, "module")
    _ok(verify_trace(recorder.events))


def test_evaluation_runs_without_steps_verify() -> None:
    model = Plain()
    lc, recorder = _record(model)
    with lc.validate():
        for i, batch in enumerate(_data(2)):
            x, y = lc.validation_batch_start(batch, i)
            lc.validation_batch_end(nn.functional.mse_loss(model(x), y))
    with lc.test():
        for i, batch in enumerate(_data(2)):
            x, y = lc.test_batch_start(batch, i)
            lc.test_batch_end(nn.functional.mse_loss(model(x), y))
    with lc.predict():
        for i, batch in enumerate(_data(2)):
            x, _ = lc.predict_batch_start(batch, i)
            lc.predict_batch_end(model(x))
    events = recorder.events
    assert not {"validation_step", "test_step", "predict_step"} & set(_hooks(events, "module"))
    _ok(verify_trace(events))
    # a dropped callback hook is still caught
    del events[_index(events, "callback", "on_test_batch_start", 1)]
    _fails(events, "on_test_batch_start", "dropped")


def test_exception_in_a_custom_loop_verifies() -> None:
    model = Plain()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lc, recorder = _record(model)
    with pytest.raises(RuntimeError, match="boom"), lc.fit(optimizers=opt):
        for _ in lc.epochs(2):
            for i, batch in enumerate(_data()):
                x, y = lc.train_batch_start(batch, i)
                loss = nn.functional.mse_loss(model(x), y)
                lc.backward(loss)
                if i == 1:
                    raise RuntimeError("boom")
                lc.optimizer_step(opt)
                lc.train_batch_end(loss)
    assert _hooks(recorder.events, "callback")[-1] == "on_exception"
    _ok(verify_trace(recorder.events))
    cut = recorder.events[: _index(recorder.events, "callback", "on_exception")]
    assert not verify_trace(cut).ok and verify_trace(cut, partial=True).ok


# --------------------------------------------------------------------------- the Trainer, plain module


class BoringPlain(L.LightningModule):
    """A module that overrides no hook: steps, optimizers and data only."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self(batch[0])
        return out

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader()

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader()

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader()

    def predict_dataloader(self) -> DataLoader[Any]:
        return self._loader()

    @staticmethod
    def _loader() -> DataLoader[Any]:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(16, 4, generator=g)
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)


def test_trainer_run_with_a_plain_module_verifies(tmp_path: Path) -> None:
    recorder = HookRecorder()
    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=3,
        limit_val_batches=2,
        limit_test_batches=2,
        limit_predict_batches=2,
        num_sanity_val_steps=1,
        callbacks=[recorder],
        default_root_dir=str(tmp_path),
        **kit.quiet(),
    )
    model = BoringPlain()
    trainer.fit(model)
    trainer.validate(model)
    trainer.test(model)
    trainer.predict(model)
    events = recorder.events
    assert all("state" in e["ctx"] for e in events)
    module_hooks = set(_hooks(events, "module"))
    # the base no-op hooks are recorded too (the recorder observes them)
    assert {"on_fit_start", "on_train_batch_end", "configure_optimizers", "training_step"} <= module_hooks
    _ok(verify_trace(events), "trainer")
    _ok(verify_trace(events, LIFECYCLE), "trainer")
    mutated = _copy(events)
    del mutated[_index(mutated, "module", "on_train_epoch_end")]
    _fails(mutated, "on_train_epoch_end")
