#include "convert/quant_recipe.h"

#include <fmt/format.h>

namespace strata {
namespace {

// LLAMA_FTYPE values from llama.h.
constexpr QuantRecipe kRecipes[] = {
    {"f32", DType::F32, 0},     {"f16", DType::F16, 1},     {"bf16", DType::BF16, 32},  {"q8_0", DType::Q8_0, 7},
    {"q4_0", DType::Q4_0, 2},   {"q4_1", DType::Q4_1, 3},   {"q5_0", DType::Q5_0, 8},   {"q5_1", DType::Q5_1, 9},
    {"q2_k", DType::Q2_K, 10},  {"q3_k_s", DType::Q3_K, 11}, {"q3_k_m", DType::Q3_K, 12}, {"q3_k_l", DType::Q3_K, 13},
    {"q4_k_s", DType::Q4_K, 14}, {"q4_k_m", DType::Q4_K, 15}, {"q5_k_s", DType::Q5_K, 16}, {"q5_k_m", DType::Q5_K, 17},
    {"q6_k", DType::Q6_K, 18},  {"iq4_nl", DType::IQ4_NL, 25}, {"iq4_xs", DType::IQ4_XS, 30},
};

bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// llama.cpp's choice before the row-length fallback.
DType preferred(const QuantRecipe& r, const RecipeTensor& t) {
  const std::string_view n = r.name;
  DType type = r.base;
  if (!dtype_is_block(type)) return type;
  if (t.is_output) return type == DType::Q8_0 ? type : DType::Q6_K;
  const int64_t i = t.layer, L = t.n_layers;
  const bool iq4 = n == "iq4_nl" || n == "iq4_xs";
  if (ends_with(t.gguf_name, "attn_v.weight")) {
    if (n == "q2_k") type = t.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (n == "q3_k_m") type = i < 2 ? DType::Q5_K : DType::Q4_K;
    else if (n == "q3_k_l") type = DType::Q5_K;
    else if (iq4 && t.n_gqa >= 4) type = DType::Q5_K;
    else if ((n == "q4_k_m" || n == "q5_k_m") && use_more_bits(i, L)) type = DType::Q6_K;
    else if (n == "q4_k_s" && i < 4) type = DType::Q5_K;
    // llama.cpp's LLM_TYPE_70B (80 layers): attn_v is 8x smaller there.
    if (L == 80 && (type == DType::Q3_K || type == DType::Q4_K)) type = DType::Q5_K;
  } else if (ends_with(t.gguf_name, "ffn_down.weight") || ends_with(t.gguf_name, "ffn_down_exps.weight")) {
    // (llama.cpp matches "ffn_down" anywhere in the name: stacked experts too.)
    if (n == "q2_k") type = DType::Q3_K;
    else if (n == "q3_k_m") type = i < L / 16 ? DType::Q5_K : DType::Q4_K;
    else if (n == "q3_k_l") type = DType::Q5_K;
    else if (n == "q4_k_m" && use_more_bits(i, L)) type = DType::Q6_K;
    else if (iq4 && i < L / 8) type = DType::Q5_K;
    else if (n == "q5_k_m" && use_more_bits(i, L)) type = DType::Q6_K;
    else if (n == "q4_k_s" && i < L / 8) type = DType::Q5_K;
  } else if (ends_with(t.gguf_name, "attn_output.weight")) {
    if (n == "q2_k") type = DType::Q3_K;
    else if (n == "q3_k_m") type = DType::Q4_K;
    else if (n == "q3_k_l") type = DType::Q5_K;
  }
  return type;
}

}  // namespace

const QuantRecipe* find_quant_recipe(std::string_view name) {
  std::string lower(name);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  for (const QuantRecipe& r : kRecipes)
    if (r.name == lower) return &r;
  return nullptr;
}

std::string quant_recipe_names() {
  std::string s;
  for (const QuantRecipe& r : kRecipes) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

DType recipe_tensor_type(const QuantRecipe& r, const RecipeTensor& t, std::string* note) {
  if (!t.is_matrix) return DType::F32;
  const DType want = preferred(r, t);
  DType type = want;
  if (t.cols % int64_t(dtype_block_elems(type)) != 0) {
    switch (type) {
      case DType::Q2_K: case DType::Q3_K: case DType::IQ4_XS: type = DType::IQ4_NL; break;
      case DType::Q4_K: type = DType::Q5_0; break;
      case DType::Q5_K: type = DType::Q5_1; break;
      case DType::Q6_K: type = DType::Q8_0; break;
      default: break;
    }
    if (t.cols % int64_t(dtype_block_elems(type)) != 0) type = t.source == DType::F32 ? DType::F32 : DType::F16;
    if (note)
      *note = fmt::format("{}: {} (row length {} is not a multiple of {}, the {} block size)", t.gguf_name,
                          dtype_name(type), t.cols, dtype_block_elems(want), dtype_name(want));
  }
  return type;
}

}  // namespace strata
