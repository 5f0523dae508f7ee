// A tokenizer from the tokenizer.ggml.* metadata of a GGUF file, built as
// the equivalent tokenizer.json pipeline so that encode/decode are strata's
// one implementation (see docs/TOKENIZER.md):
//
//   Tokenizer tok = Tokenizer::from_gguf("model.gguf");
//
// tokenizer.ggml.model:
// - "llama" (SentencePiece-style, llama.cpp's SPM): tokens with scores and
//   token types. llama.cpp merges the adjacent pair whose concatenation is
//   the vocabulary token of highest score, leftmost first; that is BPE with
//   one merge (a, b) -> a+b per way of splitting each token into two
//   tokens, ranked by the token's score (equal scores share a rank, so the
//   leftmost wins as in llama.cpp). Spaces become U+2581, with one prepended
//   to each text span (tokenizer.ggml.add_space_prefix, default true);
//   characters outside the vocabulary fall back to <0xXX> byte tokens.
// - "gpt2" (byte-level BPE): tokens and merges, text split by the regexes of
//   the pre-tokenizer tokenizer.ggml.pre names (default, llama3/llama-bpe,
//   qwen2, deepseek-llm, deepseek-coder, deepseek-v3, gpt-2 and others; an
//   unknown name is an error, as in llama.cpp).
// - "no_vocab" or no key: the file has no tokenizer (gguf_has_vocab false).
//
// Token types (tokenizer.ggml.token_type): control and unknown tokens are
// special added tokens, user-defined tokens are non-special added tokens
// (matched in the text even with special_as_text, as llama.cpp does), byte
// tokens back the byte fallback. bos/eos/unknown/padding ids,
// add_bos_token/add_eos_token (llama.cpp's defaults when absent) and
// tokenizer.chat_template fill TokenizerConfig; add_bos/add_eos also become
// the post-processor, so encode(text, add_special_tokens=true) adds them.
//
// Every key is type-checked (arrays of the wrong element type or length,
// ids out of range) and errors name the file and the key.
#pragma once

#include <string_view>

#include "tokenizer/tokenizer_json.h"

namespace strata {

struct GgufHeader;
struct TokenizerConfig;

namespace tok {

// True when the header describes a vocabulary (tokenizer.ggml.model present
// and not "no_vocab").
bool gguf_has_vocab(const GgufHeader& h);

// The tokenizer.json document and tables equivalent to the header's
// vocabulary, and its TokenizerConfig. Throws Error (without the file name;
// the caller adds it).
TokenizerJson gguf_tokenizer_json(const GgufHeader& h, TokenizerConfig* config);

}  // namespace tok
}  // namespace strata
