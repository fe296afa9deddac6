"""Objects built on Lightning's own classes, recognised without importing Lightning.

A callback or datamodule whose class derives from ``lightning.pytorch``'s (or
``pytorch_lightning``'s) ``Callback`` / ``LightningDataModule`` is driven like lightcycle's own.
Its class is recognised by walking ``type(obj).__mro__`` for a class of that name defined in
one of Lightning's packages, so lightcycle never imports Lightning. The one thing that
differs is what counts as "not overridden": a hook is the base's no-op when it is the
*foreign* base class's function, not lightcycle's (:func:`hook_base`).
"""

from __future__ import annotations

_PACKAGES = ("lightning.pytorch.", "pytorch_lightning.")


def lightning_class(obj: object, name: str) -> type | None:
    """Lightning's class called ``name`` among the bases of ``obj``'s class, if any.

    Args:
        obj: any object.
        name: the class name, e.g. ``"Callback"``, ``"Checkpoint"``, ``"LightningDataModule"``.

    Returns:
        That class, or ``None`` when ``obj`` does not derive from it.
    """
    for cls in type(obj).__mro__:
        if cls.__name__ == name and cls.__module__.startswith(_PACKAGES):
            return cls
    return None


def is_kind(obj: object, ours: type, name: str) -> bool:
    """Whether ``obj`` is an instance of lightcycle's class ``ours`` or of Lightning's class ``name``.

    Args:
        obj: the object (a callback, datamodule, ...).
        ours: lightcycle's class, e.g. :class:`~lightcycle.callbacks.monitoring.Checkpoint`.
        name: the matching Lightning class name, e.g. ``"Checkpoint"``.

    Returns:
        True for either.
    """
    return isinstance(obj, ours) or lightning_class(obj, name) is not None


def hook_base(obj: object, ours: type) -> type:
    """The class whose functions count as "not overridden" for ``obj``'s hooks.

    Args:
        obj: a callback or datamodule.
        ours: lightcycle's base class (``Callback`` or ``LightningDataModule``).

    Returns:
        ``ours`` for lightcycle's objects; Lightning's base of the same name for objects built on it.
    """
    if isinstance(obj, ours):
        return ours
    return lightning_class(obj, ours.__name__) or ours


def refuse_lightning_module(model: object) -> None:
    """Raise the error for a LightningModule built on Lightning's class instead of lightcycle's.

    Args:
        model: what was passed as ``model``.

    Raises:
        TypeError: ``model`` derives from Lightning's ``LightningModule``.
    """
    cls = lightning_class(model, "LightningModule")
    if cls is not None:
        raise TypeError(
            f"`model` must be a lightcycle.LightningModule, got {type(model).__name__}, which is built on "
            f"{cls.__module__.split('.')[0]}'s LightningModule. Change the import where the class is defined: "
            "`import lightcycle as L` (or `from lightcycle import LightningModule`) instead of "
            "`import lightning.pytorch as L` / `import pytorch_lightning as L`. Lightning's callbacks and "
            "datamodules can stay as they are."
        )
