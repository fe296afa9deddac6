"""``utilities.memory`` and ``utilities.data``: the same answers as Lightning's on the same inputs (differential)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import pytest
import torch
from pytorch_lightning.utilities import data as pl_data
from pytorch_lightning.utilities import memory as pl_memory
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import lightcycle as lc
from lightcycle.utilities import data as lc_data
from lightcycle.utilities import memory as lc_memory

ERRORS: list[BaseException] = [
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"),
    RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if ..."),
    RuntimeError("[enforce fail at alloc_cpu.cpp:114] DefaultCPUAllocator: can't allocate memory: you tried"),
    RuntimeError("CUDA error: device-side assert triggered"),
    RuntimeError("CUDA out of memory", "second argument"),
    ValueError("CUDA out of memory"),
    MemoryError(),
]
CHECKS = ("is_oom_error", "is_cuda_out_of_memory", "is_cudnn_snafu", "is_out_of_cpu_memory")


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_oom_checks_answer_as_lightning_s(error: BaseException) -> None:
    ours = {name: getattr(lc_memory, name)(error) for name in CHECKS}
    theirs = {name: getattr(pl_memory, name)(error) for name in CHECKS}
    assert ours == theirs


def test_the_oom_checks_say_yes_somewhere() -> None:
    assert sum(lc_memory.is_oom_error(e) for e in ERRORS) == 4  # the table is not all "no"


def test_a_non_string_message_is_not_an_oom() -> None:
    # Lightning's checks raise TypeError here (``"CUDA" in 3``); a check inside an except block should not
    assert not any(getattr(lc_memory, name)(RuntimeError(3)) for name in CHECKS)


@dataclasses.dataclass
class Pair:
    x: torch.Tensor
    y: Any


@pytest.mark.parametrize("to_cpu", [False, True])
def test_recursive_detach_as_lightning_s(to_cpu: bool) -> None:
    w = torch.ones(2, requires_grad=True)
    value = {"a": w * 2, "b": [w * 3, (w * 4, "s")], "c": Pair(w * 5, 7), "d": 1.5}
    ours, theirs = lc_memory.recursive_detach(value, to_cpu), pl_memory.recursive_detach(value, to_cpu)
    assert type(ours["b"][1]) is type(theirs["b"][1]) is tuple and isinstance(ours["c"], Pair)
    flat_ours = [ours["a"], ours["b"][0], ours["b"][1][0], ours["c"].x]
    flat_theirs = [theirs["a"], theirs["b"][0], theirs["b"][1][0], theirs["c"].x]
    assert [t.requires_grad for t in flat_ours] == [t.requires_grad for t in flat_theirs] == [False] * 4
    assert all(torch.equal(a, b) for a, b in zip(flat_ours, flat_theirs, strict=True))
    assert (ours["b"][1][1], ours["c"].y, ours["d"]) == ("s", 7, 1.5)
    assert value["a"].requires_grad  # the input is left as it was


def test_garbage_collection_cuda_runs() -> None:
    lc_memory.garbage_collection_cuda()  # without CUDA, empty_cache is a no-op; it must not raise


class Stream(IterableDataset[int]):
    def __iter__(self) -> Any:
        return iter(range(3))


class SizedStream(Stream):
    def __len__(self) -> int:
        return 3


class NoLen:
    def __len__(self) -> int:
        raise NotImplementedError


LOADERS = {
    "map": DataLoader(TensorDataset(torch.zeros(6, 2)), batch_size=2),
    "empty": DataLoader(TensorDataset(torch.zeros(0, 2)), batch_size=2),
    "stream": DataLoader(Stream()),
    "sized_stream": DataLoader(SizedStream()),
    "list": [1, 2],
    "no_len": NoLen(),
    "int": 5,
}


@pytest.mark.parametrize("name", list(LOADERS))
def test_length_helpers_answer_as_lightning_s(name: str) -> None:
    loader = LOADERS[name]
    assert lc_data.sized_len(loader) == pl_data.sized_len(loader)
    assert lc_data.has_iterable_dataset(loader) == pl_data.has_iterable_dataset(loader)


def _has_len(module: Any, strategy: Any, loader: Any) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            answer: Any = module.has_len_all_ranks(loader, strategy)
        except RuntimeError as err:
            answer = str(err)
    return answer, [str(w.message) for w in caught]


@pytest.mark.parametrize("name", list(LOADERS))
def test_has_len_all_ranks_as_lightning_s(name: str) -> None:
    import pytorch_lightning as pl

    ours = _has_len(lc_data, lc.Trainer(accelerator="cpu", logger=False).strategy, LOADERS[name])
    theirs = _has_len(pl_data, pl.Trainer(accelerator="cpu", logger=False).strategy, LOADERS[name])
    assert ours == theirs


@pytest.mark.parametrize(
    "batch",
    [
        torch.zeros(3, 2),
        torch.tensor(1.0),
        {"x": torch.zeros(4, 1), "y": [torch.zeros(4)]},
        Pair(torch.zeros(5), torch.zeros(5, 2)),
    ],
)
def test_extract_batch_size_is_self_log_s(batch: Any) -> None:
    assert lc_data.extract_batch_size(batch) == pl_data.extract_batch_size(batch)


def _batch_size_and_warnings(extract: Any, batch: Any) -> tuple[Any, list[str]]:
    pl_data.warning_cache.clear()  # Lightning warns once per message and process: each case sees its own
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            answer: Any = extract(batch)
        except Exception as err:  # the answer compared is the exception's type and message
            answer = (type(err).__name__, str(err))
    return answer, [str(w.message) for w in caught]


@pytest.mark.parametrize(
    "batch",
    [
        # the tuple/list-of-plain-tensors fast path
        (torch.zeros(3, 2), torch.zeros(3)),
        [torch.zeros(6), torch.zeros(6, 1), torch.zeros(6, 2, 2)],
        (torch.zeros(1), torch.tensor(2.0)),  # a 0-dim tensor counts 1
        (torch.zeros(8),),
        # where it hands over to the general walk
        (torch.zeros(2), torch.zeros(4)),  # ambiguous: Lightning's warning, the first size
        (torch.zeros(2), "label"),  # a non-tensor after a tensor: ambiguous too
        (torch.zeros(5), [torch.zeros(5)]),  # nested
        (torch.zeros(5), [torch.zeros(7)]),  # nested and ambiguous
        ("id", torch.zeros(3)),  # no tensor first: the first size found
        (torch.nn.Parameter(torch.zeros(4)), torch.zeros(4)),  # a tensor subclass
        (),
        [],
    ],
)
def test_extract_batch_size_sequences_as_lightning(batch: Any) -> None:
    ours = _batch_size_and_warnings(lc_data.extract_batch_size, batch)
    theirs = _batch_size_and_warnings(pl_data.extract_batch_size, batch)
    if isinstance(theirs[0], tuple):  # (no tensor found) Lightning raises its own exception class
        assert isinstance(ours[0], tuple) and ours[0][1] == theirs[0][1]
    else:
        assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
