"""Invalid and unsupported input: a clear error, before any hook fires.

Every case runs with a recording callback (``tests/recording.py``) and asserts that no
hook fired. Messages must name the argument (or the method) and say what to do. Where
Lightning 2.6.6 refuses the same input with the same exception type, the test checks
that too (Lightning often refuses later, after ``configure_callbacks``/``setup`` hooks,
and with other wording; lightcycle refuses first).
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from pytorch_lightning.utilities.exceptions import MisconfigurationException as PLMisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from lightcycle.errors import InvalidTypeError, InvalidValueError, MisconfigurationException
from lightcycle.trainer.config import UNSUPPORTED
from tests.recording import BASE_KWARGS, build

QUIET = dict(BASE_KWARGS, max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0)


def _lightning_type(ours: type[BaseException]) -> type[BaseException]:
    """The type Lightning raises where ours is ``ours`` (our Invalid*Error are also its built-in type)."""
    return {
        MisconfigurationException: PLMisconfigurationException,
        InvalidTypeError: TypeError,
        InvalidValueError: ValueError,
    }.get(ours, ours)


def _construct(pl: Any, **kwargs: Any) -> Any:
    ns = build(pl)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ns, pl.Trainer(**{**QUIET, **kwargs}, callbacks=[ns.RecordingCallback()])


# --------------------------------------------------------------------------- Trainer arguments

# (arguments, exception type, pattern the message must match, Lightning raises the same type)
INVALID: list[tuple[dict[str, Any], type[BaseException], str, bool]] = [
    (dict(max_epochs=-2), MisconfigurationException, r"max_epochs=-2.*int >= -1", True),
    (dict(max_epochs=1.5), MisconfigurationException, r"max_epochs=1\.5.*int >= -1", False),
    (dict(max_epochs=True), MisconfigurationException, r"max_epochs=True.*int >= -1", False),
    (dict(max_steps=-2), MisconfigurationException, r"max_steps=-2.*int >= -1", True),
    (dict(max_steps=2.5), MisconfigurationException, r"max_steps=2\.5.*int >= -1", False),
    (dict(max_steps=True), MisconfigurationException, r"max_steps=True.*int >= -1", False),
    (dict(min_epochs=-1), MisconfigurationException, r"min_epochs=-1.*int >= 0", False),
    (dict(min_epochs=1.5), MisconfigurationException, r"min_epochs=1\.5.*int >= 0", False),
    (dict(min_epochs=True), MisconfigurationException, r"min_epochs=True.*int >= 0", False),
    (dict(min_steps=-1), MisconfigurationException, r"min_steps=-1.*int >= 0", False),
    (dict(min_steps=0.5), MisconfigurationException, r"min_steps=0\.5.*int >= 0", False),
    (
        dict(limit_train_batches=-1),
        MisconfigurationException,
        r"limit_train_batches=-1.*int >= 0.*\[0\.0, 1\.0\]",
        True,
    ),
    (dict(limit_train_batches=1.5), MisconfigurationException, r"limit_train_batches=1\.5.*\[0\.0, 1\.0\]", True),
    (dict(limit_val_batches=-0.5), MisconfigurationException, r"limit_val_batches=-0\.5.*\[0\.0, 1\.0\]", True),
    (dict(limit_val_batches=True), MisconfigurationException, r"limit_val_batches=True.*int >= 0", False),
    (dict(limit_test_batches=2.5), MisconfigurationException, r"limit_test_batches=2\.5.*int >= 0", True),
    (dict(limit_predict_batches="a"), InvalidTypeError, r"limit_predict_batches='a'.*int >= 0", True),
    (dict(num_sanity_val_steps=-2), MisconfigurationException, r"num_sanity_val_steps=-2.*int >= 0, -1", False),
    (dict(num_sanity_val_steps=1.5), MisconfigurationException, r"num_sanity_val_steps=1\.5.*int >= 0, -1", False),
    (dict(num_sanity_val_steps=True), MisconfigurationException, r"num_sanity_val_steps=True.*int >= 0, -1", False),
    (
        dict(val_check_interval=0.0),
        MisconfigurationException,
        r"val_check_interval=0\.0.*int >= 1.*\(0\.0, 1\.0\]",
        False,
    ),
    (dict(val_check_interval=0), MisconfigurationException, r"val_check_interval=0\b.*int >= 1", False),
    (dict(val_check_interval=-1), MisconfigurationException, r"val_check_interval=-1.*int >= 1", True),
    (dict(val_check_interval=1.5), MisconfigurationException, r"val_check_interval=1\.5.*\(0\.0, 1\.0\]", True),
    (dict(val_check_interval=True), MisconfigurationException, r"val_check_interval=True.*int >= 1", False),
    (
        dict(val_check_interval=0.5, check_val_every_n_epoch=None),
        MisconfigurationException,
        r"val_check_interval=0\.5.*check_val_every_n_epoch=None.*int val_check_interval",
        True,
    ),
    (dict(check_val_every_n_epoch=0), MisconfigurationException, r"check_val_every_n_epoch=0.*int >= 1 or None", False),
    (
        dict(check_val_every_n_epoch=1.5),
        MisconfigurationException,
        r"check_val_every_n_epoch=1\.5.*int >= 1 or None",
        True,
    ),
    (dict(check_val_every_n_epoch=True), MisconfigurationException, r"check_val_every_n_epoch=True.*int >= 1", False),
    (dict(accumulate_grad_batches=0), MisconfigurationException, r"accumulate_grad_batches=0.*int >= 1", False),
    (dict(accumulate_grad_batches=1.5), MisconfigurationException, r"accumulate_grad_batches=1\.5.*int >= 1", False),
    (dict(accumulate_grad_batches=True), MisconfigurationException, r"accumulate_grad_batches=True.*int >= 1", False),
    (dict(gradient_clip_val=-1), MisconfigurationException, r"gradient_clip_val=-1.*number >= 0", False),
    (dict(gradient_clip_val="x"), InvalidTypeError, r"gradient_clip_val='x'.*number >= 0", True),
    (dict(gradient_clip_val=True), MisconfigurationException, r"gradient_clip_val=True.*number >= 0", False),
    (
        dict(gradient_clip_algorithm="bogus"),
        MisconfigurationException,
        r"gradient_clip_algorithm='bogus'.*'norm', 'value'",
        True,
    ),
    (dict(deterministic="bogus"), MisconfigurationException, r"deterministic='bogus'.*True, False, 'warn'", False),
    (dict(log_every_n_steps=-1), MisconfigurationException, r"log_every_n_steps=-1.*int >= 0", False),
    (dict(log_every_n_steps=1.5), MisconfigurationException, r"log_every_n_steps=1\.5.*int >= 0", False),
    (
        dict(accelerator="bogus"),
        InvalidValueError,
        r"accelerator='bogus'.*'cpu', 'cuda', 'gpu' or 'auto'",
        True,
    ),
    (dict(accelerator="tpu"), MisconfigurationException, r"accelerator='tpu'.*'cpu', 'cuda', 'gpu' or 'auto'", False),
    (dict(accelerator="mps"), MisconfigurationException, r"accelerator='mps'.*'cpu', 'cuda', 'gpu' or 'auto'", False),
    (dict(strategy="ddp_spawn"), MisconfigurationException, r"ddp_spawn.*use strategy='ddp'", False),
    (dict(devices=[0, 1]), TypeError, r"CPUAccelerator. should be an int > 0\. Got devices=\[0, 1\]", True),
    (dict(precision="8-mixed"), ValueError, r"Precision '8-mixed' is invalid. Allowed precision values", True),
    (dict(max_epoch=1), TypeError, r"unexpected keyword argument 'max_epoch'.*spelling", True),
    (dict(limit_train_batch=1), TypeError, r"unexpected keyword argument 'limit_train_batch'.*spelling", True),
    (dict(callbacks=object()), InvalidTypeError, r"callbacks=.*Callback or a list.*got object", True),
    (
        dict(callbacks=[object()]),
        MisconfigurationException,
        r"callbacks=.*got object.*Subclass lightcycle\.Callback",
        False,
    ),
    # A callback built on Lightning's Callback is accepted (tests/compat/test_foreign_callbacks.py).
    (dict(logger=object()), MisconfigurationException, r"logger=.*got object.*log_metrics", False),
]


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "pattern", "lightning_same"), INVALID, ids=[repr(c[0]) for c in INVALID]
)
def test_invalid_trainer_argument_is_refused_at_construction(
    kwargs: dict[str, Any], exc_type: type[BaseException], pattern: str, lightning_same: bool
) -> None:
    ns = build(LC)
    with pytest.raises(exc_type, match=pattern):
        LC.Trainer(**{**QUIET, "callbacks": [ns.RecordingCallback()], **kwargs})
    assert ns.events == []
    if lightning_same:
        pl_ns = build(PL)
        pl_kwargs = {**QUIET, "callbacks": [pl_ns.RecordingCallback()], **kwargs}
        with warnings.catch_warnings(), pytest.raises(_lightning_type(exc_type)):
            warnings.simplefilter("ignore")
            PL.Trainer(**pl_kwargs)


NON_DEFAULT: dict[str, Any] = {
    "model_registry": "my-model",
    "enable_autolog_hparams": False,
}


def test_every_lightning_argument_is_accepted_or_named_as_unsupported() -> None:
    """No Lightning 2.6 argument is mistaken for a misspelling."""
    import inspect

    ours = set(inspect.signature(LC.Trainer.__init__).parameters)
    theirs = set(inspect.signature(PL.Trainer.__init__).parameters) - {"self"}
    assert theirs - ours - set(UNSUPPORTED) == set()
    assert set(NON_DEFAULT) == set(UNSUPPORTED), "add the new unsupported argument to NON_DEFAULT"


@pytest.mark.parametrize("name", sorted(n for n in UNSUPPORTED if n != "precision"))
def test_unsupported_lightning_argument_is_named(name: str) -> None:
    ns = build(LC)
    with pytest.raises(MisconfigurationException) as info:
        LC.Trainer(**QUIET, callbacks=[ns.RecordingCallback()], **{name: NON_DEFAULT[name]})
    message = str(info.value)
    assert f"Trainer({name}=...)" in message
    assert "does not support yet" in message and "remove it" in message
    assert repr(UNSUPPORTED[name]) in message  # Lightning's default, i.e. the value that works
    assert ns.events == []


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_lightning_argument_at_its_default_is_accepted(name: str) -> None:
    """Spelling out Lightning's default changes nothing, so it is not refused."""
    LC.Trainer(**QUIET, **{name: UNSUPPORTED[name]})


@pytest.mark.parametrize("precision", [None, 32, "32", "32-true"])
def test_32_bit_precision_is_accepted(precision: Any) -> None:
    LC.Trainer(**QUIET, precision=precision)


def test_duplicate_state_key_of_stateful_callbacks() -> None:
    for pl in (PL, LC):

        class Stateful(pl.Callback):  # type: ignore[name-defined,misc]
            def state_dict(self) -> dict[str, Any]:
                return {"n": 1}

        ns = build(pl)
        with (
            warnings.catch_warnings(),
            pytest.raises(RuntimeError, match=r"more than one stateful callback of type `Stateful`"),
        ):
            warnings.simplefilter("ignore")
            pl.Trainer(**QUIET, callbacks=[ns.RecordingCallback(), Stateful(), Stateful()])
    with pytest.raises(RuntimeError, match=r"state_key '[^']*Stateful'.*unique `state_key`"):
        LC.Trainer(**QUIET, callbacks=[Stateful(), Stateful()])


def test_checkpoint_callback_with_checkpointing_disabled() -> None:
    for pl in (PL, LC):
        with (
            warnings.catch_warnings(),
            pytest.raises(_lightning_type(MisconfigurationException) if pl is PL else MisconfigurationException),
        ):
            warnings.simplefilter("ignore")
            pl.Trainer(**QUIET, callbacks=[pl.callbacks.ModelCheckpoint()])
    with pytest.raises(
        MisconfigurationException,
        match=r"enable_checkpointing=False.*Remove the callback or set enable_checkpointing=True",
    ):
        LC.Trainer(**QUIET, callbacks=[LC.callbacks.ModelCheckpoint()])


def test_progress_bar_with_progress_bar_disabled() -> None:
    for pl in (PL, LC):
        with (
            warnings.catch_warnings(),
            pytest.raises(_lightning_type(MisconfigurationException) if pl is PL else MisconfigurationException),
        ):
            warnings.simplefilter("ignore")
            pl.Trainer(**QUIET, callbacks=[pl.callbacks.TQDMProgressBar()])
    with pytest.raises(
        MisconfigurationException, match=r"enable_progress_bar=False.*Remove it or set enable_progress_bar=True"
    ):
        LC.Trainer(**QUIET, callbacks=[LC.callbacks.TQDMProgressBar()])


def test_float_val_check_interval_with_check_val_every_n_epoch_none() -> None:
    """Found by test_hypothesis_differential: Lightning refuses it at construction."""
    with pytest.raises(PLMisconfigurationException):
        PL.Trainer(val_check_interval=1.0, check_val_every_n_epoch=None, logger=False)
    with pytest.raises(MisconfigurationException, match=r"val_check_interval=1\.0.*check_val_every_n_epoch"):
        LC.Trainer(val_check_interval=1.0, check_val_every_n_epoch=None, logger=False)


# --------------------------------------------------------------------------- entry points


def _modules(pl: Any) -> Any:
    """The recording module with one piece missing, per case."""
    ns = build(pl)
    base = pl.LightningModule

    class NoTrainingStep(ns.RecModule):  # type: ignore[name-defined,misc]
        training_step = base.training_step

    class NoConfigureOptimizers(ns.RecModule):  # type: ignore[name-defined,misc]
        configure_optimizers = base.configure_optimizers

    class NoTrainDataloader(ns.RecModule):  # type: ignore[name-defined,misc]
        train_dataloader = base.train_dataloader

    class NoValidationStep(ns.RecModule):  # type: ignore[name-defined,misc]
        validation_step = base.validation_step

    class NoTestStep(ns.RecModule):  # type: ignore[name-defined,misc]
        test_step = base.test_step

    class Manual(ns.RecModule):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

    ns.cases = {
        c.__name__: c
        for c in (NoTrainingStep, NoConfigureOptimizers, NoTrainDataloader, NoValidationStep, NoTestStep, Manual)
    }
    return ns


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(4, 4), torch.randn(4, 1)), batch_size=2)


# (case id, trainer arguments, module case or None for RecModule, call, exception type,
#  pattern, Lightning raises the same type)
ENTRY_CASES: list[tuple[str, dict[str, Any], str | None, Any, type[BaseException], str, bool]] = [
    (
        "fit without training_step",
        {},
        "NoTrainingStep",
        lambda t, m, pl: t.fit(m),
        MisconfigurationException,
        r"No `training_step\(\)` method defined.*Implement `training_step` in NoTrainingStep",
        True,
    ),
    (
        "fit without configure_optimizers",
        {},
        "NoConfigureOptimizers",
        lambda t, m, pl: t.fit(m),
        MisconfigurationException,
        r"No `configure_optimizers\(\)` method defined.*Implement `configure_optimizers` in NoConfigureOptimizers",
        True,
    ),
    (
        "fit without any train dataloader",
        {},
        "NoTrainDataloader",
        lambda t, m, pl: t.fit(m),
        MisconfigurationException,
        r"No `train_dataloader\(\)` method defined and no `train_dataloaders` passed.*Implement `train_dataloader`",
        True,
    ),
    (
        "fit with datamodule and dataloaders",
        {},
        None,
        lambda t, m, pl: t.fit(
            m,
            train_dataloaders=_loader(),
            datamodule=pl.LightningDataModule.from_datasets(train_dataset=_loader().dataset),
        ),
        MisconfigurationException,
        r"cannot pass `train_dataloaders` and `datamodule` together",
        True,
    ),
    (
        "fit with a datamodule that is not one",
        {},
        None,
        lambda t, m, pl: t.fit(m, datamodule=object()),
        TypeError,
        r"`datamodule` must be a lightcycle\.LightningDataModule.*, got object",
        False,
    ),
    (
        "manual optimization with accumulate_grad_batches",
        dict(accumulate_grad_batches=2),
        "Manual",
        lambda t, m, pl: t.fit(m),
        MisconfigurationException,
        r"accumulation is not supported for manual optimization.*accumulate_grad_batches",
        True,
    ),
    (
        "manual optimization with gradient_clip_val",
        dict(gradient_clip_val=1.0),
        "Manual",
        lambda t, m, pl: t.fit(m),
        MisconfigurationException,
        r"clipping is not supported for manual optimization.*gradient_clip_val.*clip_gradients",
        True,
    ),
    (
        "validate without validation_step",
        {},
        "NoValidationStep",
        lambda t, m, pl: t.validate(m),
        MisconfigurationException,
        r"No `validation_step\(\)` method defined to run `Trainer\.validate`.*Implement `validation_step`",
        True,
    ),
    (
        "test without test_step",
        {},
        "NoTestStep",
        lambda t, m, pl: t.test(m),
        MisconfigurationException,
        r"No `test_step\(\)` method defined to run `Trainer\.test`.*Implement `test_step`",
        True,
    ),
    (
        "validate without a model",
        {},
        None,
        lambda t, m, pl: t.validate(),
        TypeError,
        r"`trainer\.validate\(\)` needs a model: pass one",
        True,
    ),
    (
        "fit resuming from a missing checkpoint",
        {},
        None,
        lambda t, m, pl: t.fit(m, ckpt_path=os.path.join("no", "such", "file.ckpt")),
        FileNotFoundError,
        r"file\.ckpt",
        True,
    ),
    (
        "test from a missing checkpoint",
        {},
        None,
        lambda t, m, pl: t.test(m, ckpt_path=os.path.join("no", "such", "file.ckpt")),
        FileNotFoundError,
        r"file\.ckpt",
        True,
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "case", "call", "exc_type", "pattern", "lightning_same"),
    [c[1:] for c in ENTRY_CASES],
    ids=[c[0] for c in ENTRY_CASES],
)
def test_bad_entry_point_call_is_refused_before_any_hook(
    kwargs: dict[str, Any],
    case: str | None,
    call: Any,
    exc_type: type[BaseException],
    pattern: str,
    lightning_same: bool,
) -> None:
    ns = _modules(LC)
    trainer = LC.Trainer(**{**QUIET, **kwargs}, callbacks=[ns.RecordingCallback()])
    model = (ns.cases[case] if case else ns.RecModule)()
    with pytest.raises(exc_type, match=pattern):
        call(trainer, model, LC)
    assert ns.events == [], [(e["src"], e["hook"]) for e in ns.events]
    assert trainer.lifecycle_state == "idle"
    if lightning_same:
        pl_ns = _modules(PL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pl_trainer = PL.Trainer(**{**QUIET, **kwargs}, callbacks=[pl_ns.RecordingCallback()])
            pl_model = (pl_ns.cases[case] if case else pl_ns.RecModule)()
            with pytest.raises(_lightning_type(exc_type)):
                call(pl_trainer, pl_model, PL)


@pytest.mark.parametrize("entry", ["fit", "validate", "test", "predict"])
def test_model_that_is_not_a_lightning_module(entry: str) -> None:
    for pl in (PL, LC):
        ns = build(pl)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = pl.Trainer(**QUIET, callbacks=[ns.RecordingCallback()])
            with pytest.raises(TypeError, match=r"`model` must be a"):
                getattr(trainer, entry)(torch.nn.Linear(4, 1))
        assert ns.events == []


def test_lightning_module_of_pytorch_lightning_is_refused_with_the_fix() -> None:
    """A module written for pytorch_lightning, run with lightcycle's Trainer: the import to change."""
    ns = build(LC)
    trainer = LC.Trainer(**QUIET, callbacks=[ns.RecordingCallback()])
    with pytest.raises(
        TypeError, match=r"must be a lightcycle\.LightningModule, got RecModule.*import lightcycle as L"
    ):
        trainer.fit(build(PL).RecModule())
    assert ns.events == []


def test_nested_fit_from_inside_a_hook() -> None:
    """The nested call fires nothing; the outer run is interrupted by its error."""
    ns = build(LC)
    nested: list[BaseException] = []

    class Nester(LC.Callback):
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            try:
                trainer.fit(pl_module)
            except MisconfigurationException as e:
                nested.append(e)
                raise

    trainer = LC.Trainer(**QUIET, callbacks=[ns.RecordingCallback(), Nester()])
    with pytest.raises(MisconfigurationException, match=r"already running.*cannot be nested.*second Trainer"):
        trainer.fit(ns.RecModule())
    assert len(nested) == 1
    hooks = [(e["src"], e["hook"]) for e in ns.events]
    start = hooks.index(("callback", "on_train_start"))
    # the nested fit fired nothing: right after on_train_start comes the interruption
    assert hooks[start + 1] == ("callback", "on_exception"), hooks[start:]
    assert hooks.count(("callback", "setup")) == 1
    assert trainer.interrupted


def test_train_dataloader_returning_none() -> None:
    """Fires hooks by nature (the hook itself runs); the message names the hook and the fix.

    A TypeError, as in Lightning, and a MisconfigurationException.
    """
    ns = build(LC)

    class NoneLoader(ns.RecModule):  # type: ignore[name-defined,misc]
        def train_dataloader(self) -> Any:
            super().train_dataloader()
            return None

    trainer = LC.Trainer(**QUIET, callbacks=[ns.RecordingCallback()])
    with pytest.raises(InvalidTypeError, match=r"`train_dataloader` returned None\. Return a DataLoader") as info:
        trainer.fit(NoneLoader())
    assert isinstance(info.value, MisconfigurationException)
    hooks = [(e["src"], e["hook"]) for e in ns.events]
    at = hooks.index(("module", "train_dataloader"))
    assert hooks[at + 1] == ("callback", "on_exception")
    assert ns.events[at + 1]["args"]["exception"] == f"InvalidTypeError: {info.value}"
    assert ("callback", "on_train_start") not in hooks
    assert trainer.interrupted and trainer.state.stage is None
    assert re.search(r"train_dataloader", str(info.value))
    pl_ns = build(PL)

    class PLNoneLoader(pl_ns.RecModule):  # type: ignore[name-defined,misc]
        def train_dataloader(self) -> Any:
            return None

    with warnings.catch_warnings(), pytest.raises(TypeError):
        warnings.simplefilter("ignore")
        PL.Trainer(**QUIET, callbacks=[pl_ns.RecordingCallback()]).fit(PLNoneLoader())


def test_gradient_clip_algorithm_is_case_insensitive() -> None:
    """Lightning lower-cases it ("Norm" works)."""
    for pl in (PL, LC):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = pl.Trainer(**QUIET, gradient_clip_val=1.0, gradient_clip_algorithm="NORM")
        assert trainer.gradient_clip_algorithm == "norm"
