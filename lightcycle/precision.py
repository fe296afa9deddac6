"""Precision plugins: Lightning 2.6's ``Trainer(precision=...)``, one class per kind.

``Precision`` (32-bit, the default), ``MixedPrecision`` (``torch.autocast`` around the step
calls; ``"16-mixed"`` adds a ``torch.amp.GradScaler``), ``DoublePrecision`` (``"64-true"``)
and ``HalfPrecision`` (``"16-true"``/``"bf16-true"``) have Lightning's interface
(``convert_module``, ``convert_input``, ``forward_context``, ``*_step_context``,
``pre_backward``, ``clip_gradients``, ``state_dict``/``load_state_dict``). One difference:
in lightcycle the lifecycle fires the hooks, so ``pre_backward`` only returns the tensor to
differentiate (the scaled loss) and does not call ``on_before_backward`` itself.

The Trainer and :class:`~lightcycle.custom_loop.loop_driver.LoopDriver` do not ask the plugin
anything per batch: they ask it once per run to *wrap* the functions they call per batch
(:meth:`Precision.wrap_step`, :meth:`Precision.wrap_transfer`, :meth:`Precision.wrap_backward`,
:func:`scaled_step`); a plugin that changes nothing returns the function itself, so 32-bit
runs the same code as before precision existed.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from lightcycle.core.optim import LightningOptimizer

_STEP = Callable[..., Any]
SCALER_KEY = "MixedPrecision"
"""The checkpoint key of the scaler state (Lightning: the plugin's class ``__qualname__``)."""
OLD_SCALER_KEY = "native_amp_scaling_state"
"""The key older Lightning checkpoints used; read on restore, as Lightning does."""


def _convert_fp(data: Any, dtype: torch.dtype) -> Any:
    """Floating-point tensors in ``data`` (nested lists, tuples, dicts) cast to ``dtype``."""
    if isinstance(data, torch.Tensor):
        return data.to(dtype) if torch.is_floating_point(data) else data
    if isinstance(data, dict):
        return type(data)({k: _convert_fp(v, dtype) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(_convert_fp(v, dtype) for v in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_convert_fp(v, dtype) for v in data)
    return data


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Generator[None, None, None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class Precision:
    """32-bit training (``"32-true"``): every method leaves its input as it is.

    Subclasses override what their precision changes; the ``wrap_*`` methods then return
    wrapped functions, and only then.
    """

    precision: str = "32-true"
    scaler: Any = None

    def convert_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Convert the module's parameters (Lightning: in ``strategy.setup``, before moving it to the device).

        Args:
            module: the LightningModule.

        Returns:
            The module (converted in place).
        """
        return module

    def convert_input(self, data: Any) -> Any:
        """Convert a batch before ``on_before_batch_transfer`` (Lightning's place).

        Args:
            data: the batch as the loader yields it.

        Returns:
            The batch, its floating-point tensors converted where the precision asks it.
        """
        return data

    def forward_context(self) -> contextlib.AbstractContextManager[None]:
        """The context the ``*_step`` calls run in (autocast, default dtype)."""
        return contextlib.nullcontext()

    def train_step_context(self) -> contextlib.AbstractContextManager[None]:
        """The context of ``training_step``."""
        return self.forward_context()

    def val_step_context(self) -> contextlib.AbstractContextManager[None]:
        """The context of ``validation_step``."""
        return self.forward_context()

    def test_step_context(self) -> contextlib.AbstractContextManager[None]:
        """The context of ``test_step``."""
        return self.forward_context()

    def predict_step_context(self) -> contextlib.AbstractContextManager[None]:
        """The context of ``predict_step``."""
        return self.forward_context()

    def tensor_init_context(self) -> contextlib.AbstractContextManager[None]:
        """The context tensors are created in (the default dtype of the precision)."""
        return contextlib.nullcontext()

    def module_init_context(self) -> contextlib.AbstractContextManager[None]:
        """The context modules are created in."""
        return self.tensor_init_context()

    def pre_backward(self, tensor: torch.Tensor, module: Any = None) -> torch.Tensor:
        """The tensor ``backward`` differentiates (and ``on_before_backward`` receives).

        Args:
            tensor: the loss.
            module: the LightningModule (unused; Lightning's signature).

        Returns:
            The loss, scaled when a gradient scaler is in use.
        """
        return tensor

    def clip_gradients(
        self, optimizer: Any, clip_val: int | float = 0.0, gradient_clip_algorithm: Any = "norm"
    ) -> None:
        """Clip the gradients of ``optimizer``'s parameters (Lightning's ``Precision.clip_gradients``).

        Args:
            optimizer: the optimizer whose parameters are clipped.
            clip_val: the threshold; ``<= 0`` clips nothing.
            gradient_clip_algorithm: ``"norm"`` or ``"value"``.
        """
        if clip_val <= 0:
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if str(getattr(gradient_clip_algorithm, "value", gradient_clip_algorithm)) == "value":
            torch.nn.utils.clip_grad_value_(params, clip_value=clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, clip_val)

    def state_dict(self) -> dict[str, Any]:
        """Returns:
        The plugin's state for checkpoints (empty: nothing is stored).
        """
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output.

        Args:
            state_dict: what :meth:`state_dict` returned.
        """

    # ------------------------------------------------------------------ lightcycle's call sites

    def _changes(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(Precision, name)

    def _scales_loss(self) -> bool:
        return self._changes("pre_backward")

    def wrap_step(self, step: _STEP, context: Callable[[], contextlib.AbstractContextManager[None]]) -> _STEP:
        """``step`` run inside ``context()`` (one of the ``*_step_context`` methods).

        Args:
            step: the event function that fires a ``*_step`` hook.
            context: the bound context method, e.g. ``self.train_step_context``.

        Returns:
            ``step`` itself when this precision has no step context, else the wrapped step.
        """
        if not self._changes("forward_context") and not self._changes(context.__name__):
            return step

        def in_context(*args: Any) -> Any:
            with context():
                return step(*args)

        return in_context

    def wrap_transfer(self, transfer: _STEP) -> _STEP:
        """The batch-transfer event with :meth:`convert_input` first (Lightning's order).

        Args:
            transfer: the event function ``transfer(batch, device, dataloader_idx)``.

        Returns:
            ``transfer`` itself when this precision converts no input.
        """
        if not self._changes("convert_input"):
            return transfer
        convert = self.convert_input

        def converted(batch: Any, *args: Any) -> Any:
            return transfer(convert(batch), *args)

        return converted

    def wrap_backward(self, backward: _STEP) -> _STEP:
        """The backward event with :meth:`pre_backward` applied to the loss first.

        Args:
            backward: the event function ``backward(loss)``.

        Returns:
            ``backward`` itself when this precision leaves the loss as it is.
        """
        if not self._scales_loss():
            return backward
        pre = self.pre_backward

        def scaled(loss: torch.Tensor) -> Any:
            return backward(pre(loss))

        return scaled


class MixedPrecision(Precision):
    """Automatic mixed precision (``"16-mixed"``, ``"bf16-mixed"``) with ``torch.autocast``.

    The step calls run under ``torch.autocast(device, dtype, cache_enabled=False)``.
    ``"16-mixed"`` creates a ``torch.amp.GradScaler(device=device)`` unless one is given: the
    loss is scaled before ``on_before_backward``; after the closure the gradients are
    unscaled (before ``on_before_optimizer_step`` and clipping); ``scaler.step`` and
    ``scaler.update`` replace ``optimizer.step()`` (a step with non-finite gradients is
    skipped by the scaler and still counted in ``global_step``, as Lightning counts it).

    Args:
        precision: ``"16-mixed"`` (``torch.float16``) or ``"bf16-mixed"`` (``torch.bfloat16``).
        device: the autocast device type (``"cpu"`` or ``"cuda"``).
        scaler: a ``torch.amp.GradScaler`` to use instead of a new one (``"16-mixed"`` only).

    Raises:
        ValueError: another precision.
        MisconfigurationException: a scaler with ``"bf16-mixed"``.
    """

    def __init__(self, precision: str, device: str, scaler: Any = None) -> None:
        if precision not in ("16-mixed", "bf16-mixed"):
            raise ValueError(
                f"`Passed `{type(self).__name__}(precision={precision!r})`."
                " Precision must be '16-mixed' or 'bf16-mixed'."
            )
        self.precision = precision
        if scaler is None and precision == "16-mixed":
            scaler = torch.amp.GradScaler(device=device)
        if scaler is not None and precision == "bf16-mixed":
            raise MisconfigurationException(f"`precision='bf16-mixed'` does not use a scaler, found {scaler}.")
        self.device = device
        self.scaler = scaler

    def _scales_loss(self) -> bool:
        return self.scaler is not None  # bf16-mixed: no scaler, the loss goes to backward as it is

    def pre_backward(self, tensor: torch.Tensor, module: Any = None) -> torch.Tensor:
        """Returns:
        The loss multiplied by the scaler's scale (``"16-mixed"``), else the loss.
        """
        return self.scaler.scale(tensor) if self.scaler is not None else tensor

    def clip_gradients(
        self, optimizer: Any, clip_val: int | float = 0.0, gradient_clip_algorithm: Any = "norm"
    ) -> None:
        """Clip as :class:`Precision` does; a fused optimizer (it unscales itself) cannot be clipped.

        Raises:
            RuntimeError: clipping with an optimizer that unscales inside ``step``.
        """
        if clip_val > 0 and _handles_unscaling(optimizer):
            raise RuntimeError(
                f"The current optimizer, {type(optimizer).__qualname__}, does not allow for gradient clipping"
                " because it performs unscaling of gradients internally. HINT: Are you using a 'fused' optimizer?"
            )
        super().clip_gradients(optimizer, clip_val, gradient_clip_algorithm)

    def autocast_context_manager(self) -> torch.autocast:
        """Returns:
        ``torch.autocast`` for the device and dtype, without the weight cache (Lightning's choice).
        """
        dtype = torch.bfloat16 if self.precision == "bf16-mixed" else torch.half
        return torch.autocast(self.device, dtype=dtype, cache_enabled=False)

    def forward_context(self) -> contextlib.AbstractContextManager[None]:
        """The autocast context."""
        return self.autocast_context_manager()

    def state_dict(self) -> dict[str, Any]:
        """Returns:
        The scaler's state (empty without a scaler).
        """
        return dict(self.scaler.state_dict()) if self.scaler is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the scaler's state.

        Args:
            state_dict: what :meth:`state_dict` returned.
        """
        if self.scaler is not None:
            self.scaler.load_state_dict(state_dict)


class DoublePrecision(Precision):
    """``"64-true"``: the module in ``torch.float64``, float inputs cast, float64 the default dtype in steps."""

    precision = "64-true"

    def convert_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Returns:
        ``module.double()``.
        """
        return module.double()

    def tensor_init_context(self) -> contextlib.AbstractContextManager[None]:
        """float64 as the default dtype."""
        return _default_dtype(torch.float64)

    def forward_context(self) -> contextlib.AbstractContextManager[None]:
        """float64 as the default dtype."""
        return _default_dtype(torch.float64)

    def convert_input(self, data: Any) -> Any:
        """Returns:
        The batch with its floating-point tensors in float64.
        """
        return _convert_fp(data, torch.float64)


class HalfPrecision(Precision):
    """``"16-true"`` / ``"bf16-true"``: the module, the float inputs and the default dtype in half precision.

    Args:
        precision: ``"16-true"`` (``torch.float16``) or ``"bf16-true"`` (``torch.bfloat16``).
    """

    def __init__(self, precision: str = "16-true") -> None:
        self.precision = precision
        self._desired_input_dtype = torch.bfloat16 if precision == "bf16-true" else torch.float16

    def convert_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Returns:
        The module with its parameters and buffers in the half dtype.
        """
        return module.to(dtype=self._desired_input_dtype)

    def tensor_init_context(self) -> contextlib.AbstractContextManager[None]:
        """The half dtype as the default dtype."""
        return _default_dtype(self._desired_input_dtype)

    def forward_context(self) -> contextlib.AbstractContextManager[None]:
        """The half dtype as the default dtype."""
        return _default_dtype(self._desired_input_dtype)

    def convert_input(self, data: Any) -> Any:
        """Returns:
        The batch with its floating-point tensors in the half dtype.
        """
        return _convert_fp(data, self._desired_input_dtype)


def _handles_unscaling(optimizer: Any) -> bool:
    """Whether the optimizer unscales inside ``step`` (fused optimizers), as Lightning asks."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False))


def scaled_step(scaler: Any, lopt: LightningOptimizer, automatic: bool) -> Callable[..., Any]:
    """``LightningOptimizer.step`` with a gradient scaler (Lightning's ``MixedPrecision.optimizer_step``).

    The closure runs, the gradients are unscaled, the wrapper's before-step event fires
    (``on_before_optimizer_step`` and clipping), then ``scaler.step`` and ``scaler.update``.
    Under automatic optimization a closure that returned ``None`` (no loss) skips the
    unscale and the step.

    Args:
        scaler: the ``GradScaler``.
        lopt: the wrapped optimizer whose ``step`` this replaces.
        automatic: the module's ``automatic_optimization``.

    Returns:
        The replacement ``step(closure=None, **kwargs)``.
    """
    optimizer = lopt._optimizer

    def step(closure: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
        if isinstance(optimizer, torch.optim.LBFGS):
            raise MisconfigurationException("AMP and the LBFGS optimizer are not compatible.")
        if closure is not None and not callable(closure):
            raise MisconfigurationException("When `optimizer.step(closure)` is called, the closure should be callable")
        result = closure() if closure is not None else None
        skip = result is None and automatic
        if not skip and not _handles_unscaling(optimizer):
            scaler.unscale_(optimizer)  # before on_before_optimizer_step and clipping see the gradients
        lopt._on_before_step()
        if skip:
            output = result
        else:
            output = scaler.step(optimizer, **kwargs)
            scaler.update()
        lopt._on_after_step()
        return output

    return step


PRECISION_FLAGS = {
    "32-true": "32-true",
    "32": "32-true",
    32: "32-true",
    "64-true": "64-true",
    "64": "64-true",
    64: "64-true",
    "16-mixed": "16-mixed",
    "16": "16-mixed",
    16: "16-mixed",
    "bf16-mixed": "bf16-mixed",
    "bf16": "bf16-mixed",
    "16-true": "16-true",
    "bf16-true": "bf16-true",
}


def plugin_list(plugins: Any) -> list[Any]:
    """``Trainer(plugins=...)`` as a list: ``None``, one plugin, or a list or tuple of them.

    Args:
        plugins: the ``plugins`` argument.

    Returns:
        The plugins, in the order given.
    """
    return [plugins] if plugins is not None and not isinstance(plugins, (list, tuple)) else list(plugins or [])


def resolve_precision(precision: Any, plugins: Any, device: torch.device) -> Precision:
    """The plugin for ``Trainer(precision=..., plugins=...)``, with Lightning 2.6's rules.

    ``None`` means ``"32-true"``; ``16``/``"16"``/``"bf16"``/``64`` are Lightning's short
    spellings; ``"16-mixed"`` on CPU becomes ``"bf16-mixed"`` with Lightning's warning. A
    :class:`Precision` object in ``plugins`` is used as is.

    Args:
        precision: the ``precision`` argument.
        plugins: the ``plugins`` argument: ``None``, a plugin or a list (its precision plugins are used).
        device: the resolved device.

    Returns:
        The precision plugin.

    Raises:
        MisconfigurationException: an unknown precision, or several precision plugins.
        ValueError: both ``precision`` and a precision plugin.
    """
    # (the other kinds: config._other_plugins)
    given = [plugin for plugin in plugin_list(plugins) if isinstance(plugin, Precision)]
    if len(given) > 1:
        raise MisconfigurationException(f"Received multiple values for precision plugins: {given}. Pass one.")
    if given:
        if precision is not None:
            raise ValueError(f"Received both `precision={precision}` and `plugins={given[0]}`. Choose one.")
        chosen: Precision = given[0]
        return chosen
    if precision is None:
        return Precision()
    if isinstance(precision, bool) or precision not in PRECISION_FLAGS:
        raise ValueError(
            f"Precision {precision!r} is invalid. Allowed precision values: {tuple(PRECISION_FLAGS)} "
            "(Lightning's 'transformer-engine' precisions are not supported by lightcycle)."
        )
    flag = PRECISION_FLAGS[precision]
    if str(precision) in ("16", "bf16"):  # Lightning warns for these aliases (not for 32/64)
        warnings.warn(
            f"`precision={precision}` is supported for historical reasons but its usage is discouraged. "
            f"Please set your precision to {flag} instead!",
            UserWarning,
            stacklevel=4,
        )
    if flag == "32-true":
        return Precision()
    if flag == "64-true":
        return DoublePrecision()
    if flag in ("16-true", "bf16-true"):
        return HalfPrecision(flag)
    if flag == "16-mixed" and device.type == "cpu":
        warnings.warn(
            "You passed `Trainer(accelerator='cpu', precision='16-mixed')` but AMP with fp16 is not supported on "
            "CPU. Using `precision='bf16-mixed'` instead.",
            UserWarning,
            stacklevel=4,
        )
        flag = "bf16-mixed"
    return MixedPrecision(flag, device.type)
