"""A tokenizer with the calls people use from transformers' tokenizers."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from . import _strata
from ._arrays import from_rows, kind_of, to_rows

TextInput = Union[str, Sequence[str]]


class BatchEncoding(dict):
    """What ``tokenizer(...)`` returns: a dict (``["input_ids"]``) that also
    allows attribute access (``.input_ids``), as transformers' BatchEncoding."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any) -> "BatchEncoding":
        """Returns self (strata runs on the CPU; kept for ``.to(model.device)`` code)."""
        return self


class Tokenizer:
    """The model's tokenizer (its ``tokenizer.json``), shaped like a transformers tokenizer.

    Common calls::

        enc = tok(["Hello", "Once upon a time"], padding=True, return_tensors="np")
        enc["input_ids"], enc["attention_mask"]
        tok.encode("Hello")            # [1, ...] with BOS when the model adds one
        tok.decode(ids, skip_special_tokens=True)
        tok.batch_decode(out.sequences)
        tok.eos_token_id, tok.bos_token_id, tok.pad_token_id

    Ids equal the Hugging Face ``tokenizers`` library's for the same
    tokenizer.json, with BOS added when tokenizer_config.json's
    ``add_bos_token`` asks for it (as transformers does).
    """

    padding_side: str = "left"      # decoder-only models generate after left padding
    truncation_side: str = "right"

    def __init__(self, native: "_strata.Tokenizer", path: str, model_max_length: Optional[int] = None):
        self._tok = native
        self.name_or_path = path
        cfg = native.config
        self._bos_token = cfg.get("bos_token")
        self._eos_token = cfg.get("eos_token")
        self._unk_token = cfg.get("unk_token")
        self._pad_token = cfg.get("pad_token")
        self.chat_template: Optional[str] = cfg.get("chat_template")
        self._template = None  # the model's ChatTemplate, loaded on first use
        self.model_max_length = model_max_length or _config_max_length(path) or 1_000_000_000

    @classmethod
    def from_pretrained(cls, path: Union[str, os.PathLike]) -> "Tokenizer":
        """Loads MODEL_DIR/tokenizer.json (or a tokenizer.json file)."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise _strata.ModelNotFoundError(f"{path}: no such file or directory")
        return cls(_strata.Tokenizer.from_file(path), path)

    # -- special tokens ---------------------------------------------------
    def _id(self, token: Optional[str]) -> Optional[int]:
        return None if token is None else self._tok.token_to_id(token)

    @property
    def bos_token(self) -> Optional[str]:
        return self._bos_token

    @property
    def eos_token(self) -> Optional[str]:
        return self._eos_token

    @property
    def unk_token(self) -> Optional[str]:
        return self._unk_token

    @property
    def pad_token(self) -> Optional[str]:
        return self._pad_token

    @pad_token.setter
    def pad_token(self, token: Optional[str]) -> None:
        if token is not None and self._tok.token_to_id(token) is None:
            raise ValueError(f"pad_token {token!r} is not in the vocabulary")
        self._pad_token = token

    @property
    def bos_token_id(self) -> Optional[int]:
        return self._id(self._bos_token)

    @property
    def eos_token_id(self) -> Optional[int]:
        return self._id(self._eos_token)

    @property
    def unk_token_id(self) -> Optional[int]:
        return self._id(self._unk_token)

    @property
    def pad_token_id(self) -> Optional[int]:
        """The pad token's id; None when the model has no pad token (like Llama's)."""
        return self._id(self._pad_token)

    @property
    def all_special_ids(self) -> List[int]:
        return [i for i in range(self.vocab_size) if self._tok.is_special(i)]

    @property
    def vocab_size(self) -> int:
        return self._tok.vocab_size

    def __len__(self) -> int:
        return self._tok.vocab_size

    # -- text -> ids ------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = True, truncation: Optional[bool] = None,
               max_length: Optional[int] = None, return_tensors: Optional[str] = None) -> Any:
        """Ids of one text (a list, or a [1, n] tensor with return_tensors)."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, not {type(text).__name__}")
        ids = self._truncate([self._tok.encode(text, add_special_tokens)], truncation, max_length)[0]
        return ids if return_tensors is None else from_rows([ids], return_tensors)

    def __call__(self, text: TextInput, add_special_tokens: bool = True,
                 padding: Union[bool, str] = False, truncation: Union[bool, str, None] = None,
                 max_length: Optional[int] = None, return_tensors: Optional[str] = None,
                 return_attention_mask: Optional[bool] = None, return_token_type_ids: Optional[bool] = None,
                 pad_to_multiple_of: Optional[int] = None, padding_side: Optional[str] = None,
                 return_length: bool = False) -> BatchEncoding:
        """Encodes a text or a list of texts.

        padding: False / "do_not_pad", True / "longest", or "max_length".
        truncation: True / "longest_first" / "only_first" cuts to max_length
        (or model_max_length). return_tensors: None (lists), "np" or "pt".
        """
        single = isinstance(text, str)
        if not single:
            if not isinstance(text, (list, tuple)) or not all(isinstance(t, str) for t in text):
                raise TypeError("text must be a str or a list of str")
        texts = [text] if single else list(text)
        rows = [list(r) for r in self._tok.encode_batch(texts, add_special_tokens)]
        rows = self._truncate(rows, truncation, max_length)
        masks = [[1] * len(r) for r in rows]
        rows, masks = self._pad(rows, masks, padding, max_length, pad_to_multiple_of, padding_side)
        if return_tensors is not None and len({len(r) for r in rows}) > 1:
            raise ValueError("Unable to create tensors of sequences with different lengths: use padding=True "
                             "(or return_tensors=None for lists)")
        enc = BatchEncoding()
        if return_tensors is None and single:
            enc["input_ids"] = rows[0]
            if return_attention_mask is not False:
                enc["attention_mask"] = masks[0]
        else:
            enc["input_ids"] = from_rows(rows, return_tensors)
            if return_attention_mask is not False:
                enc["attention_mask"] = from_rows(masks, return_tensors)
        if return_token_type_ids:
            zeros = [[0] * len(r) for r in rows]
            enc["token_type_ids"] = zeros[0] if (return_tensors is None and single) else from_rows(zeros, return_tensors)
        if return_length:
            enc["length"] = [sum(m) for m in masks] if not single else sum(masks[0])
        return enc

    def _truncate(self, rows: List[List[int]], truncation: Union[bool, str, None],
                  max_length: Optional[int]) -> List[List[int]]:
        if truncation in (None, False, "do_not_truncate"):
            return rows
        if truncation not in (True, "longest_first", "only_first"):
            raise ValueError(f"truncation must be True, False, 'longest_first' or 'only_first', not {truncation!r}")
        limit = max_length if max_length is not None else self.model_max_length
        if limit <= 0:
            raise ValueError("max_length must be positive")
        if self.truncation_side == "left":
            return [r[-limit:] if len(r) > limit else r for r in rows]
        return [r[:limit] for r in rows]

    def _pad(self, rows, masks, padding, max_length, multiple, side):
        if padding in (False, None, "do_not_pad"):
            return rows, masks
        if padding in (True, "longest"):
            width = max(len(r) for r in rows)
        elif padding == "max_length":
            width = max_length if max_length is not None else self.model_max_length
        else:
            raise ValueError(f"padding must be True, False, 'longest' or 'max_length', not {padding!r}")
        if multiple:
            width = -(-width // multiple) * multiple
        pad = self._pad_id_for_padding()
        side = side or self.padding_side
        out_r, out_m = [], []
        for r, m in zip(rows, masks):
            n = max(0, width - len(r))
            if side == "left":
                out_r.append([pad] * n + r)
                out_m.append([0] * n + m)
            else:
                out_r.append(r + [pad] * n)
                out_m.append(m + [0] * n)
        return out_r, out_m

    def _pad_id_for_padding(self) -> int:
        # transformers refuses to pad without a pad token; Llama-style models
        # have none, and the attention mask makes the id irrelevant, so the
        # EOS id (what transformers' generate pads with) stands in.
        for i in (self.pad_token_id, self.eos_token_id, self.unk_token_id):
            if i is not None:
                return i
        return 0

    # -- ids -> text ------------------------------------------------------
    def decode(self, token_ids: Any, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: Optional[bool] = None) -> str:
        """Text of one sequence of ids (a list, 1-D array or tensor, or one int)."""
        if isinstance(token_ids, int) or (kind_of(token_ids) != "list" and getattr(token_ids, "ndim", 1) == 0):
            token_ids = [int(token_ids)]
        rows = to_rows(token_ids, "token_ids")
        if len(rows) != 1:
            raise TypeError("decode takes one sequence of ids; use batch_decode for several")
        return self._tok.decode(rows[0], skip_special_tokens)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: Optional[bool] = None) -> List[str]:
        """Texts of several sequences (a list of lists, a 2-D array or tensor)."""
        return [self._tok.decode(r, skip_special_tokens) for r in to_rows(sequences, "sequences")]

    def convert_ids_to_tokens(self, ids: Union[int, Iterable[int]]) -> Union[str, List[str]]:
        if isinstance(ids, int):
            return self._tok.id_to_token(ids)
        return [self._tok.id_to_token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, tokens: Union[str, Iterable[str]]) -> Union[Optional[int], List[Optional[int]]]:
        if isinstance(tokens, str):
            return self._tok.token_to_id(tokens)
        return [self._tok.token_to_id(t) for t in tokens]

    def get_vocab(self) -> Dict[str, int]:
        return {self._tok.id_to_token(i): i for i in range(self.vocab_size) if self._tok.id_to_token(i)}

    # -- chat ---------------------------------------------------------------
    def _chat_template(self, chat_template: Optional[str] = None) -> "_strata.ChatTemplate":
        if chat_template is not None:
            return _strata.ChatTemplate.from_string(chat_template)
        if self._template is None:
            if not _strata.ChatTemplate.model_has_template(self.name_or_path):
                raise _strata.UsageError(f"{self.name_or_path}: the model has no chat template (chat_template.jinja, "
                                         f"chat_template.json or tokenizer_config.json); pass chat_template=...")
            self._template = _strata.ChatTemplate.from_model(self.name_or_path)
        return self._template

    def apply_chat_template(self, conversation: Sequence[Dict[str, Any]], tokenize: bool = True,
                            add_generation_prompt: bool = False, return_tensors: Optional[str] = None,
                            chat_template: Optional[str] = None, return_dict: bool = False,
                            tools: Optional[Sequence[Dict[str, Any]]] = None, **template_kwargs: Any) -> Any:
        """Renders a conversation ([{"role": ..., "content": ...}, ...]) with the
        model's chat template as transformers does: the text with
        tokenize=False, else its ids (the template writes BOS itself; special-token
        text inside message contents stays text). Extra keyword arguments
        (enable_thinking=..., ...) are template variables."""
        tmpl = self._chat_template(chat_template)
        messages = json.dumps(_messages(conversation), ensure_ascii=False)
        tools_json = "" if tools is None else json.dumps(list(tools), ensure_ascii=False)
        variables = json.dumps(template_kwargs, ensure_ascii=False) if template_kwargs else ""
        if not tokenize:
            return tmpl.render(messages, add_generation_prompt, tools_json, variables)
        ids = list(tmpl.encode(self._tok, messages, add_generation_prompt, tools_json, variables))
        if return_dict:
            return BatchEncoding(input_ids=ids if return_tensors is None else from_rows([ids], return_tensors),
                                 attention_mask=[1] * len(ids) if return_tensors is None
                                 else from_rows([[1] * len(ids)], return_tensors))
        return ids if return_tensors is None else from_rows([ids], return_tensors)

    def __repr__(self) -> str:
        return (f"strata.Tokenizer(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"bos_token={self.bos_token!r}, eos_token={self.eos_token!r}, pad_token={self.pad_token!r})")


def _messages(conversation: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    if isinstance(conversation, dict) or not isinstance(conversation, (list, tuple)):
        raise TypeError("conversation must be a list of {'role': ..., 'content': ...} dicts")
    for m in conversation:
        if not isinstance(m, dict) or "role" not in m:
            raise TypeError("each message must be a dict with 'role' and 'content'")
    return [dict(m) for m in conversation]


def _config_max_length(path: str) -> Optional[int]:
    d = path if os.path.isdir(path) else os.path.dirname(path)
    try:
        with open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8") as f:
            v = json.load(f).get("model_max_length")
        return int(v) if v is not None and v < 1e12 else None
    except (OSError, ValueError, TypeError):
        return None
