"""strata.Engine: one loaded model serving requests submitted from any thread."""
from __future__ import annotations

import os
import threading
from typing import Iterator, List, Optional, Sequence, Union

from . import _strata
from ._resolve import resolve_model
from .tokenizer import Tokenizer


def parse_memory(max_memory: Union[None, int, str]) -> int:
    """Bytes for a budget given as an int or a size string ("4GiB", "512MiB", "2.5GB"); None/0 = automatic."""
    if max_memory is None:
        return 0
    if isinstance(max_memory, bool):
        raise TypeError("max_memory must be a size string like '4GiB' or a number of bytes")
    if isinstance(max_memory, int):
        if max_memory < 0:
            raise ValueError(f"max_memory must be >= 0 bytes, got {max_memory}")
        return max_memory
    if isinstance(max_memory, str):
        return _strata.parse_byte_size(max_memory)
    raise TypeError(f"max_memory must be a size string like '4GiB' or a number of bytes, not "
                    f"{type(max_memory).__name__}")


class RequestResult:
    """The end of a request: generated ids, their text, why it ended."""

    def __init__(self, request_id: int, output_ids: List[int], finish_reason: str, prompt_tokens: int,
                 text: str, stats: dict):
        self.request_id = request_id
        self.output_ids = output_ids
        self.finish_reason = finish_reason  # "stop", "length" or "cancelled"
        self.prompt_tokens = prompt_tokens
        self.text = text
        self.stats = stats

    def __repr__(self) -> str:
        return (f"RequestResult(id={self.request_id}, finish_reason={self.finish_reason!r}, "
                f"output_ids=[{len(self.output_ids)} ids], text={self.text[:40]!r})")


class Request:
    """A submitted request: stream its tokens, cancel it, wait for it. Thread-safe."""

    _next_id = 0
    _id_lock = threading.Lock()

    def __init__(self, job: "_strata.Job", prompt: List[int], tokenizer: Optional[Tokenizer]):
        with Request._id_lock:
            Request._next_id += 1
            self.id = Request._next_id
        self._job = job
        self._prompt = prompt
        self._tok = tokenizer
        self._ids: List[int] = []
        self._finished = False
        self._lock = threading.Lock()
        self._result: Optional[RequestResult] = None

    def cancel(self) -> None:
        """Stops the request at its next token (finish_reason "cancelled"); no effect once it ended."""
        self._job.cancel()

    def done(self) -> bool:
        return self._job.done()

    def _pump(self, timeout: float) -> bool:
        """Moves chosen tokens into self._ids; True when no more will come."""
        with self._lock:
            if not self._finished:
                got, finished = self._job.take(timeout)
                self._ids.extend(i for _, i, _ in got)
                self._finished = finished
            return self._finished

    def tokens(self) -> Iterator[int]:
        """Yields the ids as they are chosen (one iterator at a time)."""
        k = 0
        while True:
            while k < len(self._ids):
                yield self._ids[k]
                k += 1
            if self._finished:
                with self._lock:
                    if k >= len(self._ids):
                        return
                continue
            self._pump(0.05)

    def wait(self, timeout: Optional[float] = None) -> Optional[RequestResult]:
        """The result, blocking until the end (or None after `timeout` seconds).
        Ctrl-C while waiting cancels the request and raises KeyboardInterrupt."""
        if not self._job.wait(-1.0 if timeout is None else float(timeout)):
            return None
        if self._result is None:
            r = self._job.results()[0]
            text = r["text"]
            if not text and self._tok is not None:
                text = self._tok.decode(r["ids"], skip_special_tokens=True)
            self._result = RequestResult(self.id, list(r["ids"]), r["finish_reason"], len(self._prompt), text,
                                         self._job.stats())
        return self._result

    @property
    def result(self) -> RequestResult:
        r = self.wait()
        assert r is not None
        return r


class Engine:
    """A model opened once, serving many requests (``submit`` from any thread).

    >>> eng = strata.Engine("models/llama", max_memory="4GiB")
    >>> req = eng.submit("Once upon a time", max_new_tokens=32)
    >>> for tok in req.tokens(): ...     # ids as they are chosen
    >>> req.cancel()                      # from any thread
    >>> req.wait().text

    Every request runs in the engine's one decode loop: requests running at
    the same time share each forward pass (each layer is read once for all of
    them). Greedy results never depend on what else runs.

    max_seq_len: positions one sequence may reach (0 = the model's, capped by
    the budget); max_sequences: running at once (0 = as many as the budget
    allows, at most 64); kv_type: "f16" or "f32" KV cache.
    draft_model / draft_tokens: speculative decoding (see ``submit``).
    """

    def __init__(self, path: Union[str, os.PathLike], max_memory: Union[None, int, str] = None, threads: int = 0,
                 io: str = "auto", streaming_slots: int = 0, max_prefill_rows: int = 0,
                 hf_token: Optional[str] = None, tokenizer_path: Optional[str] = None, max_seq_len: int = 0,
                 max_sequences: int = 0, kv_type: str = "f16",
                 draft_model: Optional[Union[str, os.PathLike]] = None, draft_tokens: int = 0):
        path = resolve_model(os.fspath(path), hf_token)
        # Kept to reopen the engine with other speculative settings (Model.generate).
        self._args = dict(max_memory=max_memory, threads=threads, io=io, streaming_slots=streaming_slots,
                          max_prefill_rows=max_prefill_rows, tokenizer_path=tokenizer_path, max_seq_len=max_seq_len,
                          max_sequences=max_sequences, kv_type=kv_type)
        budget = parse_memory(max_memory)
        if not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads must be an int >= 0, got {threads!r}")
        if io not in ("auto", "", "uring", "direct", "pread", "buffered"):
            raise ValueError(f"io must be one of auto, uring, direct, pread, buffered, not {io!r}")
        self.path = path
        if kv_type not in ("f16", "f32"):
            raise ValueError(f"kv_type must be 'f16' or 'f32', not {kv_type!r}")
        if isinstance(draft_tokens, bool) or not isinstance(draft_tokens, int) or not 0 <= draft_tokens <= 32:
            raise ValueError(f"draft_tokens must be an int in 0..32, got {draft_tokens!r}")
        # Speculative decoding: the draft model (same vocabulary, kept
        # resident out of the same budget) and the drafted rows per sequence
        # and pass the plan makes room for (4 with a draft model by default).
        self.draft_model = None if draft_model is None else os.path.abspath(os.fspath(draft_model))
        if self.draft_model is not None and not os.path.exists(self.draft_model):
            raise _strata.ModelNotFoundError(f"draft_model: {self.draft_model} does not exist")
        self.draft_tokens = draft_tokens or (4 if self.draft_model else 0)
        self._native = _strata.Engine(path, budget, threads, "" if io == "auto" else io, max_prefill_rows,
                                      streaming_slots, max_seq_len, max_sequences, kv_type,
                                      self.draft_model or "", self.draft_tokens)
        self.tokenizer: Optional[Tokenizer] = None
        tp = tokenizer_path or path
        tok_file = tp if os.path.isfile(tp) and tp.endswith(".json") else os.path.join(tp, "tokenizer.json")
        if os.path.isfile(tok_file):
            self.tokenizer = Tokenizer(_strata.Tokenizer.from_file(tok_file), tp,
                                       model_max_length=None)

    def encode(self, prompt: Union[str, Sequence[int]]) -> List[int]:
        """Ids of a prompt given as text (with BOS as the model wants) or as ids."""
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise _strata.UsageError(f"{self.path}: the model has no tokenizer.json; give token ids")
            return self.tokenizer.encode(prompt)
        ids = [int(i) for i in prompt]
        if not ids:
            raise _strata.UsageError("the prompt is empty: give at least one token id")
        return ids

    def submit(self, prompt: Union[str, Sequence[int]], max_new_tokens: int = 64, temperature: float = 0.0,
               top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, seed: int = 0, stop_at_eos: bool = True,
               stop_ids: Sequence[int] = (), stop_strings: Sequence[str] = (), prompt_lookup: int = 0,
               draft_tokens: Optional[int] = None) -> Request:
        """Starts a request and returns at once (UsageError for invalid values). temperature 0 = greedy.
        prompt_lookup=N drafts by prompt lookup with N-grams; draft_tokens: drafted tokens per pass at most
        (default: the engine's draft_tokens; both need an engine opened with draft_tokens > 0)."""
        ids = self.encode(prompt)
        k = self.draft_tokens if draft_tokens is None else int(draft_tokens)
        if (prompt_lookup or k > 0) and k > self.draft_tokens:
            raise _strata.UsageError(f"draft_tokens={k} exceeds the {self.draft_tokens} drafted rows this engine "
                                     f"plans; open it with Engine(..., draft_tokens={k})")
        seq = _strata.Sequence(ids, int(max_new_tokens), _strata.SamplingParams(temperature, top_k, top_p, min_p, seed),
                               bool(stop_at_eos), [int(i) for i in stop_ids], [str(x) for x in stop_strings],
                               int(prompt_lookup), k)
        return Request(self._native.start([seq]), ids, self.tokenizer)

    def info(self) -> dict:
        """Architecture and sizes of the model."""
        return self._native.info()

    def plan(self, context: int, sequences: int = 1) -> dict:
        """The memory plan for `sequences` sequences of `context` positions."""
        return self._native.plan_for(context, 1, sequences)

    def stats(self) -> dict:
        """The scheduler's counters since the engine was opened: requests, passes, tokens,
        bytes read, I/O wait, compute, KV pages."""
        return self._native.stats()

    def shutdown(self) -> None:
        """Cancels everything running or queued and stops the scheduler."""
        self._native.shutdown()
