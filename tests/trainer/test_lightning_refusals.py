"""Lightning's errors and warnings about data and devices, compared with live Lightning (issue 14, point 7).

Each case runs the same program under pytorch_lightning and under lightcycle. The exception type
(by name: lightcycle has its own ``MisconfigurationException``) and the message must match;
lightcycle may add the fix after Lightning's message. Warnings must match by category name and
message. Errors that can be decided from the arguments come before any hook fires; the
``dataloader_idx`` checks need the loaders the ``*_dataloader`` hook returns, and fire the same
callback hooks as Lightning before the error.
"""

from __future__ import annotations

import inspect
import types
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from tests import kit
from tests.recording import BASE_KWARGS


def _dl() -> DataLoader[Any]:
    return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)


def _models(pl: types.ModuleType) -> types.SimpleNamespace:
    Train = kit.linear_module_class(pl, width=2, loss="sum", train_data=_dl)

    class Steps(Train):  # type: ignore[misc,valid-type]
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            pass

        def test_step(self, batch: Any, batch_idx: int) -> None:
            pass

        def predict_step(self, batch: Any, batch_idx: int) -> Any:
            return self(batch[0])

    class TwoLoaders(Steps):
        def val_dataloader(self) -> list[DataLoader[Any]]:
            return [_dl(), _dl()]

        def test_dataloader(self) -> list[DataLoader[Any]]:
            return [_dl(), _dl()]

        def predict_dataloader(self) -> list[DataLoader[Any]]:
            return [_dl(), _dl()]

    class NeedsIdx(Steps):
        def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int) -> None:
            pass

        def test_dataloader(self) -> DataLoader[Any]:
            return _dl()

    class EmptyData(pl.LightningDataModule):  # type: ignore[name-defined,misc]
        def train_dataloader(self) -> DataLoader[Any]:
            return _dl()

    return types.SimpleNamespace(Train=Train, Steps=Steps, TwoLoaders=TwoLoaders, NeedsIdx=NeedsIdx, Data=EmptyData)


Case = Callable[[types.ModuleType, Callable[..., Any], types.SimpleNamespace], Any]

CASES: dict[str, Case] = {
    "test_without_loader": lambda pl, T, m: T().test(m.Steps()),
    "validate_without_loader": lambda pl, T, m: T().validate(m.Steps()),
    "predict_without_loader": lambda pl, T, m: T().predict(m.Steps()),
    "test_without_loader_in_datamodule": lambda pl, T, m: T().test(m.Steps(), datamodule=m.Data()),
    "fit_val_loader_without_step": lambda pl, T, m: T().fit(m.Train(), val_dataloaders=_dl()),
    "fit_val_step_without_loader": lambda pl, T, m: T().fit(m.Steps()),
    "fit_two_val_loaders_without_idx": lambda pl, T, m: T().fit(m.TwoLoaders()),
    "fit_two_val_loaders_without_idx_no_sanity": lambda pl, T, m: T(num_sanity_val_steps=0).fit(m.TwoLoaders()),
    "validate_two_loaders_without_idx": lambda pl, T, m: T().validate(m.TwoLoaders()),
    "test_two_loaders_without_idx": lambda pl, T, m: T().test(m.TwoLoaders()),
    "predict_two_loaders_without_idx": lambda pl, T, m: T().predict(m.TwoLoaders()),
    "test_one_loader_with_required_idx": lambda pl, T, m: T().test(m.NeedsIdx()),
    "test_limit_zero_without_loader": lambda pl, T, m: T(limit_test_batches=0).test(m.Steps()),
}
# Values Lightning refuses on CPU (and a few it accepts), each at construction.
DEVICES = [-1, 1.0, 1.5, 0, 0.0, "0", [], "-1", [0], [1], (0,), None, "0,", -2, 1, "1", " 1 ", "auto", True]
for _d in DEVICES:
    CASES[f"devices={_d!r}"] = (lambda d: lambda pl, T, m: T(devices=d) and None)(_d)

# Cases decided from the arguments: no hook may fire before the error.
BEFORE_ANY_HOOK = {n for n in CASES if "without_loader" in n and not n.startswith(("fit", "test_limit"))} | {
    n for n in CASES if n.startswith("devices=")
}


def _run(pl: types.ModuleType, case: Case) -> dict[str, Any]:
    hooks: list[str] = []

    class Recorder(pl.Callback):  # type: ignore[name-defined,misc]
        pass

    for name, fn in inspect.getmembers(pl.Callback, inspect.isfunction):
        if name.startswith("on_") or name in ("setup", "teardown"):

            def record(self: Any, *args: Any, _name: str = name, _fn: Any = fn, **kwargs: Any) -> Any:
                hooks.append(_name)
                return _fn(self, *args, **kwargs)

            setattr(Recorder, name, record)

    def trainer(**kwargs: Any) -> Any:
        return pl.Trainer(
            **{**BASE_KWARGS, "max_epochs": 1, "limit_train_batches": 1, "limit_val_batches": 1, **kwargs},
            callbacks=[Recorder()],
        )

    out: dict[str, Any] = {"error": None, "hooks": hooks}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            case(pl, trainer, _models(pl))
        except Exception as exc:  # the exception is what is compared
            out["error"] = (type(exc).__name__, str(exc))
    out["warnings"] = sorted(
        (w.category.__name__, str(w.message)) for w in caught if "Skipping val loop" in str(w.message)
    )
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_refusals_and_warnings_equal_live_lightning(name: str) -> None:
    lightning = _run(PL, CASES[name])
    ours = _run(LC, CASES[name])
    if lightning["error"] is None:
        if name in ("devices=1", "devices='1'", "devices=' 1 '", "devices='auto'", "devices=True"):
            assert ours["error"] is None, ours["error"]
        else:
            assert ours["error"] is None or ours["error"][0] != "TypeError"
    else:
        assert ours["error"] is not None, f"Lightning raised {lightning['error']}, lightcycle did not"
        assert ours["error"][0] == lightning["error"][0]
        assert ours["error"][1].startswith(lightning["error"][1]), (ours["error"][1], lightning["error"][1])
    assert ours["warnings"] == lightning["warnings"]
    if name in BEFORE_ANY_HOOK:
        assert ours["hooks"] == [], ours["hooks"]
    else:
        assert ours["hooks"] == lightning["hooks"]


def test_the_possible_user_warning_is_a_user_warning() -> None:
    from lightcycle.errors import PossibleUserWarning

    assert issubclass(PossibleUserWarning, UserWarning)
    with pytest.warns(PossibleUserWarning, match="validation_step` but have no `val_dataloader"):
        LC.Trainer(**BASE_KWARGS, max_epochs=1, limit_train_batches=1).fit(_models(LC).Steps())


def test_a_batch_hook_set_to_none_is_not_inspected() -> None:
    """A hook set to None is skipped (lightcycle and Lightning), so its missing signature is no error.

    (Lightning's own check crashes here with ``TypeError: unsupported callable``.)
    """
    m = _models(LC)

    class TwoWithIdx(m.TwoLoaders):  # type: ignore[name-defined,misc]
        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            pass

    model = TwoWithIdx()
    model.on_validation_batch_start = None
    assert LC.Trainer(**BASE_KWARGS, limit_val_batches=1).validate(model) == [{}, {}]
