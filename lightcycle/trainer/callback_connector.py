"""The Trainer's callbacks: those given, checked, and the defaults it adds (Lightning's ``_CallbackConnector``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import lightcycle.callbacks.rich_progress as rich_progress  # the module: its rich_available is looked up at each call
from lightcycle._foreign import is_kind
from lightcycle.callbacks.callback import Callback
from lightcycle.callbacks.model_checkpoint import ModelCheckpoint
from lightcycle.callbacks.model_summary import ModelSummary
from lightcycle.callbacks.monitoring import is_checkpoint
from lightcycle.callbacks.progress import ProgressBar
from lightcycle.callbacks.rich_model_summary import RichModelSummary
from lightcycle.callbacks.tqdm_progress import TQDMProgressBar
from lightcycle.compat.run_trace import recorders_from_env
from lightcycle.errors import InvalidTypeError, MisconfigurationException
from lightcycle.trainer.flags import timer_callbacks


def initial_callbacks(
    callbacks: Callback | Sequence[Callback] | None,
    *,
    checkpointing: bool,
    progress_bar: bool,
    model_summary: bool,
    max_time: str | timedelta | dict[str, int] | None = None,
) -> list[Callback]:
    """The callbacks of a new Trainer, in order: those given, ``lightcycle run --trace``'s recorder, the defaults.

    Args:
        callbacks: ``Trainer(callbacks=...)``: a callback, a list of them, or ``None``.
        checkpointing: ``enable_checkpointing``: add a ModelCheckpoint when none is given.
        progress_bar: ``enable_progress_bar``: add the rich bar (rich installed) or the tqdm bar.
        model_summary: ``enable_model_summary``: add the rich table or the plain ModelSummary.
        max_time: ``max_time``: add Lightning's Timer unless one is given.

    Returns:
        The callbacks.

    Raises:
        InvalidTypeError: ``callbacks`` is neither a callback nor a list.
        MisconfigurationException: an item is not a callback, or a checkpoint or progress
            bar is given while its flag is off (Lightning's messages).
    """
    if callbacks is None:
        given: list[Callback] = []
    elif is_kind(callbacks, Callback, "Callback"):
        given = [callbacks]  # type: ignore[list-item]
    elif isinstance(callbacks, (list, tuple)):
        given = list(callbacks)
    else:
        raise InvalidTypeError(
            f"Trainer(callbacks=...) takes a Callback or a list of them, got {type(callbacks).__name__}."
        )
    for cb in given:
        if not is_kind(cb, Callback, "Callback"):
            raise MisconfigurationException(
                f"Trainer(callbacks=...) got {type(cb).__name__}, which is not a Callback. Subclass "
                "lightcycle.Callback (or Lightning's Callback: both are driven alike)."
            )
    out = list(given) + recorders_from_env()  # `lightcycle run --trace`: one recorder per Trainer
    has_checkpoint = any(is_checkpoint(cb) for cb in out)
    if checkpointing and not has_checkpoint:
        out.append(ModelCheckpoint())
    elif not checkpointing and has_checkpoint:
        raise MisconfigurationException(
            "Trainer was configured with enable_checkpointing=False but found a Checkpoint callback in "
            "callbacks. Remove the callback or set enable_checkpointing=True."
        )
    out += timer_callbacks(max_time, out)  # Lightning: after the checkpoint, before the bar
    has_bar = any(is_kind(cb, ProgressBar, "ProgressBar") for cb in out)
    if progress_bar and not has_bar:
        # Lightning's choice (callback_connector): the rich bar when rich >= 10.2.2 is installed.
        out.append(rich_progress.RichProgressBar() if rich_progress.rich_available() else TQDMProgressBar())
    elif not progress_bar and has_bar:
        raise MisconfigurationException(
            "Trainer was configured with enable_progress_bar=False but found a progress bar in callbacks. "
            "Remove it or set enable_progress_bar=True."
        )
    if model_summary and not any(is_kind(cb, ModelSummary, "ModelSummary") for cb in out):
        # Lightning's choice: the rich table when rich >= 10.2.2 is installed.
        out.append(RichModelSummary() if rich_progress.rich_available() else ModelSummary())
    return out
