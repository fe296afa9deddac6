"""Lightning's own refusals and warnings about a run's data and steps, with its types and messages.

Lightning 2.6 checks these in ``trainer/configuration_validator.py`` (before any hook), in its
base ``*_dataloader`` hooks (which raise when nobody overrides them) and in the evaluation and
prediction loops' ``_verify_dataloader_idx_requirement``. lightcycle asks the same questions:

- :func:`check_loaders_defined`, before any hook fires: an entry point whose loop would request a
  dataloader that nobody defines (Lightning raises from inside its base hook, after ``setup``;
  lightcycle raises the same exception before ``setup``, as for every bad input);
- :func:`warn_val_loop_configuration`, before any hook fires: the two warnings of ``fit``;
- :func:`verify_dataloader_idx`, when an evaluation loop starts with its loaders (where Lightning
  checks: the loaders are known only once the ``*_dataloader`` hook has returned them).
"""

from __future__ import annotations

import inspect
import warnings
import weakref
from typing import Any

from lightcycle._hooks import is_overridden
from lightcycle.errors import MisconfigurationException, PossibleUserWarning

_ENTRY = {"val": "validate", "test": "test", "predict": "predict"}


def check_loaders_defined(kind: str, source: Any, source_base: type, given: bool, limit: float) -> None:
    """Refuse an evaluation entry point with no dataloader of its kind, as Lightning does.

    Args:
        kind: ``val``, ``test`` or ``predict``.
        source: the datamodule when one was given, else the module (Lightning's data source).
        source_base: the class whose ``{kind}_dataloader`` counts as not defined.
        given: whether loaders of this kind were passed to the entry point.
        limit: the run's ``limit_{kind}_batches`` (0 requests no loader, so nothing is refused).

    Raises:
        MisconfigurationException: Lightning's message (its base ``{kind}_dataloader`` hook's), then the fix.
    """
    if given or limit == 0 or is_overridden(f"{kind}_dataloader", source, source_base):
        return
    raise MisconfigurationException(
        f"`{kind}_dataloader` must be implemented to be used with the Lightning Trainer. Implement "
        f"`{kind}_dataloader` in {type(source).__name__} or pass `dataloaders=` to `trainer.{_ENTRY[kind]}()`."
    )


def warn_val_loop_configuration(has_val_loader: bool, has_val_step: bool) -> None:
    """Lightning's two ``fit`` warnings when validation is half configured (the val loop is skipped).

    Args:
        has_val_loader: val loaders were passed, or the data source overrides ``val_dataloader``.
        has_val_step: the module overrides ``validation_step``.
    """
    if has_val_loader and not has_val_step:
        warnings.warn(
            "You passed in a `val_dataloader` but have no `validation_step`. Skipping val loop.",
            UserWarning,
            stacklevel=4,
        )
    if has_val_step and not has_val_loader:
        warnings.warn(
            "You defined a `validation_step` but have no `val_dataloader`. Skipping val loop.",
            PossibleUserWarning,
            stacklevel=4,
        )


def _takes(hook: Any, param: str) -> bool:
    """Lightning's ``is_param_in_hook_signature(hook, param)``: a named parameter or ``*args``."""
    hook = getattr(hook, "__wrapped__", hook)  # a decorated hook: its own signature
    spec = inspect.getfullargspec(hook)
    return param in spec.args[1:] or spec.varargs is not None


# (accepts dataloader_idx, requires it) per hook function: a signature does not change, and
# reading it (``inspect``) costs ~1,500 bytecodes per hook at every evaluation start
_DATALOADER_IDX: weakref.WeakKeyDictionary[Any, tuple[bool, bool]] = weakref.WeakKeyDictionary()


def _dataloader_idx_param(fn: Any) -> tuple[bool, bool]:
    """Whether hook ``fn`` takes ``dataloader_idx`` (Lightning's rule) and whether it has no default."""
    key = getattr(fn, "__func__", fn)  # a bound method: its function (the same parameters, less self)
    try:
        known = _DATALOADER_IDX.get(key)
    except TypeError:  # (a callable that cannot be weakly referenced: read every time)
        key, known = None, None
    if known is not None:
        return known
    present = _takes(fn, "dataloader_idx")
    params = inspect.signature(fn).parameters if present else {}
    required = "dataloader_idx" in params and params["dataloader_idx"].default is inspect.Parameter.empty
    if key is not None:
        _DATALOADER_IDX[key] = (present, required)
    return present, required


def verify_dataloader_idx(module: Any, noun: str, prefix: str, num_loaders: int) -> None:
    """Refuse step and batch hooks whose ``dataloader_idx`` does not fit the number of loaders.

    Lightning's ``_verify_dataloader_idx_requirement``, run where its loops run it: when an
    evaluation (``validation``, ``test``) or prediction starts over loaders in sequence.

    Args:
        module: the LightningModule.
        noun: ``validation``, ``test`` or ``predict``.
        prefix: the loaders' kind in messages: ``val``, ``test`` or ``predict``.
        num_loaders: how many loaders the run iterates.

    Raises:
        RuntimeError: Lightning's type and message, naming the class, the hook and the fix.
    """
    several = num_loaders > 1
    for hook in (f"{noun}_step", f"on_{noun}_batch_start", f"on_{noun}_batch_end"):
        fn = getattr(module, hook, None)
        if not callable(fn):
            continue  # a hook set to None is not called, so its signature does not matter
        present, required = _dataloader_idx_param(fn)
        if several and not present:
            raise RuntimeError(
                f"You provided multiple `{prefix}_dataloader`, but no `dataloader_idx` argument in "
                f"`{type(module).__name__}.{hook}()`. Try adding `dataloader_idx=0` to its signature."
            )
        if not several and required:
            raise RuntimeError(
                f"You provided only a single `{prefix}_dataloader`, but have included `dataloader_idx` in "
                f"`{type(module).__name__}.{hook}()`. Either remove the argument or give it a default value "
                "i.e. `dataloader_idx=0`."
            )
