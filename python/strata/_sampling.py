"""transformers-style sampling arguments -> strata's SamplingParams."""
from __future__ import annotations

import random
from typing import List, Optional, Sequence, Union

from . import _strata


def sampling_params(do_sample: bool, temperature: Optional[float], top_k: Optional[int], top_p: Optional[float],
                    min_p: Optional[float], seed: Optional[int], count: int) -> List["_strata.SamplingParams"]:
    """One SamplingParams per sequence. do_sample=False is greedy whatever
    the other values (as in transformers). Sampled sequences of one call get
    seeds seed, seed+1, ... so equal prompts give different samples; seed=None
    draws a random seed."""
    for name, v in (("temperature", temperature), ("top_p", top_p), ("min_p", min_p)):
        if v is not None and not isinstance(v, (int, float)):
            raise TypeError(f"{name} must be a number, not {type(v).__name__}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)):
        raise TypeError(f"top_k must be an int, not {type(top_k).__name__}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    if not do_sample:
        return [_strata.SamplingParams() for _ in range(count)]
    t = 1.0 if temperature is None else float(temperature)
    if t < 0:
        raise ValueError(f"temperature must be >= 0, got {t}")
    k = 50 if top_k is None else top_k
    if k < 0:
        raise ValueError(f"top_k must be >= 0, got {k}")
    p = 1.0 if top_p is None else float(top_p)
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    m = 0.0 if min_p is None else float(min_p)
    if not 0 <= m <= 1:
        raise ValueError(f"min_p must be in [0, 1], got {m}")
    base = random.getrandbits(62) if seed is None else seed
    if base < 0:
        raise ValueError(f"seed must be >= 0, got {base}")
    return [_strata.SamplingParams(t, k, p, m, (base + i) % (1 << 64)) for i in range(count)]


def stop_ids(eos_token_id: Union[None, int, Sequence[int]]) -> Optional[List[int]]:
    """None (the model's EOS ends a sequence) or the ids that do instead."""
    if eos_token_id is None:
        return None
    if isinstance(eos_token_id, bool):
        raise TypeError("eos_token_id must be an int or a list of ints")
    if isinstance(eos_token_id, int):
        return [eos_token_id]
    ids = list(eos_token_id)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise TypeError("eos_token_id must be an int or a list of ints")
    return ids
