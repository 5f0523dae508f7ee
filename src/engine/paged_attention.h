// Attention of a block of query vectors over one KV head of a paged cache,
// with the dot products done by matmul() (the SIMD gemm) instead of a scalar
// loop per query and position.
//
//   std::vector<float> scratch(attention_scratch_floats(hd, max_context));
//   attend_block(kv, layer, kvh * hd, hd, hd, scale, q, npos, out, count, max_context, scratch.data());
//
// Query i (a head of one row of the batch) attends over positions
// [0, npos[i]): out[i] = softmax(q[i] . K^T * scale) V. The queries of a
// prompt share one K/V head (all the rows of a sequence, and the q heads of a
// GQA group), so K and V are widened to f32 once per block of queries and
// position chunk, and the scores of the whole block are one matmul.
//
// Determinism: out[i] depends only on q[i], npos[i] and the cache. Each score
// is one matmul output (bitwise the same whatever the other rows, by
// matmul.h's contract), the softmax runs over exactly npos[i] values, and
// the weighted sum of V adds positions in order 0 .. npos[i] - 1 with one
// multiply and add per element. So a row gives the same bits alone, in a
// prompt or inside a batch, whatever the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata {

class KvSequence;

// Query vectors per block and positions widened to f32 at a time.
inline constexpr size_t kAttentionQueryBlock = 32;
inline constexpr size_t kAttentionPosChunk = 128;

// Floats of scratch one attend_block call needs (one per thread).
size_t attention_scratch_floats(size_t head_dim, int64_t max_context);

// count <= kAttentionQueryBlock queries; q[i] points at head_dim floats and
// out[i] at value_dim <= head_dim (a value is the first value_dim floats of
// its head's slot: DeepSeek's v_head_dim is narrower than its keys);
// 1 <= npos[i] <= max_context; head_off is the KV head's first element
// within a cached position.
void attend_block(const KvSequence& kv, int64_t layer, size_t head_off, size_t head_dim, size_t value_dim, float scale,
                  const float* const* q, const size_t* npos, float* const* out, size_t count, int64_t max_context,
                  float* scratch);

}  // namespace strata
