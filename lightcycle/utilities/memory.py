"""Lightning's memory helpers (``lightning.pytorch.utilities.memory``).

Recognising out-of-memory errors by their message, as Lightning does (and the batch-size
finders built on it), so that a program's own "retry with a smaller batch" loop keeps working.
"""

from __future__ import annotations

import gc
from typing import Any

import torch

from lightcycle.core.batch_transfer import apply_to_collection

__all__ = [
    "garbage_collection_cuda",
    "is_cuda_out_of_memory",
    "is_cudnn_snafu",
    "is_oom_error",
    "is_out_of_cpu_memory",
    "recursive_detach",
]


def recursive_detach(in_dict: Any, to_cpu: bool = False) -> Any:
    """Detach every tensor of a (nested) collection; everything else is kept as it is.

    Args:
        in_dict: a tensor, or a dict/list/tuple/dataclass holding tensors.
        to_cpu: also move the tensors to the CPU.

    Returns:
        The same structure with detached tensors.
    """

    def detach(tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.detach()
        return out.cpu() if to_cpu else out

    return apply_to_collection(in_dict, lambda x: isinstance(x, torch.Tensor), detach)


def _single_message(exception: BaseException) -> str | None:
    # Lightning's checks only read a RuntimeError that carries exactly one string argument
    if isinstance(exception, RuntimeError) and len(exception.args) == 1 and isinstance(exception.args[0], str):
        return exception.args[0]
    return None


def is_cuda_out_of_memory(exception: BaseException) -> bool:
    """Whether ``exception`` is CUDA running out of memory (``torch.cuda.OutOfMemoryError`` included).

    Args:
        exception: the error caught.

    Returns:
        True for a RuntimeError whose message names CUDA and "out of memory".
    """
    message = _single_message(exception)
    return message is not None and "CUDA" in message and "out of memory" in message


def is_cudnn_snafu(exception: BaseException) -> bool:
    """Whether ``exception`` is cuDNN's ``CUDNN_STATUS_NOT_SUPPORTED`` (what it raises when memory runs short).

    Args:
        exception: the error caught.

    Returns:
        True for that RuntimeError.
    """
    message = _single_message(exception)
    return message is not None and "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED." in message


def is_out_of_cpu_memory(exception: BaseException) -> bool:
    """Whether ``exception`` is PyTorch's CPU allocator failing.

    Args:
        exception: the error caught.

    Returns:
        True for a RuntimeError from ``DefaultCPUAllocator``.
    """
    message = _single_message(exception)
    return message is not None and "DefaultCPUAllocator: can't allocate memory" in message


def is_oom_error(exception: BaseException) -> bool:
    """Whether ``exception`` is any of the out-of-memory errors above.

    Args:
        exception: the error caught.

    Returns:
        True for CUDA, cuDNN or CPU out of memory.
    """
    return is_cuda_out_of_memory(exception) or is_cudnn_snafu(exception) or is_out_of_cpu_memory(exception)


def garbage_collection_cuda() -> None:
    """Collect garbage, then return PyTorch's cached CUDA memory to the device.

    Raises:
        RuntimeError: from ``torch.cuda.empty_cache`` when it is not an out-of-memory error
            (that one is expected after an OOM and is not worth failing for).
    """
    gc.collect()
    try:
        torch.cuda.empty_cache()
    except RuntimeError as exception:
        if not is_oom_error(exception):
            raise
