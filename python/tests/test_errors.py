"""Bad arguments raise the exception types Python users expect, with the library's messages."""
import os

import pytest

import strata
from strata import AutoModel


def test_exception_hierarchy():
    assert issubclass(strata.Error, RuntimeError)
    assert issubclass(strata.UsageError, strata.Error) and issubclass(strata.UsageError, ValueError)
    assert issubclass(strata.ModelNotFoundError, strata.Error)
    assert issubclass(strata.ModelNotFoundError, FileNotFoundError)
    assert issubclass(strata.BudgetError, strata.UsageError) and issubclass(strata.BudgetError, ValueError)


def test_from_pretrained_bad_arguments(stories, tmp_path):
    with pytest.raises(TypeError):
        AutoModel.from_pretrained(stories, no_such_argument=1)
    with pytest.raises(TypeError):
        AutoModel()
    with pytest.raises(ValueError, match="compression"):
        AutoModel.from_pretrained(stories, compression="2bit")
    with pytest.raises(strata.UsageError, match="invalid size"):
        AutoModel.from_pretrained(stories, max_memory="lots")
    with pytest.raises(TypeError):
        AutoModel.from_pretrained(stories, max_memory=[1])
    with pytest.raises(strata.BudgetError, match="below the minimum"):
        AutoModel.from_pretrained(stories, max_memory="1KiB").generate([[1]], max_new_tokens=4)
    with pytest.raises(TypeError):
        AutoModel.from_pretrained(stories, max_seq_len="512")
    with pytest.raises(ValueError):
        AutoModel.from_pretrained(stories, device="tpu")
    with pytest.raises(TypeError):
        AutoModel.from_pretrained(stories, device=0)
    with pytest.warns(UserWarning, match="CPU"):
        AutoModel.from_pretrained(stories, device="cuda:0")
    with pytest.raises(FileNotFoundError, match="no such file"):
        AutoModel.from_pretrained(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        AutoModel.from_pretrained(str(tmp_path / "a" / "b" / "c"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(strata.Error, match="config.json"):
        AutoModel.from_pretrained(str(bad))


def test_repo_id_not_in_the_cache_offline(tmp_path, monkeypatch):
    # The hub download path, without a network: offline and an empty cache.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="no-such-org/no-such-model.*HF_HUB_OFFLINE"):
        AutoModel.from_pretrained("no-such-org/no-such-model", hf_token="hf_secret_value")
    try:
        AutoModel.from_pretrained("no-such-org/no-such-model", hf_token="hf_secret_value")
    except FileNotFoundError as e:
        assert "hf_secret_value" not in str(e)


def test_documented_no_ops_are_accepted(stories):
    m = AutoModel.from_pretrained(stories, compression=None, max_memory="4MiB", max_seq_len=256,
                                  profiling_mode=False, prefetching=False, hf_token=None,
                                  layer_shards_saving_path=None, delete_original=True, device="cpu")
    assert m.generate([[1]], max_new_tokens=3) and os.path.exists(os.path.join(stories, "model.safetensors"))


def test_generate_bad_arguments(model):
    with pytest.raises(TypeError):
        model.generate([[1, 2]], max_new_tokens=4, num_beams=4)
    with pytest.raises(TypeError, match="not text"):
        model.generate("Once upon a time")
    with pytest.raises(TypeError):
        model.generate([[1, 2]], max_new_tokens="4")
    with pytest.raises(TypeError):
        model.generate([["a"]])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.generate([[1, 100000]], max_new_tokens=2)
    with pytest.raises(ValueError, match="top_p"):
        model.generate([[1]], do_sample=True, top_p=2.0)
    with pytest.raises(ValueError, match="max_seq_len"):
        model.generate([[1] * 500], max_new_tokens=100)
    with pytest.raises(ValueError, match="attention_mask"):
        model.generate([[1, 2, 3]], attention_mask=[[1, 1]])
    with pytest.raises(ValueError):
        model.generate([[1]], max_new_tokens=-1)
    with pytest.raises(ValueError, match="empty"):
        model.generate([])
    # The model still works after all of these.
    assert len(model.generate([[1]], max_new_tokens=3)[0]) == 4


def test_tokenizer_bad_arguments(model):
    tok = model.tokenizer
    with pytest.raises(TypeError):
        tok(123)
    with pytest.raises(ValueError, match="padding"):
        tok(["a", "b c d"], return_tensors=None, padding="sideways")
    with pytest.raises(ValueError, match="different lengths"):
        tok(["a", "Once upon a time"], return_tensors="np" if _has_numpy() else "pt")
    with pytest.raises(TypeError):
        tok.encode(["a"])


def _has_numpy():
    try:
        import numpy  # noqa: F401
        return True
    except ImportError:
        return False
