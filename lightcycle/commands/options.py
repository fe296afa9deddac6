"""The ``--lifecycle MODULE:ATTR`` option, the same in every subcommand.

Every subcommand that reads the declaration (``demo``, ``diagram``, ``verify``) registers it
with :func:`add_lifecycle_option` and loads it with :func:`lifecycle_from`, so the syntax,
the search path (the working directory too) and the one-line error are one thing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.model import Lifecycle
from lightcycle.states.validate import DeclarationError, validate

if TYPE_CHECKING:
    from lightcycle.states.model import Lifecycle


class LifecycleOptionError(ValueError):
    """A ``--lifecycle`` value that names no usable Lifecycle; the message is one line."""


def add_lifecycle_option(parser: argparse.ArgumentParser) -> None:
    """Register ``--lifecycle MODULE:ATTR`` on a subcommand's parser.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--lifecycle",
        metavar="MODULE:ATTR",
        default=None,
        help=(
            "use this Lifecycle instead of lightcycle's (an extended copy, e.g. examples.custom_event:LIFECYCLE), "
            "importable or found from the working directory"
        ),
    )


def lifecycle_from(spec: str | None) -> Lifecycle:
    """The declaration a ``--lifecycle`` value names (lightcycle's own when ``None``), validated.

    Args:
        spec: ``MODULE:ATTR`` (``ATTR`` may be dotted), or ``None``.

    Returns:
        The lifecycle.

    Raises:
        LifecycleOptionError: malformed spec, module not found or failing to import,
            missing attribute, not a Lifecycle, or a declaration that does not validate;
            the message is one line naming the fix.
    """
    if spec is None:
        return LIFECYCLE
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise LifecycleOptionError(f"--lifecycle expects MODULE:ATTR (e.g. mypkg.loop:LIFECYCLE), got {spec!r}")
    try:
        obj: Any = _import_from_cwd(module_name)
    except ImportError as err:
        raise LifecycleOptionError(
            f"--lifecycle {spec}: cannot import {module_name} ({type(err).__name__}: {err}); "
            "run from the project's root or install it"
        ) from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise LifecycleOptionError(f"--lifecycle {spec}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, Lifecycle):
        raise LifecycleOptionError(f"--lifecycle {spec} is a {type(obj).__name__}, not a lightcycle Lifecycle")
    try:
        validate(obj)
    except DeclarationError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise LifecycleOptionError(f"--lifecycle {spec}: the declaration is invalid: {first}") from err
    return obj


def _import_from_cwd(module_name: str) -> Any:
    """Import ``module_name``; if its package is not found, look in the working directory too.

    ``python -m lightcycle`` puts the working directory on ``sys.path``, the installed
    ``lightcycle`` script does not; either way ``--lifecycle examples.custom_event:LIFECYCLE``
    run from a project's root finds the project's modules (installed ones come first).
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        cwd = os.getcwd()
        top = module_name.split(".")[0]
        if err.name != top or cwd in sys.path or "" in sys.path:
            raise
    sys.path.append(cwd)  # kept: the module may import more of its project later
    return importlib.import_module(module_name)
