"""AutoModel and Model: AirLLM's Python API over strata's engine."""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from . import _strata
from ._arrays import floats, from_rows, kind_of, numpy_or_raise, to_rows
from ._resolve import ensure_compressed, resolve_model
from ._sampling import sampling_params, stop_ids
from ._speculative import Speculative, engine_needs, speculative_args
from .engine import Engine
from .tokenizer import Tokenizer

Prompt = Union[str, Sequence[int]]


class GenerateOutput:
    """What ``generate(..., return_dict_in_generate=True)`` returns, like
    transformers' GenerateDecoderOnlyOutput.

    sequences:      prompt + new ids per row (the input rows as given, padding
                    included), in the input's kind (numpy array, torch tensor,
                    or lists); arrays are right-padded with pad_token_id.
    new_tokens:     the new ids per row (lists, no padding).
    finish_reasons: "stop" (EOS / eos_token_id), "length" or "cancelled".
    stats:          passes, tokens, bytes read, times of the call.
    """

    def __init__(self, sequences: Any, new_tokens: List[List[int]], finish_reasons: List[str], stats: dict):
        self.sequences = sequences
        self.new_tokens = new_tokens
        self.finish_reasons = finish_reasons
        self.stats = stats

    def keys(self):
        return ["sequences"]

    def __getitem__(self, key: Union[str, int]) -> Any:
        if key in ("sequences", 0):
            return self.sequences
        raise KeyError(key)

    def __repr__(self) -> str:
        return f"GenerateOutput(sequences=<{len(self.new_tokens)} rows>, finish_reasons={self.finish_reasons})"


class ScoreOutput:
    """Teacher-forced scores of a sequence of ids.

    logprobs:   log p(ids[t+1] | ids[..t]) for t < n-1 (numpy float64 when numpy is importable)
    perplexity: exp(-mean(logprobs))
    argmax:     most likely next id at every position
    logits:     [n, vocab] float32 numpy array when return_logits=True
    """

    def __init__(self, d: dict, vocab: int, want_logits: bool):
        self.logprobs = floats(d["logprobs"])
        self.perplexity: float = d["perplexity"]
        self.argmax: List[int] = d["argmax"]
        self.passes: int = d["passes"]
        self.logits = None
        if want_logits:
            np = numpy_or_raise("score(return_logits=True)")
            self.logits = np.frombuffer(d["logits"], dtype=np.float32).reshape(-1, vocab)

    def __repr__(self) -> str:
        return f"ScoreOutput(perplexity={self.perplexity:.4f}, positions={len(self.argmax)})"


class Completion:
    """One result of ``model.batch``: text, ids, why it ended."""

    def __init__(self, prompt_ids: List[int], output_ids: List[int], text: Optional[str], finish_reason: str):
        self.prompt_ids = prompt_ids
        self.output_ids = output_ids
        self.text = text
        self.finish_reason = finish_reason

    def __repr__(self) -> str:
        return f"Completion(finish_reason={self.finish_reason!r}, text={self.text!r})"


class Model:
    """A model opened by ``AutoModel.from_pretrained``.

    generate(input_ids, ...)  transformers-style generation (AirLLM's call)
    stream(prompt, ...)       yields text pieces as they are generated
    chat(messages, ...)       one assistant turn with the model's chat template
    batch(prompts, ...)       many prompts in shared passes, results in order
    score(ids)                log-probabilities and perplexity
    info()                    model, memory plan and I/O method as a dict
    engine                    the lower-level strata.Engine (submit/cancel from threads)
    """

    device = "cpu"

    def __init__(self, engine: Engine, tokenizer: Optional[Tokenizer], *, source: str, compression: Optional[str],
                 compressed_path: Optional[str], converted: bool, max_seq_len: int, profiling_mode: bool):
        self.engine = engine
        self.tokenizer = tokenizer
        self.source_path = source
        self.compression = compression
        self.compressed_path = compressed_path
        self.converted = converted   # True when this load wrote the compressed copy
        info = engine.info()
        self.max_seq_len = min(max_seq_len, info["max_position_embeddings"])
        self.profiling_mode = profiling_mode
        self._info = info
        self.prompt_lookup = 0  # the n-gram of calls that give no speculative arguments (from_pretrained's)

    # -- helpers --------------------------------------------------------------
    @property
    def config(self) -> Dict[str, Any]:
        return dict(self._info)

    def _tok(self) -> Tokenizer:
        if self.tokenizer is None:
            raise _strata.UsageError(f"{self.source_path}: the model has no tokenizer.json; give token ids")
        return self.tokenizer

    def _ids(self, prompt: Prompt) -> List[int]:
        if isinstance(prompt, str):
            return self._tok().encode(prompt)
        rows = to_rows(prompt, "prompt")
        if len(rows) != 1:
            raise TypeError("a prompt is one text or one sequence of ids")
        return rows[0]

    def _check_length(self, n_prompt: int, max_new: int) -> None:
        if n_prompt + max_new > self.max_seq_len:
            raise _strata.UsageError(f"prompt ({n_prompt} tokens) plus max_new_tokens ({max_new}) exceed max_seq_len "
                                     f"{self.max_seq_len}; raise max_seq_len in from_pretrained or shorten the prompt")

    def _speculate(self, spec: Speculative):
        """(lookup n-gram, drafted tokens per pass) for a request; reopens the
        engine first when it plans too few drafted rows or another draft model."""
        e = self.engine
        need = engine_needs(spec, e.draft_tokens, e.draft_model)
        if need is not None:
            draft = spec.draft_model if spec.draft_model is not None else e.draft_model
            args = dict(e._args, draft_model=draft, draft_tokens=need)
            e.shutdown()
            self.engine = e = Engine(e.path, **args)
        k = e.draft_tokens if spec.draft_tokens is None else spec.draft_tokens
        return (spec.lookup if spec.asked else self.prompt_lookup), k

    def _sequence(self, ids: List[int], max_new: int, sampling: Any, eos: Optional[List[int]],
                  stop: Optional[Sequence[str]], spec: Speculative):
        lookup, k = self._speculate(spec)
        return _strata.Sequence(ids, max_new, sampling, eos is None, eos or [], list(stop or []), lookup, k)

    def _run(self, prompts: List[List[int]], max_new: Union[int, List[int]], sampling: List[Any],
             eos: Optional[List[int]], stop: Optional[Sequence[str]] = None,
             spec: Speculative = Speculative(0, None, None)):
        news = max_new if isinstance(max_new, list) else [max_new] * len(prompts)
        seqs = []
        for p, n, s in zip(prompts, news, sampling):
            if isinstance(n, bool) or not isinstance(n, int):
                raise TypeError("max_new_tokens must be an int")
            if n < 0:
                raise ValueError(f"max_new_tokens must be >= 0, got {n}")
            if not p:
                raise _strata.UsageError("a prompt is empty: give at least one token id")
            self._check_length(len(p), n)
            seqs.append(self._sequence(p, n, s, eos, stop, spec))
        job = self.engine._native.start(seqs)
        try:
            job.wait()
        finally:
            job.cancel()  # no effect when it ended; stops it on any exception
        results = job.results()
        stats = job.stats()
        if self.profiling_mode:
            _print_profile(stats)
        return results, stats

    # -- AirLLM / transformers -----------------------------------------------
    def generate(self, input_ids: Any = None, attention_mask: Any = None, max_new_tokens: Optional[int] = None,
                 max_length: Optional[int] = None, do_sample: bool = False, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None, min_p: Optional[float] = None,
                 seed: Optional[int] = None, eos_token_id: Union[None, int, Sequence[int]] = None,
                 pad_token_id: Optional[int] = None, use_cache: bool = True, return_dict_in_generate: bool = False,
                 inputs: Any = None, prompt_lookup: Optional[int] = None, draft_tokens: Optional[int] = None,
                 draft_model: Any = None, assistant_model: Any = None,
                 prompt_lookup_num_tokens: Optional[int] = None,
                 max_matching_ngram_size: Optional[int] = None) -> Any:
        """Generates after each row of ``input_ids`` (a numpy array, torch
        tensor or list; 1-D for one prompt or 2-D for a batch). All rows run
        as ONE batch: every forward pass reads each layer once for all of them.

        attention_mask: 0 marks padding (left or right), dropped from the prompt.
        max_new_tokens: new tokens per row (default 20; or max_length - prompt length).
        do_sample: False = greedy (the default); True samples with temperature
            (1.0), top_k (50), top_p (1.0), min_p (0) and seed (random when None;
            row i uses seed + i).
        eos_token_id: id(s) that end a row instead of the model's EOS.
        use_cache: accepted; strata always keeps a KV cache.
        return_dict_in_generate: a GenerateOutput (``.sequences``) instead of the array.
        Speculative decoding (greedy output unchanged, sampled output with the
        same distribution; several tokens per pass over the streamed model):
            prompt_lookup=N: draft from earlier N-grams of the prompt and output;
            draft_model: a small model with the same vocabulary (a path or a
                Model), kept resident out of max_memory, drafting greedily;
            draft_tokens=K: drafted tokens per pass at most (default 4).
            transformers' assistant_model, prompt_lookup_num_tokens and
            max_matching_ngram_size work too. The first call needing more
            drafted rows or another draft model than from_pretrained planned
            reopens the engine (pass them to from_pretrained to avoid it).

        Returns prompt + new ids per row, like transformers: the input's kind,
        right-padded with pad_token_id (default the tokenizer's pad, else EOS)
        for arrays and tensors; ragged lists for list input.
        Ctrl-C cancels the generation (KeyboardInterrupt) and leaves the model usable.
        """
        if input_ids is None:
            input_ids = inputs
        if input_ids is None:
            raise TypeError("generate() needs input_ids")
        kind = kind_of(input_ids)
        rows = to_rows(input_ids, "input_ids")
        prompts = rows
        if attention_mask is not None:
            masks = to_rows(attention_mask, "attention_mask")
            if len(masks) != len(rows) or any(len(m) != len(r) for m, r in zip(masks, rows)):
                raise ValueError("attention_mask must have the shape of input_ids")
            prompts = [[t for t, m in zip(r, mr) if m] for r, mr in zip(rows, masks)]
        if max_new_tokens is None:
            if max_length is not None:
                max_new = [max(0, int(max_length) - len(r)) for r in rows]
            else:
                max_new = 20
        else:
            max_new = max_new_tokens
        sampling = sampling_params(do_sample, temperature, top_k, top_p, min_p, seed, len(prompts))
        spec = speculative_args(prompt_lookup, draft_tokens, draft_model, assistant_model, prompt_lookup_num_tokens,
                                max_matching_ngram_size)
        results, stats = self._run(prompts, max_new, sampling, stop_ids(eos_token_id), spec=spec)
        new = [list(r["ids"]) for r in results]
        reasons = [r["finish_reason"] for r in results]
        full = [r + n for r, n in zip(rows, new)]
        pad = pad_token_id
        if pad is None and self.tokenizer is not None:
            pad = self.tokenizer.pad_token_id
        if pad is None:
            eos = self._info["eos_token_ids"]
            pad = eos[0] if eos else 0
        seqs = from_rows(full, None if kind == "list" else kind, pad=pad, what="generate's input kind")
        if return_dict_in_generate:
            return GenerateOutput(seqs, new, reasons, stats)
        return seqs

    # -- beyond AirLLM ----------------------------------------------------------
    def stream(self, prompt: Prompt, max_new_tokens: int = 64, do_sample: bool = False,
               temperature: Optional[float] = None, top_k: Optional[int] = None, top_p: Optional[float] = None,
               min_p: Optional[float] = None, seed: Optional[int] = None,
               eos_token_id: Union[None, int, Sequence[int]] = None, skip_special_tokens: bool = True,
               return_ids: bool = False, stop: Optional[Sequence[str]] = None, prompt_lookup: Optional[int] = None,
               draft_tokens: Optional[int] = None, draft_model: Any = None) -> Iterator[Union[str, int]]:
        """Yields the new text piece by piece as tokens are chosen (never a
        broken UTF-8 character); ids instead with return_ids=True. Breaking
        out of the loop, or Ctrl-C, cancels the generation. prompt_lookup,
        draft_tokens, draft_model: speculative decoding, as in generate."""
        ids = self._ids(prompt)
        if not return_ids:
            self._tok()
        sampling = sampling_params(do_sample, temperature, top_k, top_p, min_p, seed, 1)
        eos = stop_ids(eos_token_id)
        self._check_length(len(ids), max_new_tokens)
        seq = self._sequence(ids, int(max_new_tokens), sampling[0], eos, stop,
                             speculative_args(prompt_lookup, draft_tokens, draft_model))
        job = self.engine._native.start([seq])
        return self._stream(job, return_ids, skip_special_tokens)

    def _stream(self, job, return_ids: bool, skip_special: bool):
        out: List[int] = []
        printed = ""
        try:
            while True:
                got, done = job.take(-1.0)
                for _, i, _ in got:
                    if return_ids:
                        yield i
                    out.append(i)
                if not return_ids and got:
                    text = self.tokenizer.decode(out, skip_special_tokens=skip_special)
                    # Hold back an incomplete character; a decode that rewrote
                    # earlier text (rare) is caught up at the end.
                    if text.startswith(printed) and not text.endswith("\ufffd") and len(text) > len(printed):
                        yield text[len(printed):]
                        printed = text
                if done:
                    break
            if not return_ids:
                text = self.tokenizer.decode(out, skip_special_tokens=skip_special)
                if text.startswith(printed) and len(text) > len(printed):
                    yield text[len(printed):]
            job.results()  # raises the engine's error, if any
            if self.profiling_mode:
                _print_profile(job.stats())
        finally:
            job.cancel()
            job.wait()

    def batch(self, prompts: Sequence[Prompt], max_new_tokens: Union[int, Sequence[int]] = 64,
              do_sample: bool = False, temperature: Optional[float] = None, top_k: Optional[int] = None,
              top_p: Optional[float] = None, min_p: Optional[float] = None, seed: Optional[int] = None,
              eos_token_id: Union[None, int, Sequence[int]] = None,
              skip_special_tokens: bool = True, stop: Optional[Sequence[str]] = None,
              prompt_lookup: Optional[int] = None, draft_tokens: Optional[int] = None,
              draft_model: Any = None) -> List[Completion]:
        """Generates for every prompt (texts or id lists) in shared passes and
        returns a Completion per prompt, in order. stop: strings that end a
        sequence (its text is cut before them). prompt_lookup, draft_tokens,
        draft_model: speculative decoding for every prompt, as in generate."""
        if isinstance(prompts, (str, bytes)):
            raise TypeError("batch takes a list of prompts")
        ids = [self._ids(p) for p in prompts]
        if not ids:
            return []
        mx = list(max_new_tokens) if isinstance(max_new_tokens, (list, tuple)) else int(max_new_tokens)
        if isinstance(mx, list) and len(mx) != len(ids):
            raise ValueError("max_new_tokens must be one int or one per prompt")
        sampling = sampling_params(do_sample, temperature, top_k, top_p, min_p, seed, len(ids))
        spec = speculative_args(prompt_lookup, draft_tokens, draft_model)
        results, _ = self._run(ids, mx, sampling, stop_ids(eos_token_id), stop, spec)
        out = []
        for p, r in zip(ids, results):
            text = r["text"] if stop else None  # cut before the stop string by the library
            if text is None and self.tokenizer is not None:
                text = self.tokenizer.decode(r["ids"], skip_special_tokens=skip_special_tokens)
            out.append(Completion(p, list(r["ids"]), text, r["finish_reason"]))
        return out

    def chat(self, messages: Sequence[Dict[str, Any]], max_new_tokens: int = 256, stream: bool = False,
             do_sample: bool = False, temperature: Optional[float] = None, top_k: Optional[int] = None,
             top_p: Optional[float] = None, min_p: Optional[float] = None,
             seed: Optional[int] = None, prompt_lookup: Optional[int] = None, draft_tokens: Optional[int] = None,
             draft_model: Any = None) -> Union[str, Iterator[str]]:
        """The assistant's reply to a conversation ([{"role", "content"}, ...]),
        rendered with the model's chat template; an iterator of text pieces
        with stream=True."""
        tok = self._tok()
        ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        # The turn ends at the template's end-of-turn token (<|eot_id|>, <|im_end|>...) or EOS.
        stops = tok._chat_template().stop_token_ids(tok._tok)
        kw = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed,
                  prompt_lookup=prompt_lookup, draft_tokens=draft_tokens, draft_model=draft_model)
        it = self.stream(ids, max_new_tokens=max_new_tokens, eos_token_id=stops or None, **kw)
        return it if stream else "".join(it)

    def score(self, ids: Prompt, return_logits: bool = False) -> ScoreOutput:
        """Teacher-forced log-probabilities of each next id, and the perplexity."""
        seq = self._ids(ids)
        if len(seq) > self.max_seq_len:
            raise _strata.UsageError(f"{len(seq)} ids exceed max_seq_len {self.max_seq_len}")
        d = self.engine._native.score(seq, bool(return_logits))
        return ScoreOutput(d, self._info["vocab_size"], return_logits)

    def info(self) -> Dict[str, Any]:
        """The model (architecture, sizes), the memory plan for max_seq_len, the I/O method, where the weights are."""
        d = dict(self._info)
        try:
            d["plan"] = self.engine.plan(self.max_seq_len)
        except _strata.Error as e:  # max_memory fits shorter requests only
            d["plan"], d["plan_error"] = None, str(e)
        d["io_method"], d["io_method_reason"] = self.engine._native.io_method()
        d["source_path"] = self.source_path
        d["compression"] = self.compression
        d["compressed_path"] = self.compressed_path
        d["max_seq_len"] = self.max_seq_len
        d["stats"] = self.engine.stats()
        return d

    def stats(self) -> Dict[str, Any]:
        """The scheduler's counters since loading: requests, passes, tokens, bytes read, I/O wait, KV pages."""
        return self.engine.stats()

    def __repr__(self) -> str:
        return (f"strata.Model({self.source_path!r}, {self._info['architecture']}, compression={self.compression!r}, "
                f"max_seq_len={self.max_seq_len})")


def _print_profile(s: dict) -> None:
    wall, io, compute = s["wall_s"], s["io_wait_s"], s["compute_s"]
    rate = s["bytes_read"] / wall if wall > 0 else 0.0
    tps = s["generated_tokens"] / wall if wall > 0 else 0.0
    per = wall / s["passes"] * 1e3 if s["passes"] else 0.0
    sys.stderr.write(
        f"strata profile: {s['passes']} passes ({per:.2f} ms each), batch {s['sequences']}, "
        f"{s['generated_tokens']} tokens in {wall:.3f} s ({tps:.1f} tokens/s); I/O wait {io:.3f} s, "
        f"compute {compute:.3f} s; read {_strata.format_bytes(s['bytes_read'])} "
        f"({_strata.format_bytes(int(rate))}/s)\n")
    if s.get("experts_routed"):
        sys.stderr.write(f"strata profile: experts: {s['expert_hits']} of {s['experts_routed']} routed in the cache "
                         f"(hit rate {s['expert_hit_rate']:.3f}), {_strata.format_bytes(s['expert_bytes_read'])} "
                         f"of experts read\n")
    if s.get("drafted_tokens"):
        d, a = s["drafted_tokens"], s["accepted_tokens"]
        sys.stderr.write(f"strata profile: speculative: {a} of {d} drafted tokens accepted ({a / d:.2f}), "
                         f"{s['generated_tokens'] / max(s['passes'], 1):.2f} tokens per pass\n")


def _model_context(path: str) -> int:
    """The model's own context (max_position_embeddings), without building a runtime."""
    return _strata.Engine(path).info()["max_position_embeddings"]


class AutoModel:
    """AirLLM's entry point: ``AutoModel.from_pretrained(path, ...)`` returns a Model."""

    def __init__(self) -> None:
        raise TypeError("use AutoModel.from_pretrained(path, ...)")

    @staticmethod
    def from_pretrained(pretrained_model_name_or_path: Union[str, os.PathLike], compression: Optional[str] = None,
                        max_memory: Union[None, int, str] = None, max_seq_len: int = 512,
                        profiling_mode: bool = False, prefetching: bool = True, hf_token: Optional[str] = None,
                        layer_shards_saving_path: Optional[Union[str, os.PathLike]] = None,
                        delete_original: bool = False, device: Optional[str] = "cpu", threads: int = 0,
                        io: str = "auto", draft_model: Any = None, draft_tokens: Optional[int] = None,
                        prompt_lookup: Optional[int] = None) -> Model:
        """Opens a model: a Hugging Face directory (safetensors), a GGUF file,
        or "org/name" from the hub (when hub downloads are available).

        compression: None (stream the weights as stored), "8bit" (Q8_0) or
            "4bit" (Q4_0): converts once to a GGUF in ~/.cache/strata/converted
            (or layer_shards_saving_path) with a progress bar, reused afterwards.
        max_memory: budget for everything strata allocates ("4GiB", bytes);
            None = all resident if it fits in 80% of available memory.
        max_seq_len: positions a sequence may reach (prompt + new tokens).
        profiling_mode: print passes, I/O wait, compute and read throughput per call.
        prefetching: True (default) reads layers ahead while computing;
            False reads each layer synchronously before computing it.
        hf_token: for gated hub models.
        layer_shards_saving_path: where the compressed copy goes (AirLLM's
            split layers are not needed: strata streams the original files).
        delete_original: accepted and ignored: strata never deletes or
            modifies the original files.
        device: "cpu" (strata runs on the CPU; "cuda..." warns and uses the CPU).
        threads, io: compute threads (0 = all cores) and the read method.
        draft_model, draft_tokens, prompt_lookup: plan speculative decoding
            from the start (see generate): a draft model (path or Model) kept
            resident out of max_memory, drafted rows per pass (default 4);
            prompt_lookup=N becomes the default of every call.
        """
        name = os.fspath(pretrained_model_name_or_path)
        if not isinstance(name, str):
            raise TypeError("pretrained_model_name_or_path must be a str or os.PathLike")
        if compression not in (None, "4bit", "8bit"):
            raise ValueError(f"compression must be None, '4bit' or '8bit', not {compression!r}")
        if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int):
            raise TypeError(f"max_seq_len must be an int, not {type(max_seq_len).__name__}")
        if max_seq_len <= 0:
            raise ValueError(f"max_seq_len must be positive, got {max_seq_len}")
        if device is not None:
            if not isinstance(device, str):
                raise TypeError(f"device must be a str such as 'cpu', not {type(device).__name__}")
            if device.split(":")[0] in ("cuda", "mps", "xpu"):
                warnings.warn(f"strata runs on the CPU; device={device!r} is ignored", stacklevel=2)
            elif device != "cpu":
                raise ValueError(f"device must be 'cpu', not {device!r}")
        for flag, v in (("profiling_mode", profiling_mode), ("prefetching", prefetching),
                        ("delete_original", delete_original)):
            if not isinstance(v, bool):
                raise TypeError(f"{flag} must be True or False, not {v!r}")
        path = resolve_model(name, hf_token)
        weights, compressed, converted = path, None, False
        if compression is not None:
            if path.endswith(".gguf"):
                raise ValueError(f"{path}: compression={compression!r} converts a safetensors model; this is "
                                 f"already a GGUF file (open it with compression=None)")
            shards = None if layer_shards_saving_path is None else os.fspath(layer_shards_saving_path)
            compressed, converted = ensure_compressed(path, "q8_0" if compression == "8bit" else "q4_0", shards)
            weights = compressed
        tok_dir = path if os.path.isdir(path) else os.path.dirname(path)
        spec = speculative_args(prompt_lookup, draft_tokens, draft_model)
        planned = engine_needs(spec, 0, None) or 0
        engine = Engine(weights, max_memory=max_memory, threads=threads, io=io,
                        streaming_slots=0 if prefetching else 1, tokenizer_path=tok_dir,
                        max_seq_len=min(max_seq_len, _model_context(weights)), draft_model=spec.draft_model,
                        draft_tokens=planned)
        m = Model(engine, engine.tokenizer, source=path, compression=compression, compressed_path=compressed,
                  converted=converted, max_seq_len=max_seq_len, profiling_mode=profiling_mode)
        m.prompt_lookup = spec.lookup
        return m
