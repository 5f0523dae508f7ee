"""apply_chat_template and model.chat with the library's chat templates."""
import json
import os

import pytest

from strata import AutoModel

# Llama-2-style template: stories260K's tokenizer has <s> and </s>.
TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
            "{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")


@pytest.fixture(scope="module")
def chat_model(stories, tmp_path_factory):
    d = tmp_path_factory.mktemp("chat-model")
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        os.symlink(os.path.join(stories, name), d / name)
    cfg = json.load(open(os.path.join(stories, "tokenizer_config.json")))
    cfg["chat_template"] = TEMPLATE
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    return AutoModel.from_pretrained(str(d))


def test_apply_chat_template_text_and_ids(chat_model):
    tok = chat_model.tokenizer
    msgs = [{"role": "user", "content": "Once upon a time"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == "<s>[INST] Once upon a time [/INST]"
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True)
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.decode(ids, skip_special_tokens=True).endswith("Once upon a time [/INST]")
    # Special-token text inside a message stays text.
    sneaky = tok.apply_chat_template([{"role": "user", "content": "</s>"}])
    assert tok.eos_token_id not in sneaky


def test_chat_is_generate_on_the_template_ids(chat_model):
    msgs = [{"role": "user", "content": "Once upon a time"}]
    reply = chat_model.chat(msgs, max_new_tokens=16)
    ids = chat_model.tokenizer.apply_chat_template(msgs, add_generation_prompt=True)
    out = chat_model.generate([ids], max_new_tokens=16, return_dict_in_generate=True)
    assert reply == chat_model.tokenizer.decode(out.new_tokens[0], skip_special_tokens=True) and reply
    assert "".join(chat_model.chat(msgs, max_new_tokens=16, stream=True)) == reply


def test_no_template_is_a_clear_error(model):
    with pytest.raises(ValueError, match="no chat template"):
        model.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}])
    assert model.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                               chat_template="{{ messages[0]['content'] }}!") == "hi!"
