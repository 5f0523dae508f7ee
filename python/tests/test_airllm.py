"""AirLLM's README usage, argument for argument, against the strata CLI."""
import pytest

np = pytest.importorskip("numpy")


def test_airllm_readme_example_prints_what_strata_run_generates(stories, cli, capsys):
    # AirLLM's README example verbatim, except the model path and return_tensors="np".
    from strata import AutoModel

    MAX_LENGTH = 128
    model = AutoModel.from_pretrained(stories)
    input_text = [
        'What is the capital of United States?',
    ]
    input_tokens = model.tokenizer(input_text,
                                   return_tensors="np",
                                   return_attention_mask=False,
                                   truncation=True,
                                   max_length=MAX_LENGTH,
                                   padding=False)
    generation_output = model.generate(
        input_tokens['input_ids'],
        max_new_tokens=20,
        use_cache=True,
        return_dict_in_generate=True)
    output = model.tokenizer.decode(generation_output.sequences[0])
    print(output)

    printed = capsys.readouterr().out
    ref = cli("run", stories, "What is the capital of United States?", "-n", 20)
    assert isinstance(input_tokens["input_ids"], np.ndarray)
    assert "attention_mask" not in input_tokens
    assert input_tokens["input_ids"].tolist() == [ref["prompt_ids"]]
    assert generation_output.sequences.tolist() == [ref["prompt_ids"] + ref["output_ids"]]
    assert printed == model.tokenizer.decode(ref["prompt_ids"] + ref["output_ids"]) + "\n"
    assert printed.rstrip("\n").endswith(ref["text"]) and len(ref["text"]) > 10


def test_greedy_reference_cases_at_minimum_budget(stories, reference, cli):
    from strata import AutoModel, Engine

    probe = Engine(stories)
    for case in reference["greedy"]:
        prompt, n = case["prompt_ids"], case["new_tokens"]
        budget = probe.plan(len(prompt) + n)["min_memory_bytes"]
        # max_seq_len: the KV cache is planned for this request's positions, as `strata run` plans it.
        model = AutoModel.from_pretrained(stories, max_memory=budget, max_seq_len=len(prompt) + n)
        out = model.generate(np.array([prompt]), max_new_tokens=n, return_dict_in_generate=True)
        ids = out.new_tokens[0]
        ref = cli("run", stories, "--prompt-ids", ",".join(map(str, prompt)), "-n", n, "--max-memory", f"{budget}B")
        assert ids == ref["output_ids"], case
        assert ids == case["output_ids"][: len(ids)]
        assert out.sequences.tolist() == [prompt + ids]
        assert model.info()["plan"]["budget_bytes"] == budget


def test_batch_of_eight_equals_single_calls_with_fewer_passes(model):
    tok = model.tokenizer
    texts = ["Once upon a time", "The cat", "Lily and Ben went to the park", "One day", "Tom had a big red ball",
             "The sun", "She was happy because", "A little bird"]
    enc = tok(texts, padding=True, return_tensors="np")
    assert enc["attention_mask"].min() == 0  # the prompts differ in length: some rows are padded
    batch = model.generate(enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=24,
                           return_dict_in_generate=True)
    single_passes = 0
    for i, t in enumerate(texts):
        one = model.generate(np.array([tok.encode(t)]), max_new_tokens=24, return_dict_in_generate=True)
        single_passes += one.stats["passes"]
        assert one.new_tokens[0] == batch.new_tokens[i], t
        # The batch row is the padded input row followed by the same new ids.
        row = batch.sequences[i].tolist()
        width = enc["input_ids"].shape[1]
        assert row[:width] == enc["input_ids"][i].tolist()
        assert row[width:width + len(one.new_tokens[0])] == one.new_tokens[0]
    assert batch.stats["sequences"] == 8
    assert batch.stats["passes"] < single_passes / 4, (batch.stats, single_passes)


def test_sampling_arguments_are_used(model):
    ids = np.array([[1, 403, 407]])
    a = model.generate(ids, max_new_tokens=16, do_sample=True, temperature=1.5, top_k=40, top_p=0.95, seed=3)
    b = model.generate(ids, max_new_tokens=16, do_sample=True, temperature=1.5, top_k=40, top_p=0.95, seed=3)
    c = model.generate(ids, max_new_tokens=16, do_sample=True, temperature=1.5, top_k=40, top_p=0.95, seed=4)
    greedy = model.generate(ids, max_new_tokens=16)
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist() or a.tolist() != greedy.tolist()
    assert model.generate(ids, max_new_tokens=16, do_sample=False, temperature=5.0).tolist() == greedy.tolist()
    # min_p = 1 keeps only the most likely token: greedy.
    assert model.generate(ids, max_new_tokens=16, do_sample=True, min_p=1.0, seed=9).tolist() == greedy.tolist()


def test_eos_token_id_ends_generation(model):
    ids = [1, 403, 407]
    free = model.generate([ids], max_new_tokens=20, return_dict_in_generate=True)
    stop = free.new_tokens[0][5]
    out = model.generate([ids], max_new_tokens=20, eos_token_id=stop, return_dict_in_generate=True)
    assert out.new_tokens[0] == free.new_tokens[0][: free.new_tokens[0].index(stop) + 1]
    assert out.finish_reasons == ["stop"]
    # A list input gives ragged lists back, prompt included.
    assert out.sequences == [ids + out.new_tokens[0]]


def test_max_length_and_default_length(model):
    out = model.generate(np.array([[1, 403]]), max_length=10)
    assert out.shape == (1, 10)
    assert model.generate(np.array([[1, 403]])).shape == (1, 22)  # 20 new tokens by default


def test_torch_tensors_when_torch_is_installed(model):
    torch = pytest.importorskip("torch")
    ids = torch.tensor([[1, 403, 407]])
    out = model.generate(ids, max_new_tokens=8)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.long
    assert out.tolist() == model.generate(np.array([[1, 403, 407]]), max_new_tokens=8).tolist()
    enc = model.tokenizer(["Once upon a time"], return_tensors="pt")
    assert isinstance(enc["input_ids"], torch.Tensor)
