// The standard tokenizer.ggml.* metadata of a GGUF file from a Hugging Face
// tokenizer.json (BPE models): "gpt2" for byte-level BPE, "llama" for
// sentencepiece-style BPE, with tokens, token types, merges and scores, and
// for "gpt2" the llama.cpp name of the pre-tokenizer (tokenizer.ggml.pre)
// when it is one llama.cpp knows.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace strata {

class GgufWriter;

// Adds the keys to `w`; returns false (and adds nothing) when the tokenizer
// is not a BPE model strata can describe. Throws Error on an unreadable file.
// `eos_ids` (config.json / generation_config.json's eos_token_id list, the
// first being tokenizer.ggml.eos_token_id) adds the others as
// tokenizer.ggml.eot_token_id / eom_token_id ("<|eom_id|>"), so that
// llama.cpp's end-of-generation set holds every id the model ends with.
bool add_gguf_tokenizer(GgufWriter& w, const std::filesystem::path& tokenizer_json, int64_t vocab_size,
                        const std::vector<int32_t>* eos_ids = nullptr);

}  // namespace strata
