// The model a GGUF file describes, through the architecture table: its
// ModelConfig from the standard metadata (general.architecture and the
// {arch}.* keys llama.cpp writes) and its tensors under their Hugging Face
// names, so everything downstream of open_model_layout is the same for GGUF
// and safetensors.
//
//   GgufModel g = read_gguf_model("model.gguf");
//   g.config.hidden_size;
//   g.index.find("model.layers.0.self_attn.q_proj.weight");   // [out, in]
//
// Architectures: `llama` (also Mistral files; Mixtral when llama.expert_count
// is set), `qwen2`, `qwen3`, `qwen2moe`
// and `qwen3moe` (expert_count, expert_used_count, expert_feed_forward_length,
// expert_shared_feed_forward_length for qwen2moe's shared expert; the stacked
// blk.N.ffn_{gate,up,down}_exps tensors are split into one view per expert,
// a byte range of the stack). Keys:
// {arch}.block_count, embedding_length, feed_forward_length,
// attention.head_count(_kv), attention.key_length, context_length,
// attention.layer_norm_rms_epsilon, rope.freq_base, rope.scaling.type /
// factor (linear), rope_freqs.weight (Llama 3 scaling, as llama.cpp writes
// it; its parameters are recovered and checked); the vocabulary size is the tokenizer's token count
// (tokenizer.ggml.tokens), else {arch}.vocab_size, else token_embd's rows.
// q/k of `llama` files are stored permuted for interleaved RoPE
// (ModelConfig::rope_interleaved); qwen files are not. A missing output.weight
// means tied embeddings.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "formats/gguf.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"

namespace strata {

// Throws Error starting with `display_name` for unsupported architectures
// and missing or out-of-range keys. `rope_freqs` is the data of a
// rope_freqs.weight tensor (Llama 3 RoPE scaling as llama.cpp writes it),
// required when the file has one.
ModelConfig gguf_model_config(const GgufHeader& h, const std::string& display_name,
                              const std::vector<float>* rope_freqs = nullptr);

// The header's tensors renamed to Hugging Face names through `arch`'s table
// (tensors outside the table keep their GGUF name). Throws Error when two
// names map to one.
TensorIndex gguf_hf_index(const GgufHeader& h, const ArchFamily& arch, const std::filesystem::path& file);

struct GgufModel {
  GgufHeader header;
  ModelConfig config;
  const ArchFamily* arch = nullptr;
  TensorIndex index;  // Hugging Face names
};

GgufModel read_gguf_model(const std::filesystem::path& path);

}  // namespace strata
