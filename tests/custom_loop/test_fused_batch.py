"""The LoopDriver's generated per-batch methods (``lightcycle/custom_loop/fused.py``).

Within a fit run, ``train_batch_start``, ``backward``, ``optimizer_step`` and
``train_batch_end`` run as generated functions on the instance. The class's methods are the
reference (their hook order is compared with Lightning's in ``test_custom_loop.py``); here the
same loops run both ways, the generated functions and the methods alone (``batch_functions``
made to return nothing), and everything observable must be equal: every hook call with the
module's ``_current_fx_name`` and the counters it saw, the refusals of calls out of order, the
exceptions and ``on_exception``, the counters, metrics and weights at the end.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import lightcycle
from lightcycle import LoopDriver
from lightcycle import precision as LCP
from lightcycle.custom_loop import training as training_module
from lightcycle.errors import LifecycleError, SIGTERMException

_NAMES = ("train_batch_start", "backward", "optimizer_step", "train_batch_end")


@contextmanager
def _methods_only() -> Iterator[None]:
    """The class's methods only: no generated per-batch functions are made."""
    made = training_module.batch_functions
    training_module.batch_functions = lambda lc: {}
    try:
        yield
    finally:
        training_module.batch_functions = made


def _view(trainer: Any, module: Any) -> dict[str, Any]:
    loop = trainer.fit_loop
    return {
        "fx": module._current_fx_name,
        "step": trainer.global_step,
        "stepped": loop.batches_that_stepped,
        "batch_idx": loop.batch_idx,
        "ready": loop.batches_ready,
        "state": trainer.lifecycle_state,
    }


class _Seen(lightcycle.Callback):
    """Records each per-batch hook with what it saw; ``fail`` raises in one of them."""

    def __init__(self, fail: tuple[str, int] | None = None) -> None:
        self.seen: list[tuple[Any, ...]] = []
        self.fail = fail
        self.exceptions: list[BaseException] = []

    def _see(self, hook: str, trainer: Any, module: Any, *args: Any) -> None:
        self.seen.append((hook, _view(trainer, module), *args))
        if self.fail == (hook, len(self.seen)):
            raise ValueError(f"injected in {hook}")

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._see("on_train_batch_start", trainer, pl_module, batch_idx)

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        self._see("on_before_backward", trainer, pl_module, round(float(loss.detach()), 6))

    def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
        self._see("on_after_backward", trainer, pl_module)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self._see("on_before_optimizer_step", trainer, pl_module)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._see("on_train_batch_end", trainer, pl_module, sorted(outputs), batch_idx)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._see("on_validation_start", trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._see("on_train_epoch_end", trainer, pl_module)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.exceptions.append(exception)


class _Module(lightcycle.LightningModule):
    """The loop is its step; the module's own backward and on_train_batch_start record too."""

    def __init__(self, cut: frozenset[tuple[int, int]] = frozenset()) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.cut = cut  # (epoch, batch_idx) where on_train_batch_start returns -1
        self.seen: list[tuple[Any, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        self.seen.append(("backward", _view(self.trainer, self)))
        loss.backward(*args, **kwargs)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        self.seen.append(("on_train_batch_start", _view(self.trainer, self)))
        return -1 if (self.current_epoch, batch_idx) in self.cut else None


class _BaseBackward(_Module):
    """The base ``backward`` (the generated method writes its one call); autograd records what it sees."""

    backward = lightcycle.LightningModule.backward  # type: ignore[assignment]

    def __init__(self, cut: frozenset[tuple[int, int]] = frozenset()) -> None:
        super().__init__(cut)
        self.layer.weight.register_hook(self._autograd)

    def _autograd(self, grad: torch.Tensor) -> None:
        self.seen.append(("autograd", _view(self.trainer, self)))


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 2, generator=g), torch.randn(4, 1, generator=g)) for _ in range(4)]


def _step_returning(optimizer: torch.optim.Optimizer, value: int) -> int:
    optimizer.step()
    return value


def _loop(lc: LoopDriver, opt: torch.optim.Optimizer, epochs: int = 3) -> list[Any]:
    """Every shape a batch can take: two backwards and no step, a step callable, dict and None outputs, a cut."""
    installed: list[Any] = []
    calls_bracket: list[bool] = []  # the generated start calls the bracket's start (not written inline)
    steps: list[int] = []
    with lc.fit(optimizers=[opt]):
        for epoch in lc.epochs(epochs):
            installed.append(sorted(n for n in _NAMES if n in vars(lc)))
            start = vars(lc).get("train_batch_start")
            calls_bracket.append(start is not None and "begin" in start.__code__.co_freevars)
            cut = False
            for i, batch in enumerate(_batches()):
                got = lc.train_batch_start(batch, i)
                if got is None:
                    cut = True  # (the rest of the epoch is skipped, its validation too)
                    break
                x, y = got
                opt.zero_grad()
                loss = nn.functional.mse_loss(lc.lightning_module(x), y)
                lc.log("loss", loss)
                if i == 1:  # accumulate: two backwards, no step (the batch did not step)
                    lc.backward(loss / 2)
                    lc.backward(nn.functional.mse_loss(lc.lightning_module(x), y) / 2)
                    lc.train_batch_end({"loss": loss.detach(), "extra": 1})
                    continue
                lc.backward(loss)
                if i == 2:
                    steps.append(lc.optimizer_step(opt, functools.partial(_step_returning, value=epoch)))
                else:
                    lc.optimizer_step(opt)
                lc.train_batch_end(None if i == 3 else loss)
            if not cut:
                with lc.validation():
                    lc.validation_batch_start(_batches()[0], 0)
                    lc.validation_batch_end()
    return [installed, steps, calls_bracket]


def _run(
    body: Callable[[LoopDriver, torch.optim.Optimizer], Any],
    *,
    cut: frozenset[tuple[int, int]] = frozenset(),
    **kw: Any,
) -> dict[str, Any]:
    torch.manual_seed(0)
    module = (_BaseBackward if kw.pop("base_backward", False) else _Module)(cut)
    cb = _Seen(kw.pop("fail", None))
    lc = LoopDriver(module, [cb], **kw)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    error: str | None = None
    out: Any = None
    try:
        out = body(lc, opt)
    except BaseException as exc:  # compared between the two runs (SIGTERMException is one)
        error = f"{type(exc).__name__}: {exc}"
    return {
        "out": out,
        "error": error,
        "callback": cb.seen,
        "exceptions": [f"{type(e).__name__}: {e}" for e in cb.exceptions],
        "module": module.seen,
        "fx_after": module._current_fx_name,
        "loop": attrs.asdict(lc.fit_loop),
        "metrics": {k: float(v) for k, v in lc.callback_metrics.items()},
        "status": lc.state.status,
        "lifecycle": lc.lifecycle_state,
        "weights": [p.detach().clone() for p in module.parameters()],
    }


def _same(fused: dict[str, Any], methods: dict[str, Any]) -> None:
    for key in fused:
        if key == "weights":
            for a, b in zip(fused[key], methods[key], strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        elif key != "out":
            assert fused[key] == methods[key], key


def _both(body: Callable[[LoopDriver, torch.optim.Optimizer], Any], **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    fused = _run(body, **dict(kw))
    with _methods_only():
        methods = _run(body, **dict(kw))
    _same(fused, methods)
    return fused, methods


def test_the_generated_methods_run_the_same_batches_as_the_class_methods() -> None:
    fused, methods = _both(_loop, cut=frozenset({(1, 2)}))
    assert fused["out"][0] == [sorted(_NAMES)] * 3  # installed for every epoch ...
    assert methods["out"][0] == [[]] * 3  # ... and not in the reference run
    assert fused["out"][1] == methods["out"][1] == [0, 2]  # what the step callable returned
    assert fused["out"][2] == [False] * 3  # (the bracket written into the generated start)
    assert fused["error"] is None and fused["exceptions"] == []
    # what the checks above compared is the real thing: names, counters, the cut epoch
    hooks = [s[0] for s in fused["callback"]]
    assert hooks.count("on_before_backward") == 5 + 3 + 5  # (batch 1 backwards twice; epoch 1 is cut at batch 2)
    assert ("backward", "backward") in {(s[0], s[1]["fx"]) for s in fused["module"]}
    before_step = [s for s in fused["callback"] if s[0] == "on_before_optimizer_step"]
    assert {s[1]["fx"] for s in before_step} == {"on_before_optimizer_step"}
    assert fused["fx_after"] is None
    assert fused["loop"]["global_step"] == 3 + 1 + 3
    # batches that stepped are counted after the validation that follows them
    val = [s[1]["stepped"] for s in fused["callback"] if s[0] == "on_validation_start"]
    assert val == [2, 6]  # (epoch 0: batches 0 and 2, not 3 yet; then 3, epoch 1's 0, epoch 2's 0 and 2)


def test_the_base_backward_written_out_runs_as_the_method_s_hook_call() -> None:
    fused, _ = _both(_loop, base_backward=True)
    assert fused["out"][0] == [sorted(_NAMES)] * 3
    seen = {(s[0], s[1]["fx"], s[1]["state"]) for s in fused["module"]}
    assert ("autograd", "backward", "fit.train.epoch.batch.manual") in seen
    assert not any(s[0] == "backward" for s in fused["module"])  # (the base hook records nothing)


def test_the_generated_methods_are_made_at_the_first_epoch_and_dropped_at_the_next_run() -> None:
    lc = LoopDriver(_Module())
    opt = torch.optim.SGD(lc.lightning_module.parameters(), lr=0.1)
    assert not any(n in vars(lc) for n in _NAMES)
    lc.begin("fit", optimizers=[opt])
    assert not any(n in vars(lc) for n in _NAMES)  # (until an epoch starts)
    epochs = lc.epochs(2)
    next(epochs)
    first = {n: vars(lc)[n] for n in _NAMES}
    assert all(fn.__name__ == f"fire_driver_{n}" for n, fn in first.items())
    assert first["backward"].__doc__ == LoopDriver.backward.__doc__
    next(epochs)
    assert all(vars(lc)[n] is first[n] for n in _NAMES)  # made once for the run
    lc.end()
    lc.begin("fit", optimizers=[opt])
    next(lc.epochs(1))
    assert all(vars(lc)[n] is not first[n] for n in _NAMES)  # a new run's own
    lc.end()
    lc.begin("validate")
    assert not any(n in vars(lc) for n in _NAMES)
    lc.end()


def test_no_generated_methods_where_events_are_not_inlined() -> None:
    lc = LoopDriver(_Module())
    lc._driver.executor = "interpreted"
    opt = torch.optim.SGD(lc.lightning_module.parameters(), lr=0.1)
    lc.begin("fit", optimizers=[opt])
    next(lc.epochs(1))
    assert not any(n in vars(lc) for n in _NAMES)
    lc.end()


def test_a_subclass_override_and_the_instance_s_own_method_are_kept() -> None:
    calls: list[str] = []

    class Driver(LoopDriver):
        def backward(self, loss: torch.Tensor) -> None:
            calls.append("override")
            super().backward(loss)

    lc = Driver(_Module())
    start = lc.train_batch_start

    def own_start(batch: Any, batch_idx: int) -> Any:  # as DDP's agreeing start is the instance's own
        calls.append("own start")
        return start(batch, batch_idx)

    lc.train_batch_start = own_start  # type: ignore[method-assign]
    opt = torch.optim.SGD(lc.lightning_module.parameters(), lr=0.1)
    with lc.fit(optimizers=[opt]):
        for _epoch in lc.epochs(1):
            assert sorted(lc._batch_functions or {}) == ["optimizer_step", "train_batch_end"]
            x, y = lc.train_batch_start(_batches()[0], 0)
            lc.backward(nn.functional.mse_loss(lc.lightning_module(x), y))
            lc.optimizer_step(opt)
            lc.train_batch_end()
    assert calls == ["own start", "override"]
    assert vars(lc)["train_batch_start"] is own_start and "backward" not in vars(lc)


def _refused(call: str) -> Callable[[LoopDriver, torch.optim.Optimizer], Any]:
    """A body that makes one call out of order inside an epoch (no guard: the run stays open)."""

    def body(lc: LoopDriver, opt: torch.optim.Optimizer) -> Any:
        lc.begin("fit", optimizers=[opt])
        next(lc.epochs(1))
        batch = _batches()[0]
        loss = nn.functional.mse_loss(lc.lightning_module(batch[0]), batch[1])
        if call in ("end_twice", "step_after_end", "backward_after_end", "backward_after_run"):
            lc.train_batch_start(batch, 0)
            lc.backward(loss)
            lc.optimizer_step(opt)
            lc.train_batch_end(loss)
            loss = nn.functional.mse_loss(lc.lightning_module(batch[0]), batch[1])
        if call == "backward_after_run":
            lc.end()
        if call == "start_twice":
            lc.train_batch_start(batch, 0)
        before = (
            attrs.asdict(lc.fit_loop),
            lc.lifecycle_state,
            [p.detach().clone() for p in opt.param_groups[0]["params"]],
        )
        with pytest.raises(LifecycleError) as info:
            if call.startswith("backward"):
                lc.backward(loss)
            elif call in ("step", "step_after_end"):
                lc.optimizer_step(opt)
            elif call in ("end", "end_twice"):
                lc.train_batch_end(loss)
            else:
                lc.train_batch_start(batch, 1)
        after = (attrs.asdict(lc.fit_loop), lc.lifecycle_state, list(opt.param_groups[0]["params"]))
        assert after[:2] == before[:2], "a refused call changed the run"
        for a, b in zip(after[2], before[2], strict=True):
            assert torch.equal(a, b), "a refused optimizer_step stepped"
        return str(info.value), sorted(n for n in _NAMES if n in vars(lc))

    return body


@pytest.mark.parametrize(
    "call",
    [
        "backward",
        "step",
        "end",
        "start_twice",
        "end_twice",
        "step_after_end",
        "backward_after_end",
        "backward_after_run",
    ],
)
def test_a_call_out_of_order_is_refused_as_by_the_method(call: str) -> None:
    fused, methods = _both(_refused(call))
    assert fused["out"][0] == methods["out"][0] and "is not allowed now" in fused["out"][0]
    assert fused["out"][1] == sorted(_NAMES) and methods["out"][1] == []  # (refused by each)
    assert fused["error"] is None


@pytest.mark.parametrize(
    "fail",
    [("on_before_backward", 2), ("on_after_backward", 3), ("on_before_optimizer_step", 4), ("on_train_batch_end", 5)],
)
def test_an_exception_in_a_hook_of_the_generated_path_fires_on_exception_once(fail: tuple[str, int]) -> None:
    fused, _ = _both(_loop, fail=fail)
    assert fused["error"] == f"ValueError: injected in {fail[0]}"
    assert fused["exceptions"] == [fused["error"]]
    assert fused["status"].value == "interrupted" and fused["lifecycle"] == "idle"
    assert fused["fx_after"] is None  # the hook's name was set back


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed", "64-true"])
def test_the_precision_paths_are_the_methods(precision: str) -> None:
    plugin = LCP.MixedPrecision(precision, "cpu") if precision.endswith("mixed") else precision
    fused, _ = _both(_loop, precision=plugin)
    assert fused["error"] is None
    expected = ["train_batch_end", "train_batch_start"]
    if precision != "16-mixed":  # no scaler: the loss is not scaled and the optimizer steps itself
        expected = sorted(_NAMES)
    assert fused["out"][0] == [expected] * 3
    # a precision that converts the input first: the bracket's own start and end are called
    assert fused["out"][2] == [precision == "64-true"] * 3


def test_sigterm_raises_at_the_next_batch_start() -> None:
    def body(lc: LoopDriver, opt: torch.optim.Optimizer) -> Any:
        with lc.fit(optimizers=[opt]):
            for _epoch in lc.epochs(1):
                for i, batch in enumerate(_batches()):
                    x, y = lc.train_batch_start(batch, i)
                    lc.backward(nn.functional.mse_loss(lc.lightning_module(x), y))
                    lc.optimizer_step(opt)
                    if i == 1:
                        signal.raise_signal(signal.SIGTERM)  # the run's handler sets received_sigterm
                    lc.train_batch_end()
        return None

    fused, _ = _both(body)
    assert fused["error"] == f"{SIGTERMException.__name__}: {signal.SIGTERM + 128}"
    assert fused["loop"]["global_step"] == 2 and fused["exceptions"] == [fused["error"]]


# --------------------------------------------------------------------------- drawn sequences, in lockstep


def _loss_of(lc: LoopDriver) -> torch.Tensor:
    x, y = _batches()[0]
    return nn.functional.mse_loss(lc.lightning_module(x), y)


def _validation(lc: LoopDriver) -> None:
    with lc.validation():
        lc.validation_batch_start(_batches()[1], 0)
        lc.validation_batch_end()


_DRAWN: dict[str, Callable[[LoopDriver, int], Any]] = {
    "train_batch_start": lambda lc, i: lc.train_batch_start(_batches()[i % 4], i),
    "backward": lambda lc, i: lc.backward(_loss_of(lc)),
    "optimizer_step": lambda lc, i: lc.optimizer_step(lc.optimizers[0]),
    "optimizer_step(fn)": lambda lc, i: lc.optimizer_step(
        lc.optimizers[0], functools.partial(_step_returning, value=i)
    ),
    "train_batch_end(loss)": lambda lc, i: lc.train_batch_end(_loss_of(lc)),
    "train_batch_end()": lambda lc, i: lc.train_batch_end(),
    "train_batch_end(dict)": lambda lc, i: lc.train_batch_end({"loss": _loss_of(lc).detach(), "n": i}),
    "log": lambda lc, i: lc.log("drawn", float(i)),
    "validation": lambda lc, i: _validation(lc),
    "train_epoch_end": lambda lc, i: lc.train_epoch_end(),
    "train_epoch_start": lambda lc, i: lc.train_epoch_start(),
}


def _outcome(call: Callable[[LoopDriver, int], Any], lc: LoopDriver, i: int) -> tuple[Any, ...]:
    try:
        value = call(lc, i)
    except Exception as exc:  # compared between the two drivers
        return ("raised", type(exc).__name__, str(exc))
    return ("returned", value if isinstance(value, (int, type(None))) else type(value).__name__)


def _state(lc: LoopDriver) -> tuple[Any, ...]:
    return (
        attrs.asdict(lc.fit_loop),
        lc.lifecycle_state,
        lc.state.stage,
        {k: float(v) for k, v in lc.callback_metrics.items()},
    )


@given(data=st.data())
def test_drawn_calls_do_what_the_methods_do(data: Any) -> None:
    """Both drivers get the same calls, legal or not, and must answer and end up alike at every one."""
    drivers: list[LoopDriver] = []
    for _ in range(2):
        torch.manual_seed(0)
        module = _Module(cut=frozenset({(0, 3), (1, 1)}))
        lc = LoopDriver(module, [_Seen()])
        lc.begin("fit", optimizers=[torch.optim.SGD(module.parameters(), lr=0.1)])
        drivers.append(lc)
    fused, methods = drivers
    fused.train_epoch_start()
    with _methods_only():
        methods.train_epoch_start()
    assert sorted(fused._batch_functions or {}) == sorted(_NAMES) and methods._batch_functions == {}
    names = sorted(_DRAWN)
    for i in range(data.draw(st.integers(1, 40), label="length")):
        name = data.draw(st.sampled_from(names), label="call")
        call = _DRAWN[name]
        got = _outcome(call, fused, i)
        with _methods_only():
            expected = _outcome(call, methods, i)
        assert got == expected, name
        assert _state(fused) == _state(methods), name
    for a, b in zip(fused.callbacks, methods.callbacks, strict=True):
        if isinstance(a, _Seen):
            assert a.seen == b.seen  # type: ignore[attr-defined]
    assert fused.lightning_module.seen == methods.lightning_module.seen  # type: ignore[attr-defined]
    for p, q in zip(fused.lightning_module.parameters(), methods.lightning_module.parameters(), strict=True):
        assert torch.equal(p, q)


def _receiverless_batch(end_with: Any, twice: bool) -> str | None:
    """One batch of a driver with no ``on_train_batch_end`` receiver; the error text of its end, if any."""
    lc = LoopDriver(_BaseBackward())  # (no callback: nobody receives the outputs)
    opt = torch.optim.SGD(lc.lightning_module.parameters(), lr=0.1)
    x = torch.ones(4, 2)
    try:
        with lc.fit(optimizers=[opt]):  # (an exception leaves the run through on_exception)
            for _ in lc.epochs(1):
                lc.train_batch_start([x], 0)
                loss = lc.lightning_module(x).sum()
                lc.backward(loss)
                lc.optimizer_step(opt)
                lc.train_batch_end(loss if end_with is None else end_with)
                if twice:
                    lc.train_batch_end(loss)
    except (LifecycleError, lightcycle.MisconfigurationException) as err:
        return f"{type(err).__name__}: {err}"
    return None


@pytest.mark.parametrize(("end_with", "twice"), [(None, False), ("not an output", False), (None, True)])
def test_outputs_nobody_receives_are_checked_and_refused_as_by_the_method(end_with: Any, twice: bool) -> None:
    """With no receiver the loss is not converted on the inlined path, only for the event's own function."""
    fused = _receiverless_batch(end_with, twice)
    with _methods_only():
        methods = _receiverless_batch(end_with, twice)
    assert fused == methods
    if end_with is None and not twice:
        assert fused is None
    elif twice:
        assert fused is not None and "is not allowed now" in fused
    else:
        assert fused is not None and "under manual optimization return a tensor" in fused
