"""Speculative decoding arguments (strata's and transformers' names) -> what
a request and its engine need."""
from __future__ import annotations

import os
from typing import Any, NamedTuple, Optional

DEFAULT_DRAFT_TOKENS = 4  # as the CLI's --draft-tokens


class Speculative(NamedTuple):
    lookup: int                # prompt-lookup n-gram (0 = off)
    draft_tokens: Optional[int]  # per pass at most; None = what the engine planned
    draft_model: Optional[str]   # path of the draft model; None = the engine's (if any)

    @property
    def asked(self) -> bool:
        return bool(self.lookup or self.draft_tokens or self.draft_model)


def _count(name: str, v: Any, lo: int, hi: int) -> Optional[int]:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name} must be an int, not {type(v).__name__}")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {v}")
    return v


def _model_path(name: str, m: Any) -> Optional[str]:
    if m is None:
        return None
    engine = getattr(m, "engine", None)  # a strata Model
    if engine is not None and hasattr(engine, "path"):
        return os.path.abspath(engine.path)
    if isinstance(m, (str, os.PathLike)):
        p = os.fspath(m)
        if not os.path.exists(p):
            raise FileNotFoundError(f"{name}: {p} does not exist (give a model directory or GGUF file, or a Model)")
        return os.path.abspath(p)
    raise TypeError(f"{name} must be a path or a strata Model, not {type(m).__name__}")


def speculative_args(prompt_lookup: Optional[int] = None, draft_tokens: Optional[int] = None,
                     draft_model: Any = None, assistant_model: Any = None,
                     prompt_lookup_num_tokens: Optional[int] = None,
                     max_matching_ngram_size: Optional[int] = None) -> Speculative:
    """prompt_lookup=N: draft by prompt lookup with N-grams (strata's --lookup N);
    draft_model: a small model with the same vocabulary (strata's --draft);
    draft_tokens=K: drafted tokens per pass at most (--draft-tokens).
    transformers' names work too: assistant_model (= draft_model),
    prompt_lookup_num_tokens=K (prompt lookup drafting K tokens, with
    max_matching_ngram_size-grams, default 2)."""
    lookup = _count("prompt_lookup", prompt_lookup, 0, 16) or 0
    k = _count("draft_tokens", draft_tokens, 0, 32)
    plnt = _count("prompt_lookup_num_tokens", prompt_lookup_num_tokens, 1, 32)
    ngram = _count("max_matching_ngram_size", max_matching_ngram_size, 1, 16)
    if plnt is not None:
        if lookup and ngram and lookup != ngram:
            raise ValueError("give prompt_lookup or max_matching_ngram_size, not two different n-grams")
        lookup = lookup or ngram or 2
        if k is not None and k != plnt:
            raise ValueError("give draft_tokens or prompt_lookup_num_tokens, not two different values")
        k = plnt
    elif ngram is not None and not lookup:
        raise ValueError("max_matching_ngram_size needs prompt_lookup_num_tokens")
    if draft_model is not None and assistant_model is not None:
        raise ValueError("give draft_model or assistant_model, not both")
    draft = _model_path("draft_model", draft_model if draft_model is not None else assistant_model)
    return Speculative(lookup, k, draft)


def engine_needs(spec: Speculative, planned: int, engine_draft: Optional[str]) -> Optional[int]:
    """The drafted rows per sequence an engine must plan for `spec` when the
    current one (planned rows, draft model) cannot serve it; None when it can."""
    want = spec.draft_tokens if spec.draft_tokens else (DEFAULT_DRAFT_TOKENS if spec.asked else 0)
    other_draft = spec.draft_model is not None and spec.draft_model != engine_draft
    if want <= planned and not other_draft:
        return None
    return max(want, planned)
