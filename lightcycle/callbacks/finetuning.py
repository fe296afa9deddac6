"""BaseFinetuning and BackboneFinetuning: freeze layers, then unfreeze them into new parameter groups.

As Lightning 2.6's: :meth:`BaseFinetuning.freeze_before_training` runs at ``setup`` (before
``configure_optimizers``), :meth:`BaseFinetuning.finetune_function` at every training epoch start
for each optimizer; the parameter groups it adds are stored (by parameter name) in the callback's
checkpoint state and restored at ``on_fit_start`` of a resumed fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import Module, ModuleDict
from torch.nn.modules.batchnorm import _BatchNorm

from lightcycle.callbacks.callback import Callback
from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost

Modules = Module | Iterable[Module | Iterable[Any]]


def multiplicative(epoch: int) -> float:
    """BackboneFinetuning's default schedule: double the backbone's learning rate every epoch."""
    return 2.0


class BaseFinetuning(Callback):
    """Base class of fine-tuning callbacks: override ``freeze_before_training`` and ``finetune_function``.

    ``finetune_function`` must add what it unfreezes to the optimizer as a new parameter group
    (:meth:`unfreeze_and_add_param_group` does both).
    """

    def __init__(self) -> None:
        self._internal_optimizer_metadata: dict[int, list[dict[str, Any]]] = {}
        self._restarting = False

    def state_dict(self) -> dict[str, Any]:
        return {"internal_optimizer_metadata": self._internal_optimizer_metadata}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restarting = True
        # Lightning's checkpoints before its PR #11887 stored the metadata itself.
        self._internal_optimizer_metadata = state_dict.get("internal_optimizer_metadata", state_dict)

    def on_fit_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        # A resumed fit: give the optimizers back the parameter groups the previous fit added.
        if self._restarting:
            if self._internal_optimizer_metadata:
                named_parameters = dict(pl_module.named_parameters())
                for opt_idx, optimizer in enumerate(trainer.optimizers):
                    if opt_idx in self._internal_optimizer_metadata:
                        optimizer.param_groups = self._apply_mapping_to_param_groups(
                            self._internal_optimizer_metadata[opt_idx], named_parameters
                        )
            self._restarting = False

    @staticmethod
    def flatten_modules(modules: Modules) -> list[Module]:
        """Leaf modules, and parent modules that hold parameters themselves, of a module or nested iterable."""
        if isinstance(modules, ModuleDict):
            modules = modules.values()
        if isinstance(modules, Iterable):
            flat: list[Module] = []
            for m in modules:
                flat.extend(BaseFinetuning.flatten_modules(m))
            found: Iterable[Module] = flat
        else:
            found = modules.modules()
        return [m for m in found if not list(m.children()) or m._parameters]

    @staticmethod
    def filter_params(
        modules: Modules, train_bn: bool = True, requires_grad: bool = True
    ) -> Generator[Any, None, None]:
        """Yield the parameters with this ``requires_grad`` (BatchNorm's skipped unless ``train_bn``)."""
        for mod in BaseFinetuning.flatten_modules(modules):
            if isinstance(mod, _BatchNorm) and not train_bn:
                continue
            for param in mod.parameters(recurse=False):  # not recursive: parents would repeat them
                if param.requires_grad == requires_grad:
                    yield param

    @staticmethod
    def make_trainable(modules: Modules) -> None:
        """Unfreeze the parameters (and BatchNorm statistics) of the modules."""
        for module in BaseFinetuning.flatten_modules(modules):
            if isinstance(module, _BatchNorm):
                module.track_running_stats = True
            for param in module.parameters(recurse=False):
                param.requires_grad = True

    @staticmethod
    def freeze_module(module: Module) -> None:
        """Freeze one module's own parameters (and BatchNorm statistics)."""
        if isinstance(module, _BatchNorm):
            module.track_running_stats = False
        for param in module.parameters(recurse=False):
            param.requires_grad = False

    @staticmethod
    def freeze(modules: Modules, train_bn: bool = True) -> None:
        """Freeze the modules; BatchNorm layers stay trainable when ``train_bn`` (default)."""
        for mod in BaseFinetuning.flatten_modules(modules):
            if isinstance(mod, _BatchNorm) and train_bn:
                BaseFinetuning.make_trainable(mod)
            else:
                BaseFinetuning.freeze_module(mod)

    @staticmethod
    def filter_on_optimizer(optimizer: Optimizer, params: Iterable[Any]) -> list[Any]:
        """The parameters not already in one of ``optimizer``'s groups (a warning names the others)."""
        out_params = []
        removed_params = []
        for param in params:
            if not any(torch.equal(p, param) for group in optimizer.param_groups for p in group["params"]):
                out_params.append(param)
            else:
                removed_params.append(param)
        if removed_params:
            warnings.warn(
                "The provided params to be frozen already exist within another group of this optimizer."
                " Those parameters will be skipped.\n"
                "HINT: Did you init your optimizer in `configure_optimizer` as such:\n"
                f" {type(optimizer)}(filter(lambda p: p.requires_grad, self.parameters()), ...) ",
                stacklevel=2,
            )
        return out_params

    @staticmethod
    def unfreeze_and_add_param_group(
        modules: Modules,
        optimizer: Optimizer,
        lr: float | None = None,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
    ) -> None:
        """Unfreeze the modules and add their parameters to ``optimizer`` as a new group.

        Args:
            modules: a module or iterable of modules.
            optimizer: receives the group.
            lr: the group's learning rate; default: the first group's divided by ``initial_denom_lr``.
            initial_denom_lr: see ``lr``. Default 10.
            train_bn: also train BatchNorm layers. Default ``True``.
        """
        BaseFinetuning.make_trainable(modules)
        params_lr = optimizer.param_groups[0]["lr"] if lr is None else float(lr)
        denom_lr = initial_denom_lr if lr is None else 1.0
        params = BaseFinetuning.filter_params(modules, train_bn=train_bn, requires_grad=True)
        kept = BaseFinetuning.filter_on_optimizer(optimizer, params)
        if kept:
            optimizer.add_param_group({"params": kept, "lr": params_lr / denom_lr})

    def setup(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        self.freeze_before_training(pl_module)

    @staticmethod
    def _apply_mapping_to_param_groups(
        param_groups: list[dict[str, Any]], mapping: dict[Any, Any]
    ) -> list[dict[str, Any]]:
        output = []
        for g in param_groups:
            group_state = {k: v for k, v in g.items() if k != "params"}
            group_state["params"] = [mapping[p] for p in g["params"]]
            output.append(group_state)
        return output

    def _store(
        self, pl_module: LightningModule, opt_idx: int, num_param_groups: int, current: list[dict[str, Any]]
    ) -> None:
        mapping = {p: n for n, p in pl_module.named_parameters()}
        if opt_idx not in self._internal_optimizer_metadata:
            self._internal_optimizer_metadata[opt_idx] = self._apply_mapping_to_param_groups(current, mapping)
        elif num_param_groups != len(current):
            self._internal_optimizer_metadata[opt_idx].extend(
                self._apply_mapping_to_param_groups(current[num_param_groups:], mapping)
            )

    def on_train_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        for opt_idx, optimizer in enumerate(trainer.optimizers):
            num_param_groups = len(optimizer.param_groups)
            self.finetune_function(pl_module, trainer.current_epoch, optimizer)
            self._store(pl_module, opt_idx, num_param_groups, optimizer.param_groups)

    def finetune_function(self, pl_module: LightningModule, epoch: int, optimizer: Optimizer) -> None:
        """Override: unfreeze what this epoch trains (called at each training epoch start, per optimizer)."""
        raise NotImplementedError

    def freeze_before_training(self, pl_module: LightningModule) -> None:
        """Override: freeze what the first epochs must not train (called at ``setup``)."""
        raise NotImplementedError


class BackboneFinetuning(BaseFinetuning):
    """Train ``pl_module.backbone`` from epoch ``unfreeze_backbone_at_epoch`` on, with its own rising learning rate.

    Args:
        unfreeze_backbone_at_epoch: the epoch the backbone is unfrozen. Default 10.
        lambda_func: factor applied to the backbone's learning rate each later epoch (called with
            ``epoch + 1``). Default :func:`multiplicative` (2.0).
        backbone_initial_ratio_lr: the backbone starts at the first group's lr times this. Default 0.1.
        backbone_initial_lr: or at this learning rate. Default ``None``.
        should_align: cap the backbone's lr at the first group's. Default ``True``.
        initial_denom_lr: passed to :meth:`unfreeze_and_add_param_group`. Default 10.
        train_bn: keep BatchNorm layers of the backbone trainable. Default ``True``.
        verbose: print the learning rates when they change. Default ``False``.
        rounding: digits shown by ``verbose``. Default 12.
    """

    def __init__(
        self,
        unfreeze_backbone_at_epoch: int = 10,
        lambda_func: Callable[[int], float] = multiplicative,
        backbone_initial_ratio_lr: float = 10e-2,
        backbone_initial_lr: float | None = None,
        should_align: bool = True,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
        verbose: bool = False,
        rounding: int = 12,
    ) -> None:
        super().__init__()
        self.unfreeze_backbone_at_epoch = unfreeze_backbone_at_epoch
        self.lambda_func = lambda_func
        self.backbone_initial_ratio_lr = backbone_initial_ratio_lr
        self.backbone_initial_lr = backbone_initial_lr
        self.should_align = should_align
        self.initial_denom_lr = initial_denom_lr
        self.train_bn = train_bn
        self.verbose = verbose
        self.rounding = rounding
        self.previous_backbone_lr: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "internal_optimizer_metadata": self._internal_optimizer_metadata,
            "previous_backbone_lr": self.previous_backbone_lr,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.previous_backbone_lr = state_dict["previous_backbone_lr"]
        super().load_state_dict(state_dict)

    def on_fit_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if hasattr(pl_module, "backbone") and isinstance(pl_module.backbone, Module):
            return super().on_fit_start(trainer, pl_module)
        raise MisconfigurationException("The LightningModule should have a nn.Module `backbone` attribute")

    def freeze_before_training(self, pl_module: LightningModule) -> None:
        self.freeze(pl_module.backbone)

    def finetune_function(self, pl_module: LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if epoch == self.unfreeze_backbone_at_epoch:
            current_lr = optimizer.param_groups[0]["lr"]
            initial = (
                self.backbone_initial_lr
                if self.backbone_initial_lr is not None
                else current_lr * self.backbone_initial_ratio_lr
            )
            self.previous_backbone_lr = initial
            self.unfreeze_and_add_param_group(
                pl_module.backbone, optimizer, initial, train_bn=self.train_bn, initial_denom_lr=self.initial_denom_lr
            )
            if self.verbose:
                print(f"Current lr: {round(current_lr, self.rounding)}, Backbone lr: {round(initial, self.rounding)}")
        elif epoch > self.unfreeze_backbone_at_epoch:
            assert self.previous_backbone_lr is not None
            current_lr = optimizer.param_groups[0]["lr"]
            following = self.lambda_func(epoch + 1) * self.previous_backbone_lr
            following = current_lr if (self.should_align and following > current_lr) else following
            optimizer.param_groups[-1]["lr"] = following
            self.previous_backbone_lr = following
            if self.verbose:
                print(f"Current lr: {round(current_lr, self.rounding)}, Backbone lr: {round(following, self.rounding)}")
