// The standard tokenizer.ggml.* metadata of a GGUF file from a Hugging Face
// tokenizer.json (BPE models): "gpt2" for byte-level BPE, "llama" for
// sentencepiece-style BPE, with tokens, token types, merges and scores, and
// for "gpt2" the llama.cpp name of the pre-tokenizer (tokenizer.ggml.pre)
// when it is one llama.cpp knows.
#pragma once

#include <cstdint>
#include <filesystem>

namespace strata {

class GgufWriter;

// Adds the keys to `w`; returns false (and adds nothing) when the tokenizer
// is not a BPE model strata can describe. Throws Error on an unreadable file.
bool add_gguf_tokenizer(GgufWriter& w, const std::filesystem::path& tokenizer_json, int64_t vocab_size);

}  // namespace strata
