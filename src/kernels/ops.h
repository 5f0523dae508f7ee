// The small per-token operations around the matmuls. They touch O(hidden)
// or O(context) data per token, so plain loops the compiler vectorizes are
// enough; the matmuls (matmul.h) carry the weight traffic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "formats/model_config.h"

namespace strata {

// out[i] = x[i] / rms(x) * w[i], over rows of `dim` floats. out may equal x.
void rmsnorm(const float* x, const float* w, size_t rows, size_t dim, float eps, float* out);

// Inverse frequencies of rotate-half RoPE for one head, with the config's
// scaling (linear divides positions by factor; llama3 reshapes the spectrum).
std::vector<float> rope_inv_freq(const ModelConfig& c);

// Rotates pairs (i, i + head_dim/2) of each of `heads` heads at `pos`
// (rotate-half, Hugging Face / NEOX layout); pair i turns by pos * inv_freq[i].
// With `interleaved` the input pairs are (2i, 2i + 1) (Meta layout, as GGUF
// `llama` stores q/k rows) and each rotated pair is written to (i, i + half):
// q and k leave in the rotate-half layout, so the KV cache and attention are
// bitwise those of the Hugging Face model the GGUF was converted from.
void rope(float* x, size_t heads, size_t head_dim, int64_t pos, const float* inv_freq, bool interleaved = false);

// gate[i] = silu(gate[i]) * up[i]
void silu_mul(float* gate, const float* up, size_t n);

// In-place softmax over n values.
void softmax(float* x, size_t n);

// out(head_dim) = softmax(q·K^T * scale) V over positions [0, n) where
// K/V rows are `stride` floats apart. `scores` holds n floats of scratch.
void attend(const float* q, const float* k, const float* v, size_t n, size_t head_dim, size_t stride, float scale,
            float* scores, float* out);

}  // namespace strata
