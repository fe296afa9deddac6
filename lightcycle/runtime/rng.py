"""The global random number generators: their states in a checkpoint, and around the sanity check.

:func:`collect_rng_states` gives the states in the compact form a checkpoint stores (format 3 of
``loops["fit_loop"]``): the Mersenne Twister words of Python's ``random`` and of NumPy's global
``RandomState`` as little-endian ``uint32`` bytes instead of a tuple of 625 ints and an int64
tensor, and torch's state as ``bytes`` instead of a uint8 tensor. ``torch.save`` calls its
pickler's ``persistent_id`` for every object it pickles, so the tuple alone (twice in a fit
checkpoint: the states now and at the epoch start) cost ~1,250 calls, about 38,000 bytecodes per
save; a ``bytes`` object is one call, and no storage record. :func:`restore_rng_states` reads
this form and the older one (formats 1 and 2), so older checkpoints still resume exactly.
"""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

WORD = "<u4"
"""How a Mersenne Twister word is stored: 4 bytes, little-endian, whatever the platform."""
_PYTHON_WORDS = struct.Struct("<625I")
"""``random.getstate()[1]``: 624 words and the position in them (``struct``: ~4 us, numpy ~17)."""
PYTHON_STATE_BYTES = _PYTHON_WORDS.size
NUMPY_KEY_BYTES = 624 * 4
"""``np.random.get_state()[1]``: 624 words."""


def state_bytes(state: torch.Tensor) -> bytes:
    """A ``torch.Generator`` state (a CPU uint8 tensor) as ``bytes``: ``torch.save`` writes a tensor
    as a storage record of its own, ~30 us each, and ``bytes`` inline in the pickle, ~5 us."""
    return state.numpy().tobytes()


def state_tensor(stored: Any) -> torch.Tensor:
    """The uint8 tensor ``set_state`` takes, from ``bytes`` (format 3) or a tensor (older files)."""
    if isinstance(stored, (bytes, bytearray)):
        return torch.frombuffer(bytearray(stored), dtype=torch.uint8)  # a copy: frombuffer wants it writable
    tensor: torch.Tensor = stored
    return tensor


def collect_rng_states() -> dict[str, Any]:
    """The global RNG states: torch (CPU, and CUDA when initialised), Python, NumPy.

    Returns:
        ``{"torch": bytes, "python": (version, bytes, gauss_next), "numpy": (kind, bytes,
        pos, has_gauss, cached_gaussian), "cuda": [uint8 tensors]}`` (``"cuda"`` only when CUDA
        is initialised).
    """
    version, internal, gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": state_bytes(torch.get_rng_state()),
        "python": (version, _PYTHON_WORDS.pack(*internal), gauss),
    }
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    states["numpy"] = (kind, np.asarray(keys).astype(WORD).tobytes(), int(pos), int(has_gauss), float(cached))
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _python_words(stored: Any) -> tuple[int, ...]:
    """Python's state words: ``bytes`` (format 3) or, from older files, a tuple of ints."""
    if isinstance(stored, (bytes, bytearray)):
        return _PYTHON_WORDS.unpack(stored)
    return tuple(stored)


def _numpy_words(stored: Any) -> Any:
    """NumPy's key as ``uint32``: from ``bytes`` (format 3) or, from older files, an int64 tensor."""
    if isinstance(stored, (bytes, bytearray)):
        return np.frombuffer(stored, dtype=WORD).astype(np.uint32)
    return np.asarray(stored, dtype=np.int64).astype(np.uint32)


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`collect_rng_states` returned, or what an older release stored."""
    torch.set_rng_state(state_tensor(states["torch"]))
    version, internal, gauss = states["python"]
    random.setstate((version, _python_words(internal), gauss))
    if "numpy" in states:
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, _numpy_words(keys), pos, has_gauss, cached))
    if "cuda" in states and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # a different number of devices now
            torch.cuda.set_rng_state_all(states["cuda"])


@contextmanager
def isolate_rng() -> Iterator[None]:
    """Restore every RNG after the block, so the sanity check does not shift training."""
    py_state = random.getstate()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    np_state = np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        np.random.set_state(np_state)
