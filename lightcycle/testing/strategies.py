"""Hypothesis strategies drawing Trainer configurations lightcycle accepts.

Property-test a callback across configurations::

    from hypothesis import given
    from lightcycle.testing.strategies import trainer_configs

    @given(trainer_configs())
    def test_my_callback(config):
        trainer = L.Trainer(**config.kwargs, callbacks=[MyCallback()])
        trainer.fit(tiny_module(**config.module))

Every drawn configuration is one the Trainer accepts (its keyword arguments construct a
Trainer and the run needs no more than a tiny module: a few batches, a second at most).
Needs ``hypothesis`` (the ``testing`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

import lightcycle as L
from lightcycle.testing.tiny import tiny_module

QUIET: dict[str, Any] = {
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
    "enable_checkpointing": False,
}
"""The fixed keyword arguments of every drawn configuration: CPU, no output, no files."""


@dataclass(frozen=True)
class TrainerConfig:
    """One drawn configuration.

    Attributes:
        entry: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.
        kwargs: keyword arguments for :class:`lightcycle.Trainer` (:data:`QUIET` included).
        module: keyword arguments for :func:`~lightcycle.testing.tiny_module` matching them
            (``batches``, ``eval_batches``, ``manual``, ``scheduler``).
    """

    entry: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    module: dict[str, Any] = field(default_factory=dict)


_LIMIT = {"validate": "limit_val_batches", "test": "limit_test_batches", "predict": "limit_predict_batches"}


@st.composite
def _fit(draw: st.DrawFn, max_epochs: int, max_batches: int) -> TrainerConfig:
    manual = draw(st.booleans())
    n_train = draw(st.integers(1, max_batches))
    n_eval = draw(st.integers(1, 2))
    kwargs: dict[str, Any] = dict(
        QUIET,
        max_epochs=draw(st.integers(1, max_epochs)),
        limit_train_batches=n_train,
        limit_val_batches=draw(st.integers(0, n_eval)),
        num_sanity_val_steps=draw(st.integers(0, 2)),
        check_val_every_n_epoch=draw(st.sampled_from([1, 2])),
    )
    if draw(st.booleans()):
        kwargs["max_steps"] = draw(st.integers(1, max_epochs * n_train))
    if draw(st.booleans()):
        kwargs["val_check_interval"] = draw(st.sampled_from([0.5, 1.0]) | st.integers(1, n_train))
        if isinstance(kwargs["val_check_interval"], int):
            kwargs["check_val_every_n_epoch"] = None  # an int interval may span epochs
    if not manual:
        kwargs["accumulate_grad_batches"] = draw(st.integers(1, 2))
        if draw(st.booleans()):
            kwargs["gradient_clip_val"] = draw(st.sampled_from([0.5, 1.0]))
            kwargs["gradient_clip_algorithm"] = draw(st.sampled_from(["norm", "value"]))
    if draw(st.booleans()):
        kwargs["min_epochs"] = draw(st.integers(0, kwargs["max_epochs"]))
    scheduler = None if manual else draw(st.sampled_from([None, "step", "epoch"]))
    module = dict(batches=n_train, eval_batches=n_eval, manual=manual, scheduler=scheduler)
    return TrainerConfig("fit", kwargs, module)


@st.composite
def _evaluation(draw: st.DrawFn, entries: tuple[str, ...]) -> TrainerConfig:
    entry = draw(st.sampled_from(entries))
    n_eval = draw(st.integers(1, 3))
    kwargs = dict(QUIET, **{_LIMIT[entry]: draw(st.integers(1, n_eval))})
    return TrainerConfig(entry, kwargs, dict(batches=1, eval_batches=n_eval))


def trainer_configs(max_epochs: int = 2, max_batches: int = 3) -> st.SearchStrategy[TrainerConfig]:
    """Configurations of ``trainer.fit``: epochs, step and batch limits, validation schedule,
    sanity check, accumulation, clipping, manual optimization and LR schedulers.

    Args:
        max_epochs: the most epochs a configuration runs.
        max_batches: the most training batches per epoch.

    Returns:
        A strategy of :class:`TrainerConfig` with ``entry == "fit"``.
    """
    if max_epochs < 1 or max_batches < 1:
        raise ValueError(f"max_epochs and max_batches must be at least 1, got {max_epochs}, {max_batches}")
    return _fit(max_epochs, max_batches)


def evaluation_configs(entries: tuple[str, ...] = ("validate", "test", "predict")) -> st.SearchStrategy[TrainerConfig]:
    """Configurations of ``trainer.validate``, ``test`` and ``predict``.

    Args:
        entries: the entry points to draw from.

    Returns:
        A strategy of :class:`TrainerConfig`.
    """
    unknown = [e for e in entries if e not in _LIMIT]
    if unknown or not entries:
        raise ValueError(f"unknown entry point(s) {unknown or entries!r}: choose from validate, test, predict")
    return _evaluation(tuple(entries))


def any_configs(max_epochs: int = 2, max_batches: int = 3) -> st.SearchStrategy[TrainerConfig]:
    """Fit (three times in four) or evaluation configurations.

    Returns:
        A strategy of :class:`TrainerConfig`.
    """
    fit = trainer_configs(max_epochs, max_batches)
    return st.one_of(fit, fit, fit, evaluation_configs())


def run_config(config: TrainerConfig, callbacks: list[Any] | None = None, **trainer_kwargs: Any) -> Any:
    """Build a Trainer and a tiny module for ``config`` and run its entry point.

    Args:
        config: a drawn configuration.
        callbacks: the callbacks under test.
        **trainer_kwargs: more Trainer arguments (override the drawn ones).

    Returns:
        The Trainer, after the run.
    """
    trainer = L.Trainer(**{**config.kwargs, **trainer_kwargs}, callbacks=callbacks or [])
    module = tiny_module(**config.module)
    if config.entry in ("validate", "test"):
        getattr(trainer, config.entry)(module, verbose=False)  # no results table on stdout
    else:
        getattr(trainer, config.entry)(module)
    return trainer
