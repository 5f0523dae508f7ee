"""Speculative decoding from Python: prompt lookup and draft models give the
ids of plain greedy decoding, in fewer passes when drafts are accepted."""
import os
import subprocess

import pytest

import strata

from conftest import STRATA_BIN



@pytest.fixture(scope="module")
def copy_prompt(model):
    story = model.generate([[1, 403, 407, 261, 378]], max_new_tokens=120, return_dict_in_generate=True)
    return [1, 403, 407, 261, 378] + story.new_tokens[0] + [1, 403, 407, 261, 378]


@pytest.fixture(scope="module")
def q4_draft(tmp_path_factory, stories):
    out = tmp_path_factory.mktemp("draft") / "q4.gguf"
    subprocess.run([STRATA_BIN, "convert", stories, "-o", str(out), "--compression", "4bit"], check=True,
                   capture_output=True)
    return str(out)


def test_prompt_lookup_keeps_the_greedy_ids_in_fewer_passes(model, copy_prompt):
    plain = model.generate([copy_prompt], max_new_tokens=60, return_dict_in_generate=True)
    fast = model.generate([copy_prompt], max_new_tokens=60, prompt_lookup=3, draft_tokens=4,
                          return_dict_in_generate=True)
    assert fast.new_tokens == plain.new_tokens
    assert fast.stats["drafted_tokens"] > 0 and fast.stats["accepted_tokens"] > 0
    assert fast.stats["passes"] < plain.stats["passes"]
    # transformers' names for the same thing
    hf = model.generate([copy_prompt], max_new_tokens=60, prompt_lookup_num_tokens=4, max_matching_ngram_size=3,
                        return_dict_in_generate=True)
    assert hf.new_tokens == plain.new_tokens and hf.stats["passes"] == fast.stats["passes"]


def test_draft_model_in_generate_and_from_pretrained(stories, q4_draft):
    m = strata.AutoModel.from_pretrained(stories, max_memory="32MiB")
    prompt = m.tokenizer.encode("Once upon a time")
    plain = m.generate([prompt], max_new_tokens=40, return_dict_in_generate=True)
    assert m.engine.draft_model is None
    spec = m.generate([prompt], max_new_tokens=40, draft_model=q4_draft, return_dict_in_generate=True)
    assert spec.new_tokens == plain.new_tokens
    assert m.engine.draft_model == os.path.abspath(q4_draft) and m.engine.draft_tokens == 4
    assert spec.stats["accepted_tokens"] > spec.stats["drafted_tokens"] // 2  # its own Q4_0 copy agrees mostly
    assert spec.stats["passes"] < plain.stats["passes"]
    # Opened with the draft: every call drafts, and draft_tokens=0 turns it off.
    d = strata.AutoModel.from_pretrained(stories, max_memory="32MiB", draft_model=q4_draft, draft_tokens=6)
    assert d.engine.draft_tokens == 6
    again = d.generate([prompt], max_new_tokens=40, return_dict_in_generate=True)
    assert again.new_tokens == plain.new_tokens and again.stats["drafted_tokens"] > 0
    off = d.generate([prompt], max_new_tokens=40, draft_tokens=0, return_dict_in_generate=True)
    assert off.new_tokens == plain.new_tokens and off.stats["drafted_tokens"] == 0
    assert "".join(d.stream("Once upon a time", max_new_tokens=40)) == m.tokenizer.decode(plain.new_tokens[0])
    assert [c.output_ids for c in d.batch(["Once upon a time"], max_new_tokens=40)] == plain.new_tokens


def test_sampling_with_a_draft_is_reproducible(model, copy_prompt):
    a = model.generate([copy_prompt], max_new_tokens=30, do_sample=True, seed=7, prompt_lookup=2)
    b = model.generate([copy_prompt], max_new_tokens=30, do_sample=True, seed=7, prompt_lookup=2)
    assert a == b


def test_engine_submit_with_prompt_lookup(stories, copy_prompt):
    e = strata.Engine(stories, draft_tokens=4)
    plain = e.submit(copy_prompt, max_new_tokens=30).wait()
    fast = e.submit(copy_prompt, max_new_tokens=30, prompt_lookup=3).wait()
    assert fast.output_ids == plain.output_ids
    assert fast.stats["drafted_tokens"] > 0
    with pytest.raises(strata.UsageError, match="draft_tokens=8 exceeds"):
        e.submit(copy_prompt, max_new_tokens=3, prompt_lookup=3, draft_tokens=8)
    e.shutdown()


@pytest.mark.parametrize("kw, err", [
    (dict(prompt_lookup=-1), ValueError), (dict(prompt_lookup=17), ValueError), (dict(prompt_lookup="3"), TypeError),
    (dict(draft_tokens=40), ValueError), (dict(draft_model=3), TypeError),
    (dict(draft_model="/no/such/model"), FileNotFoundError),
    (dict(draft_model="/a", assistant_model="/b"), ValueError),
    (dict(max_matching_ngram_size=2), ValueError),
    (dict(prompt_lookup_num_tokens=3, draft_tokens=5), ValueError),
])
def test_bad_speculative_arguments(model, kw, err):
    with pytest.raises(err):
        model.generate([[1, 403]], max_new_tokens=2, **kw)
