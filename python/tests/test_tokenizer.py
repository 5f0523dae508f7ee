"""model.tokenizer behaves like a transformers tokenizer for the common calls."""
import json
import os

import pytest


def test_ids_match_hugging_face_and_cli(model, stories, cli):
    tok = model.tokenizer
    text = "Once upon a time"
    ref = cli("tokenize", stories, text)
    assert tok.encode(text) == ref == tok(text)["input_ids"]
    assert tok.encode(text, add_special_tokens=False) == ref[1:]
    assert tok.bos_token_id == 1 and tok.eos_token_id == 2 and tok.pad_token_id is None
    assert tok.bos_token == "<s>" and tok.eos_token == "</s>" and len(tok) == tok.vocab_size == 512
    case = next(c for c in json.load(open(os.path.join(stories, "reference.json")))["greedy"] if "prompt_text" in c)
    assert tok.encode(case["prompt_text"]) == case["prompt_ids"]


def test_call_padding_truncation_and_masks(model):
    tok = model.tokenizer
    enc = tok(["Once upon a time", "Hi"], padding=True)
    a, b = enc.input_ids
    assert len(a) == len(b) and enc.attention_mask[1][0] == 0 and enc.attention_mask[0] == [1] * len(a)
    assert b[-len(tok.encode("Hi")):] == tok.encode("Hi")  # left padding, as for generation
    tok.padding_side = "right"
    try:
        r = tok(["Once upon a time", "Hi"], padding="max_length", max_length=10)
        assert [len(x) for x in r["input_ids"]] == [10, 10] and r["attention_mask"][1][-1] == 0
    finally:
        tok.padding_side = "left"
    t = tok("Once upon a time there was a girl", truncation=True, max_length=3)
    assert t["input_ids"] == tok.encode("Once upon a time there was a girl")[:3]
    single = tok("Hi", return_attention_mask=False)
    assert list(single.keys()) == ["input_ids"] and single.input_ids == tok.encode("Hi")


def test_decode_and_batch_decode(model):
    tok = model.tokenizer
    ids = tok.encode("Once upon a time")
    assert tok.decode(ids, skip_special_tokens=True) == "Once upon a time"
    assert tok.decode(ids).startswith("<s>")
    assert tok.batch_decode([ids, ids[:2]], skip_special_tokens=True) == ["Once upon a time", "Once"]
    assert tok.convert_ids_to_tokens(1) == "<s>" and tok.convert_tokens_to_ids("</s>") == 2
    np = pytest.importorskip("numpy")
    arr = tok(["Once upon a time"], return_tensors="np")["input_ids"]
    assert arr.dtype == np.int64 and arr.shape == (1, len(ids))
    assert tok.decode(arr[0], skip_special_tokens=True) == "Once upon a time"
    assert tok.batch_decode(arr) == [tok.decode(ids)]
    assert tok.decode(np.int64(403)) == tok.decode([403])


def test_numpy_missing_gives_a_clear_import_error(model, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_numpy(name, *a, **k):
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError("No module named 'numpy'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_numpy)
    with pytest.raises(ImportError, match="needs numpy.*return_tensors=None"):
        model.tokenizer(["Hi"], return_tensors="np")
    # Lists work without numpy, and score falls back to lists.
    assert model.generate([[1, 403]], max_new_tokens=2)[0][:2] == [1, 403]
    assert isinstance(model.score([1, 403, 407]).logprobs, list)
