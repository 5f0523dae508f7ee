#include "engine/paged_attention.h"

#include <algorithm>
#include <cstring>

#include "core/dtype.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "runtime/kv_pool.h"

namespace strata {
namespace {

// Positions [p0, p0 + count) of one KV head (keys or values) as f32 rows of
// head_dim floats: f16 pages go through to_float's SIMD widening.
template <class At>
void widen_rows(const KvSequence& kv, At at, int64_t layer, size_t head_off, size_t head_dim, size_t p0, size_t count,
                float* dst) {
  const bool half = kv.pool()->type() == KvType::F16;
  for (size_t t = 0; t < count; ++t) {
    const uint8_t* row = (kv.*at)(layer, int64_t(p0 + t));
    if (half) to_float(reinterpret_cast<const uint16_t*>(row) + head_off, DType::F16, head_dim, dst + t * head_dim);
    else std::memcpy(dst + t * head_dim, reinterpret_cast<const float*>(row) + head_off, head_dim * sizeof(float));
  }
}

}  // namespace

size_t attention_scratch_floats(size_t head_dim, int64_t max_context) {
  return (kAttentionQueryBlock + kAttentionPosChunk) * head_dim + kAttentionQueryBlock * size_t(max_context);
}

void attend_block(const KvSequence& kv, int64_t layer, size_t head_off, size_t hd, size_t vd, float scale,
                  const float* const* q, const size_t* npos, float* const* out, size_t count, int64_t max_context,
                  float* scratch) {
  if (count == 0) return;
  const size_t ctx = size_t(max_context);
  float* qb = scratch;                              // (count, hd) queries, packed for matmul
  float* rows = qb + kAttentionQueryBlock * hd;     // (kAttentionPosChunk, hd) K or V in f32
  float* scores = rows + kAttentionPosChunk * hd;   // (count, ctx), row i valid to npos[i]
  size_t longest = 0;
  for (size_t i = 0; i < count; ++i) {
    std::memcpy(qb + i * hd, q[i], hd * sizeof(float));
    longest = std::max(longest, npos[i]);
  }
  // Scores of every query against each chunk of keys: one small gemm. A
  // query's scores past its own npos are computed and never read.
  for (size_t p0 = 0; p0 < longest; p0 += kAttentionPosChunk) {
    const size_t cn = std::min(kAttentionPosChunk, longest - p0);
    widen_rows(kv, &KvSequence::k_at, layer, head_off, hd, p0, cn, rows);
    matmul(qb, count, hd, rows, DType::F32, cn, scores + p0, ctx, nullptr);
  }
  for (size_t i = 0; i < count; ++i) {
    float* s = scores + i * ctx;
    for (size_t t = 0; t < npos[i]; ++t) s[t] *= scale;
    softmax(s, npos[i]);
    std::fill(out[i], out[i] + vd, 0.0f);
  }
  // out[i] += p[t] * V[t] over t in order; chunks keep that order.
  for (size_t p0 = 0; p0 < longest; p0 += kAttentionPosChunk) {
    const size_t cn = std::min(kAttentionPosChunk, longest - p0);
    widen_rows(kv, &KvSequence::v_at, layer, head_off, vd, p0, cn, rows);
    for (size_t i = 0; i < count; ++i) {
      const float* s = scores + i * ctx;
      float* o = out[i];
      const size_t end = std::min(npos[i], p0 + cn);
      for (size_t t = p0; t < end; ++t) {
        const float a = s[t];
        const float* v = rows + (t - p0) * vd;
        for (size_t e = 0; e < vd; ++e) o[e] += a * v[e];
      }
    }
  }
}

}  // namespace strata
