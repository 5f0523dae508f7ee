"""compression="8bit"/"4bit": converted once into the cache, reused afterwards."""
import os

import pytest

from strata import AutoModel


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_8bit_converts_once_and_reuses(stories, cache, reference, capfd):
    first = AutoModel.from_pretrained(stories, compression="8bit")
    err = capfd.readouterr().err
    assert first.converted
    path = first.compressed_path
    assert path.startswith(str(cache / "converted")) and path.endswith("-q8_0.gguf") and os.path.isfile(path)
    assert os.path.isfile(os.path.join(os.path.dirname(path), "tokenizer.json"))
    assert path in err and "layer 5/5" in err  # says where, with progress
    assert first.info()["dtype"] == "Q8_0" and first.info()["compressed_path"] == path
    stamp = os.stat(path).st_mtime_ns

    second = AutoModel.from_pretrained(stories, compression="8bit")
    assert not second.converted and second.compressed_path == path
    assert os.stat(path).st_mtime_ns == stamp
    assert "compressing" not in capfd.readouterr().err
    assert os.listdir(cache / "converted") == [os.path.basename(os.path.dirname(path))]

    # The 8-bit model keeps the tokenizer of the original and still tells the story.
    case = reference["greedy"][0]
    out = second.generate([case["prompt_ids"]], max_new_tokens=16, return_dict_in_generate=True)
    assert second.tokenizer is not None
    same = sum(a == b for a, b in zip(out.new_tokens[0], case["output_ids"]))
    assert same >= 8, (out.new_tokens[0], case["output_ids"])


def test_4bit_into_layer_shards_saving_path(stories, tmp_path):
    m = AutoModel.from_pretrained(stories, compression="4bit", layer_shards_saving_path=tmp_path / "shards")
    assert m.converted and m.compressed_path.startswith(str(tmp_path / "shards"))
    assert m.compressed_path.endswith("-q4_0.gguf")
    assert len(m.generate([[1]], max_new_tokens=4)[0]) == 5
    with pytest.raises(ValueError, match="already a GGUF"):
        AutoModel.from_pretrained(m.compressed_path, compression="8bit")
    # The GGUF opens directly too.
    g = AutoModel.from_pretrained(m.compressed_path)
    assert g.info()["dtype"] == "Q4_0"
