"""The generated batch start's inlined transfer (``fused_step._write_transfer``) against Lightning.

Where the transfer event's only hook is the module's base ``transfer_batch_to_device`` and
the target is the CPU, the generated batch start (the Trainer's and the LoopDriver's) moves a
list of plain CPU tensors without calling the hook: a new list of the same tensors, what the
hook returns. Every other batch or module takes the hook. Each case runs a Trainer and a
LoopDriver of lightcycle and Lightning's Trainer on the same batches, records what
``training_step`` (the driver: the loop) receives, and says whether the base hook's
``move_data_to_device`` ran; lightcycle's records must be Lightning's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
import pytorch_lightning as pl
import torch
from torch.nn import functional as F

import lightcycle as LC
from lightcycle import LoopDriver
from lightcycle.core import hooks as hooks_module


class Pair(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor


@dataclasses.dataclass
class Sample:
    x: torch.Tensor
    y: torch.Tensor


class Marked(torch.Tensor):
    """A tensor subclass: its ``.to`` may be anything, so it never takes the inlined path."""


def _tensors(batch: Any) -> list[torch.Tensor]:
    if isinstance(batch, dict):
        return list(batch.values())
    if dataclasses.is_dataclass(batch):
        return [batch.x, batch.y]
    return list(batch)


def _record(batch: Any, original: Any) -> tuple[Any, ...]:
    """What a step sees of its batch: the container (and whether it is the loader's own), the
    tensors' types, values, devices, and which of them are the loader's own objects (a CPU
    target keeps CPU tensors as they are)."""
    tensors = _tensors(batch)
    originals = _tensors(original)
    return (
        type(batch).__name__,
        batch is original,
        [type(t).__name__ for t in tensors],
        [t.device.type for t in tensors],
        [round(float(t.sum()), 5) for t in tensors],
        [t is o for t, o in zip(tensors, originals, strict=True)],
    )


def _x_y(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = _tensors(batch)
    return tensors[0].as_subclass(torch.Tensor), tensors[1].as_subclass(torch.Tensor)


def _make(kind: str) -> Callable[[torch.Tensor, torch.Tensor], Any]:
    return {
        "list": lambda x, y: [x, y],
        "tuple": lambda x, y: (x, y),
        "dict": lambda x, y: {"x": x, "y": y},
        "namedtuple": Pair,
        "dataclass": Sample,
        "subclass": lambda x, y: [x.as_subclass(Marked), y],
    }[kind]


def _batches(kind: str) -> list[Any]:
    g = torch.Generator().manual_seed(3)
    make = _make(kind)
    return [make(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(3)]


def _module_class(
    base: type, override: str | None, seen: list[tuple[Any, ...]], batches: list[Any], step: bool = True
) -> type:
    """A module recording each training batch, with ``override`` (a transfer hook) overridden
    (``step=False``: no ``training_step``, a custom loop's own step)."""

    def training_step(self: Any, batch: Any, batch_idx: int) -> Any:
        seen.append(_record(batch, batches[batch_idx]))
        x, y = _x_y(batch)
        return F.mse_loss(self.net(x), y)

    def init(self: Any) -> None:
        base.__init__(self)
        torch.manual_seed(0)
        self.net = torch.nn.Linear(3, 1)

    body: dict[str, Any] = {
        "__init__": init,
        "configure_optimizers": lambda self: torch.optim.SGD(self.parameters(), lr=0.1),
    }
    if step:
        body["training_step"] = training_step
    if override == "transfer_batch_to_device":
        body[override] = lambda self, batch, device, dataloader_idx: base.transfer_batch_to_device(
            self, batch, device, dataloader_idx
        )
    elif override == "on_before_batch_transfer":
        # (a new list of the same tensors: one that hands the batch on as is is left out as a no-op)
        body[override] = lambda self, batch, dataloader_idx: [*batch]
    return type("Model", (base,), body)


class _Loader:
    """The batches as they are (no collate copy), so the kept tensors are the loader's own."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    def __iter__(self) -> Any:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _trainer_kwargs() -> dict[str, Any]:
    return {
        "max_epochs": 2,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "accelerator": "cpu",
    }


def _lightning(kind: str, override: str | None) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    batches = _batches(kind)
    model = _module_class(pl.LightningModule, override, seen, batches)()
    pl.Trainer(**_trainer_kwargs()).fit(model, train_dataloaders=_Loader(batches))
    return seen


def _moves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the base hook's calls of ``move_data_to_device`` (the hook path)."""
    calls: list[int] = []
    real = hooks_module.move_data_to_device

    def counted(batch: Any, device: Any) -> Any:
        calls.append(1)
        return real(batch, device)

    monkeypatch.setattr(hooks_module, "move_data_to_device", counted)
    return calls


def _ours(kind: str, override: str | None, monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[Any, ...]], int]:
    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", "generated")
    calls = _moves(monkeypatch)
    seen: list[tuple[Any, ...]] = []
    batches = _batches(kind)
    model = _module_class(LC.LightningModule, override, seen, batches)()
    LC.Trainer(**_trainer_kwargs()).fit(model, train_dataloaders=_Loader(batches))
    return seen, len(calls)


def _driver(kind: str, override: str | None, monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[Any, ...]], int]:
    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", "generated")
    calls = _moves(monkeypatch)
    seen: list[tuple[Any, ...]] = []
    batches = _batches(kind)
    model = _module_class(LC.LightningModule, override, seen, batches, step=False)()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lc = LoopDriver(model, device=torch.device("cpu"))
    with lc.fit(optimizers=[opt]):
        for _epoch in lc.epochs(max_epochs=2):
            for i, batch in enumerate(batches):
                moved = lc.train_batch_start(batch, i)
                assert "train_batch_start" in lc.__dict__, "the generated batch start is installed"
                seen.append(_record(moved, batch))
                opt.zero_grad()
                x, y = _x_y(moved)
                loss = F.mse_loss(model.net(x), y)
                lc.backward(loss)
                lc.optimizer_step(opt)
                lc.train_batch_end(loss)
    return seen, len(calls)


CASES = [
    ("list", None, False),  # collate's default output: inlined, no hook call
    ("tuple", None, True),
    ("dict", None, True),
    ("namedtuple", None, True),
    ("dataclass", None, True),
    ("subclass", None, True),
    ("list", "transfer_batch_to_device", True),
    ("list", "on_before_batch_transfer", True),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("kind", "override", "hooked"), CASES, ids=[f"{k}-{o or 'base'}" for k, o, _ in CASES])
def test_transfer_gives_lightning_s_batches(
    kind: str, override: str | None, hooked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = _lightning(kind, override)
    assert len(theirs) == 6
    ours, ours_calls = _ours(kind, override, monkeypatch)
    driver, driver_calls = _driver(kind, override, monkeypatch)
    assert ours == theirs
    assert driver == theirs
    # the hook path: the base hook moves every batch (the override calls it too); else none
    assert ours_calls == (6 if hooked else 0)
    assert driver_calls == (6 if hooked else 0)


def _meta_batches() -> list[Any]:
    return [[torch.ones(4, 3, device="meta"), torch.ones(4, 1, device="meta")]]


def test_a_tensor_off_the_cpu_takes_the_hook_and_fails_as_lightning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list whose tensors are elsewhere (``meta``: cannot be copied to the CPU) is the hook's."""
    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", "generated")
    calls = _moves(monkeypatch)
    errors = []
    for base, make_trainer in ((pl.LightningModule, pl.Trainer), (LC.LightningModule, LC.Trainer)):
        model = _module_class(base, None, [], _meta_batches())()
        with pytest.raises(NotImplementedError) as err:
            make_trainer(**_trainer_kwargs()).fit(model, train_dataloaders=_Loader(_meta_batches()))
        errors.append(str(err.value))
    assert errors[0] == errors[1]
    assert calls == [1]
    model = _module_class(LC.LightningModule, None, [], _meta_batches(), step=False)()
    lc = LoopDriver(model, device=torch.device("cpu"))
    with pytest.raises(NotImplementedError) as err, lc.fit(optimizers=[torch.optim.SGD(model.parameters(), lr=0.1)]):
        for _epoch in lc.epochs(max_epochs=1):
            assert "train_batch_start" in lc.__dict__, "the generated batch start is installed"
            lc.train_batch_start(_meta_batches()[0], 0)
    assert str(err.value) == errors[0]
    assert calls == [1, 1]
