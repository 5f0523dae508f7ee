// A Hugging Face tokenizer.json tokenizer: text -> ids -> text, matching the
// reference `tokenizers` library id for id (see docs/TOKENIZER.md).
//
//   auto tok = strata::Tokenizer::from_file("models/llama3");   // dir or tokenizer.json
//   std::vector<int32_t> ids = tok.encode("Hello world", /*add_special_tokens=*/true);
//   std::string text = tok.decode(ids);
//   // Untrusted input: "<|eot_id|>" in the text stays text, never a control token.
//   auto safe = tok.encode(user_text, true, /*special_as_text=*/true);
//
// Input that is not valid UTF-8 is accepted: each ill-formed sequence is
// replaced by U+FFFD first, as Python's bytes.decode(errors="replace") does.
// A Tokenizer is immutable after loading; encode/decode are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct GgufHeader;
namespace tok {
struct TokenizerJson;
}

// What tokenizer_config.json (next to tokenizer.json, optional) says. The
// ids encode() produces follow tokenizer.json alone, like the reference
// library; these are for callers that build prompts (chat templates, BOS).
struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token;
  std::optional<std::string> chat_template;  // the default template, if any
};

class Tokenizer {
 public:
  // `path` is a tokenizer.json or a directory holding one. Throws
  // strata::Error naming the file for I/O errors, malformed JSON, missing
  // fields and unsupported components.
  static Tokenizer from_file(const std::filesystem::path& path);
  // From the text of a tokenizer.json (and optionally of a
  // tokenizer_config.json); `name` is used in error messages.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view name = "tokenizer.json",
                             std::string_view config_json = {});

  // From the tokenizer.ggml.* metadata of a GGUF file (tokenizer/gguf_vocab.h
  // says how); the config comes from the same metadata. Throws Error naming
  // the file when it has no vocabulary or an unsupported one.
  static Tokenizer from_gguf(const std::filesystem::path& gguf_file);
  static Tokenizer from_gguf(const GgufHeader& header, std::string_view name);
  // nullopt when the file has no vocabulary (no tokenizer.ggml.model, or "no_vocab").
  static std::optional<Tokenizer> from_gguf_if_any(const std::filesystem::path& gguf_file);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // `add_special_tokens` applies the post-processor (e.g. Llama 2's BOS).
  // `special_as_text` stops special added tokens from being recognized in
  // the text (transformers' split_special_tokens=True).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens, bool special_as_text = false) const;
  // Special tokens are recognized in `text` except where they overlap one
  // of `plain_spans` (byte ranges [first, second), sorted): there their
  // text is tokenized as ordinary text. A chat template's rendered output
  // uses this so message contents cannot become control tokens.
  std::vector<int32_t> encode_with_plain_spans(std::string_view text,
                                               std::span<const std::pair<size_t, size_t>> plain_spans,
                                               bool add_special_tokens) const;
  // Unknown ids are skipped, as in the reference. `skip_special` drops
  // special added tokens.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // One past the largest id, model and added tokens included.
  size_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's string as stored in the vocabulary ("" for an unknown id).
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;

  const TokenizerConfig& config() const;
  // Ids of config().bos_token / eos_token when those are in the vocabulary.
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  static Tokenizer from_document(tok::TokenizerJson&& file, std::string_view name, TokenizerConfig config);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata
