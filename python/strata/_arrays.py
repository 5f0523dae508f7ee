"""Conversions between token-id containers: lists, numpy arrays, torch tensors.

numpy and torch are optional. Without numpy, ``return_tensors="np"`` raises
an ImportError that names the fix; lists work everywhere.
"""
from __future__ import annotations

import sys
from typing import Any, List, Optional, Sequence


def _missing(what: str, package: str, debian: str) -> ImportError:
    return ImportError(
        f"{what} needs {package}, which this Python ({sys.executable}) cannot import. Install it for this "
        f"interpreter (on Debian: apt-get install {debian}, which serves /usr/bin/python3), or leave "
        f"return_tensors=None to get plain lists.")


def numpy_or_raise(what: str = 'return_tensors="np"'):
    try:
        import numpy
    except ImportError as e:
        raise _missing(what, "numpy", "python3-numpy") from e
    return numpy


def torch_or_raise(what: str = 'return_tensors="pt"'):
    try:
        import torch
    except ImportError as e:
        raise _missing(what, "torch", "python3-torch") from e
    return torch


def kind_of(x: Any) -> str:
    """'torch', 'np' or 'list' for a container of ids (what to give back)."""
    mod = type(x).__module__ or ""
    if mod.startswith("torch"):
        return "torch"
    if mod.startswith("numpy"):
        return "np"
    return "list"


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return kind_of(v) == "np" and getattr(v, "dtype", None) is not None and v.dtype.kind in "iu"


def to_rows(x: Any, name: str = "input_ids") -> List[List[int]]:
    """Rows of ints from a 1-D or 2-D list, numpy array or torch tensor."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be token ids (a list, numpy array or torch tensor), not text; "
                        f"encode text with model.tokenizer(...) first")
    if hasattr(x, "tolist") and kind_of(x) in ("np", "torch"):
        if kind_of(x) == "torch" and x.is_floating_point():
            raise TypeError(f"{name} must hold integers, got a {x.dtype} tensor")
        if kind_of(x) == "np" and x.dtype.kind not in "iub":
            raise TypeError(f"{name} must hold integers, got a numpy array of {x.dtype}")
        x = x.tolist()
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"{name} must be a list, numpy array or torch tensor of token ids, not {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty")
    if all(_is_int(v) for v in x):
        return [[int(v) for v in x]]
    rows = []
    for r in x:
        if hasattr(r, "tolist") and kind_of(r) in ("np", "torch"):
            r = r.tolist()
        if isinstance(r, (str, bytes)) or not isinstance(r, (list, tuple)) or not all(_is_int(v) for v in r):
            raise TypeError(f"{name} must be a 1-D or 2-D collection of integer token ids")
        rows.append([int(v) for v in r])
    return rows


def from_rows(rows: Sequence[Sequence[int]], kind: Optional[str], pad: int = 0, what: str = "return_tensors"):
    """Rows as the requested kind: None/'list' -> lists (ragged allowed), 'np'/'pt'/'torch' -> 2-D, right-padded."""
    if kind in (None, "list"):
        return [list(r) for r in rows]
    width = max((len(r) for r in rows), default=0)
    padded = [list(r) + [pad] * (width - len(r)) for r in rows]
    if kind == "np":
        np = numpy_or_raise(f'{what}="np"')
        return np.array(padded, dtype=np.int64).reshape(len(padded), width)
    if kind in ("pt", "torch"):
        torch = torch_or_raise(f'{what}="pt"')
        return torch.tensor(padded, dtype=torch.long).reshape(len(padded), width)
    raise ValueError(f'{what} must be None, "np" or "pt", not {kind!r}')


def floats(values: Sequence[float]):
    """A float numpy array when numpy is importable, else the list."""
    try:
        import numpy as np
    except ImportError:
        return list(values)
    return np.asarray(values, dtype=np.float64)
