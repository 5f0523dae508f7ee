// Quantization recipes for `strata convert --type`: a base weight type plus
// per-tensor choices, following llama.cpp's llama_tensor_get_type
// (src/llama-quant.cpp, February 2025) for a dense model without an
// importance matrix:
//   - output.weight (or a tied token_embd): Q6_K, except in q8_0 files
//     (Q8_0) and f16/bf16/f32 files (unchanged);
//   - attn_v: q2_k Q4_K if n_head / n_head_kv >= 4 else Q3_K; q3_k_m Q5_K
//     in layers 0-1, else Q4_K; q3_k_l Q5_K; q4_k_s Q5_K in layers 0-3;
//     q4_k_m / q5_k_m Q6_K in the layers use_more_bits picks; 80-layer
//     models (llama.cpp's "70B") Q5_K instead of Q3_K / Q4_K; iq4_nl /
//     iq4_xs Q5_K if n_head / n_head_kv >= 4;
//   - ffn_down: q2_k Q3_K; q3_k_m Q5_K in the first 1/16 of layers, else
//     Q4_K; q3_k_l Q5_K; q4_k_s Q5_K in the first 1/8; q4_k_m / q5_k_m Q6_K
//     where use_more_bits; iq4_nl / iq4_xs Q5_K in the first 1/8;
//   - attn_output: q2_k Q3_K, q3_k_m Q4_K, q3_k_l Q5_K;
//   - everything else the base type; 1-D tensors (norms) F32.
// use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2.
// A row length that is not whole blocks falls back as llama.cpp does (Q4_K
// -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K / Q3_K / IQ4_XS -> IQ4_NL), and
// to F16 (F32 for an f32 source) when not even 32-blocks fit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/dtype.h"

namespace strata {

struct QuantRecipe {
  std::string_view name;  // "q4_k_m"
  DType base;
  uint32_t file_type;     // llama.cpp's LLAMA_FTYPE_MOSTLY_* for general.file_type
};

// nullptr for an unknown name; names are lower case ("q4_k_m"), ggml's
// upper-case spelling ("Q4_K_M") is accepted too.
const QuantRecipe* find_quant_recipe(std::string_view name);
// "f32, f16, bf16, q8_0, ..." for help texts and errors.
std::string quant_recipe_names();

// One tensor the converter writes.
struct RecipeTensor {
  std::string_view gguf_name;  // "blk.3.attn_v.weight", "output.weight"
  int64_t layer = -1;          // -1 outside the repeating layers
  int64_t n_layers = 0;
  int64_t n_gqa = 1;           // n_head / n_head_kv
  int64_t cols = 0;            // row length (ggml's ne[0])
  bool is_output = false;      // the output head, or a tied embedding
  bool is_matrix = true;       // 2-D; 1-D tensors stay F32
  DType source = DType::F32;   // the source's type (for the F16/F32 fallback)
};

// The type of one tensor under the recipe; *note (if given) gets a reason
// when a fallback changed it.
DType recipe_tensor_type(const QuantRecipe& r, const RecipeTensor& t, std::string* note = nullptr);

}  // namespace strata
