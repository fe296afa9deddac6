"""Lightning 2.6's model summary table: layers, types, parameter counts, mode, FLOPs, sizes, totals.

``summarize(module, max_depth)`` returns a :class:`ModelSummary` whose ``str`` is the table the
``ModelSummary`` callback prints at fit start. With ``module.example_input_array`` set, the module is
run once on it (in eval mode, without gradients, under torch's ``FlopCounterMode``) to fill the
"In sizes", "Out sizes" and "FLOPs" columns, as in Lightning.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

PARAMETER_NUM_UNITS = [" ", "K", "M", "B", "T"]
UNKNOWN_SIZE = "?"
LEFTOVER_PARAMS_NAME = "other params"
NOT_APPLICABLE = "n/a"
_PRECISION_BITS = {
    "64": 64,
    "32": 32,
    "16": 16,
    "bf16": 16,
    "16-true": 16,
    "bf16-true": 16,
    "32-true": 32,
    "64-true": 64,
}


class LayerSummary:
    """One layer's row: type, parameter count, mode, and the in/out shapes of its first forward.

    Args:
        module: the layer.
    """

    def __init__(self, module: nn.Module) -> None:
        self._module = module
        self._in_size: str | list[Any] | None = None
        self._out_size: str | list[Any] | None = None
        self._hook_handle = self._register_hook()

    def __del__(self) -> None:
        self.detach_hook()

    def _register_hook(self) -> RemovableHandle | None:
        def hook(_: nn.Module, args: Any, kwargs: Any, out: Any) -> None:
            inp = (*args, *kwargs.values()) if kwargs is not None else args
            self._in_size = parse_batch_shape(inp[0] if len(inp) == 1 else inp)
            self._out_size = parse_batch_shape(out)
            if self._hook_handle is not None:
                self._hook_handle.remove()  # a layer called twice keeps its first shapes

        if isinstance(self._module, torch.jit.ScriptModule):
            return None
        return self._module.register_forward_hook(hook, with_kwargs=True)

    def detach_hook(self) -> None:
        """Remove the shape hook if the forward pass did not."""
        handle = getattr(self, "_hook_handle", None)
        if handle is not None:
            handle.remove()

    @property
    def in_size(self) -> str | list[Any]:
        return self._in_size or UNKNOWN_SIZE

    @property
    def out_size(self) -> str | list[Any]:
        return self._out_size or UNKNOWN_SIZE

    @property
    def layer_type(self) -> str:
        return str(self._module.__class__.__name__)

    @property
    def num_parameters(self) -> int:
        return sum(0 if _tensor_has_shape(p) else p.numel() for p in self._module.parameters())

    @property
    def training(self) -> bool:
        return self._module.training


class ModelSummary:
    """The summary of a module's layers down to ``max_depth``.

    Args:
        model: the LightningModule (or any ``nn.Module``).
        max_depth: -1 lists every submodule, 0 none, ``n`` those up to ``n`` levels deep. Default 1.

    Raises:
        ValueError: ``max_depth`` is not an int >= -1.
    """

    def __init__(self, model: nn.Module, max_depth: int = 1) -> None:
        self._model = model
        if not isinstance(max_depth, int) or max_depth < -1:
            raise ValueError(f"`max_depth` can be -1, 0 or > 0, got {max_depth}.")
        # +1: the root module is depth 0 for the counter.
        self._flop_counter = FlopCounterMode(display=False, depth=max_depth + 1)
        self._max_depth = max_depth
        self._layer_summary = self.summarize()
        trainer = getattr(model, "_trainer", None)
        precision = str(getattr(trainer, "precision", "32-true")) if trainer is not None else "32-true"
        if precision not in _PRECISION_BITS:
            warnings.warn(
                f"Precision {precision} is not supported by the model summary.  Estimated model size in MB will not "
                "be accurate. Using 32 bits instead.",
                UserWarning,
                stacklevel=2,
            )
        self._precision_megabytes = (_PRECISION_BITS.get(precision, 32) / 8.0) * 1e-6

    @property
    def named_modules(self) -> list[tuple[str, nn.Module]]:
        if self._max_depth == 0:
            return []
        if self._max_depth == 1:
            return list(self._model.named_children())
        return list(self._model.named_modules())[1:]  # without the root

    @property
    def layer_names(self) -> list[str]:
        return list(self._layer_summary.keys())

    @property
    def layer_types(self) -> list[str]:
        return [layer.layer_type for layer in self._layer_summary.values()]

    @property
    def in_sizes(self) -> list[Any]:
        return [layer.in_size for layer in self._layer_summary.values()]

    @property
    def out_sizes(self) -> list[Any]:
        return [layer.out_size for layer in self._layer_summary.values()]

    @property
    def param_nums(self) -> list[int]:
        return [layer.num_parameters for layer in self._layer_summary.values()]

    @property
    def training_modes(self) -> list[bool]:
        return [layer.training for layer in self._layer_summary.values()]

    @property
    def total_training_modes(self) -> dict[str, int]:
        modes = [m.training for m in self._model.modules()][1:]  # without the root
        return {"train": modes.count(True), "eval": modes.count(False)}

    @property
    def total_parameters(self) -> int:
        return sum(0 if _tensor_has_shape(p) else p.numel() for p in self._model.parameters())

    @property
    def trainable_parameters(self) -> int:
        return sum(0 if _tensor_has_shape(p) else p.numel() for p in self._model.parameters() if p.requires_grad)

    @property
    def total_layer_params(self) -> int:
        return sum(self.param_nums)

    @property
    def model_size(self) -> float:
        return self.total_parameters * self._precision_megabytes

    @property
    def total_flops(self) -> int:
        return int(self._flop_counter.get_total_flops())

    @property
    def flop_counts(self) -> dict[str, dict[Any, int]]:
        counts = self._flop_counter.get_flop_counts()
        return {name: dict(counts.get(f"{type(self._model).__name__}.{name}", {})) for name in self.layer_names}

    def summarize(self) -> dict[str, LayerSummary]:
        summary = OrderedDict((name, LayerSummary(module)) for name, module in self.named_modules)
        if getattr(self._model, "example_input_array", None) is not None:
            self._forward_example_input()
        for layer in summary.values():
            layer.detach_hook()
        if self._max_depth >= 1:
            for k in [k for k in summary if k.count(".") >= self._max_depth]:
                del summary[k]
        return summary

    def _forward_example_input(self) -> None:
        model: Any = self._model
        input_ = model.example_input_array
        if hasattr(model, "on_before_batch_transfer"):
            # The module's own batch hooks, as Lightning's _apply_batch_transfer_handler runs them.
            input_ = model.on_before_batch_transfer(input_, 0)
            input_ = model.transfer_batch_to_device(input_, model.device, 0)
            input_ = model.on_after_batch_transfer(input_, 0)
        modes = {m: m.training for m in model.modules()}
        model.eval()
        with torch.no_grad(), self._flop_counter:
            if isinstance(input_, (list, tuple)):
                model(*input_)
            elif isinstance(input_, dict):
                model(**input_)
            else:
                model(input_)
        for m, training in modes.items():
            m.training = training

    def _get_summary_data(self) -> list[tuple[str, list[str]]]:
        arrays: list[tuple[str, list[str]]] = [
            (" ", list(map(str, range(len(self._layer_summary))))),
            ("Name", self.layer_names),
            ("Type", self.layer_types),
            ("Params", list(map(get_human_readable_count, self.param_nums))),
            ("Mode", ["train" if mode else "eval" for mode in self.training_modes]),
            ("FLOPs", [get_human_readable_count(sum(x.values())) for x in self.flop_counts.values()]),
        ]
        if getattr(self._model, "example_input_array", None) is not None:
            arrays.append(("In sizes", [str(x) for x in self.in_sizes]))
            arrays.append(("Out sizes", [str(x) for x in self.out_sizes]))
        leftover = self.total_parameters - self.total_layer_params
        if leftover > 0:
            extra = {" ": " ", "Name": LEFTOVER_PARAMS_NAME, "Params": get_human_readable_count(leftover)}
            for header, column in arrays:
                column.append(extra.get(header, NOT_APPLICABLE))
        return arrays

    def __str__(self) -> str:
        return _format_summary_table(
            self.total_parameters,
            self.trainable_parameters,
            self.model_size,
            self.total_training_modes,
            self.total_flops,
            *self._get_summary_data(),
        )

    def __repr__(self) -> str:
        return str(self)


def parse_batch_shape(batch: Any) -> str | list[Any]:
    """The shape of a tensor, or nested lists of shapes for lists/tuples, else ``"?"``."""
    if hasattr(batch, "shape"):
        return list(batch.shape)
    if isinstance(batch, (list, tuple)):
        return [parse_batch_shape(el) for el in batch]
    return UNKNOWN_SIZE


def _format_summary_table(
    total_parameters: int,
    trainable_parameters: int,
    model_size: float,
    total_training_modes: dict[str, int],
    total_flops: int,
    *cols: tuple[str, list[str]],
) -> str:
    n_rows = len(cols[0][1])
    widths = [max(max((len(str(a)) for a in c[1]), default=0) if n_rows else 0, len(c[0])) for c in cols]
    total_width = sum(widths) + 3 * (1 + len(cols))
    summary = " | ".join(f"{c[0]:<{w}}" for c, w in zip(cols, widths, strict=True)) + "\n" + "-" * total_width
    for i in range(n_rows):
        summary += "\n" + " | ".join(f"{c[1][i]!s:<{w}}" for c, w in zip(cols, widths, strict=True))
    summary += "\n" + "-" * total_width
    totals = [
        (get_human_readable_count(trainable_parameters), "Trainable params"),
        (get_human_readable_count(total_parameters - trainable_parameters), "Non-trainable params"),
        (get_human_readable_count(total_parameters), "Total params"),
        (get_formatted_model_size(model_size), "Total estimated model params size (MB)"),
        (total_training_modes["train"], "Modules in train mode"),
        (total_training_modes["eval"], "Modules in eval mode"),
        (get_human_readable_count(total_flops), "Total Flops"),
    ]
    for value, label in totals:
        summary += "\n" + f"{value!s:<10}" + label
    return summary


def get_formatted_model_size(total_model_size: float) -> str:
    """A size in MB as the table shows it: thousands separated, three decimals (``1,234.568``).

    Args:
        total_model_size: the size in MB.

    Returns:
        The formatted size.
    """
    return f"{total_model_size:,.3f}"


def get_human_readable_count(number: int) -> str:
    """Abbreviate with K, M, B, T: ``123  ``, ``1.2 K``, ``2.0 M``, ``400 T``, ``5,000 T``.

    Args:
        number: a non-negative integer.

    Returns:
        The abbreviated text (Lightning's format, trailing unit or space included).
    """
    assert number >= 0
    labels = PARAMETER_NUM_UNITS
    num_digits = int(math.floor(math.log10(number)) + 1 if number > 0 else 1)
    num_groups = min(math.ceil(num_digits / 3), len(labels))
    scaled = number * (10 ** (-3 * (num_groups - 1)))
    index = num_groups - 1
    if index < 1 or scaled >= 100:
        return f"{int(scaled):,d} {labels[index]}"
    return f"{scaled:,.1f} {labels[index]}"


def _tensor_has_shape(p: torch.Tensor) -> bool:
    if isinstance(p, UninitializedParameter):
        warnings.warn(
            "The total number of parameters detected may be inaccurate because the model contains an instance of "
            "`UninitializedParameter`. To get an accurate number, set `self.example_input_array` in your "
            "LightningModule.",
            stacklevel=2,
        )
        return True
    return False


def summarize(lightning_module: nn.Module, max_depth: int = 1) -> ModelSummary:
    """Summarize a module.

    Args:
        lightning_module: the module.
        max_depth: -1 all layers, 0 none, ``n`` up to ``n`` levels. Default 1.

    Returns:
        The summary (``str`` of it is the table).
    """
    return ModelSummary(lightning_module, max_depth=max_depth)
