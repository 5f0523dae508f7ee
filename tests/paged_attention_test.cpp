// attend_block against a plain double-precision attention over the same
// cache (f16 and f32 pages, awkward head sizes, contexts across page and
// position-chunk boundaries), and its determinism: a query's output is
// bitwise the same alone, in any block, and in any position in the block.
#include "engine/paged_attention.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/dtype.h"
#include "runtime/kv_pool.h"

namespace strata {
namespace {

struct Cache {
  Cache(KvType type, size_t kv_dim, size_t positions, std::mt19937& rng)
      : pool(2, int64_t(kv_dim), 16, KvPool::pages_for(int64_t(positions), 16), type, nullptr), seq(&pool) {
    EXPECT_TRUE(seq.reserve(int64_t(positions)));
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> k(kv_dim), v(kv_dim);
    for (int64_t layer = 0; layer < 2; ++layer)
      for (size_t p = 0; p < positions; ++p) {
        for (size_t i = 0; i < kv_dim; ++i) k[i] = 2 * d(rng), v[i] = d(rng);
        seq.store(layer, int64_t(p), k.data(), v.data());
      }
  }
  // Element i of position p's key or value row, as stored.
  double at(bool key, int64_t layer, size_t p, size_t i) const {
    const uint8_t* row = key ? seq.k_at(layer, int64_t(p)) : seq.v_at(layer, int64_t(p));
    if (pool.type() == KvType::F16) return f16_to_f32(reinterpret_cast<const uint16_t*>(row)[i]);
    return reinterpret_cast<const float*>(row)[i];
  }
  KvPool pool;
  KvSequence seq;
};

std::vector<double> reference(const Cache& c, int64_t layer, size_t off, size_t hd, float scale, const float* q,
                              size_t n) {
  std::vector<double> s(n), out(hd, 0.0);
  double mx = -1e300, sum = 0;
  for (size_t t = 0; t < n; ++t) {
    double d = 0;
    for (size_t i = 0; i < hd; ++i) d += double(q[i]) * c.at(true, layer, t, off + i);
    s[t] = d * scale;
    mx = std::max(mx, s[t]);
  }
  for (double& v : s) sum += (v = std::exp(v - mx));
  for (size_t t = 0; t < n; ++t)
    for (size_t i = 0; i < hd; ++i) out[i] += s[t] / sum * c.at(false, layer, t, off + i);
  return out;
}

TEST(PagedAttention, MatchesReferenceAndIsIndependentOfTheBlock) {
  std::mt19937 rng(7);
  for (KvType type : {KvType::F16, KvType::F32})
    for (size_t hd : {4, 17, 64, 128}) {
      const size_t kv_heads = 2, positions = 300;  // > 2 position chunks, pages of 16
      const int64_t ctx = 320;
      Cache c(type, kv_heads * hd, positions, rng);
      const size_t count = kAttentionQueryBlock;
      std::vector<float> q(count * hd), out(count * hd, NAN), alone(hd, NAN);
      std::uniform_real_distribution<float> d(-1.0f, 1.0f);
      for (float& v : q) v = d(rng);
      std::vector<size_t> npos(count);
      for (size_t i = 0; i < count; ++i) npos[i] = i == 0 ? 1 : (i * 37 + 5) % positions + 1;
      npos[1] = positions;
      npos[2] = kAttentionPosChunk;
      npos[3] = kAttentionPosChunk + 1;
      std::vector<const float*> qp(count);
      std::vector<float*> op(count);
      for (size_t i = 0; i < count; ++i) qp[i] = q.data() + i * hd, op[i] = out.data() + i * hd;
      std::vector<float> scratch(attention_scratch_floats(hd, ctx));
      const float scale = 1.0f / std::sqrt(float(hd));
      const int64_t layer = 1;
      const size_t off = hd;  // the second KV head
      attend_block(c.seq, layer, off, hd, hd, scale, qp.data(), npos.data(), op.data(), count, ctx, scratch.data());
      for (size_t i = 0; i < count; ++i) {
        const std::string what = std::string(kv_type_name(type)) + " hd=" + std::to_string(hd) +
                                 " query " + std::to_string(i) + " npos=" + std::to_string(npos[i]);
        const std::vector<double> ref = reference(c, layer, off, hd, scale, qp[i], npos[i]);
        for (size_t e = 0; e < hd; ++e) ASSERT_NEAR(out[i * hd + e], ref[e], 2e-5) << what << " element " << e;
        // Alone, and as the last query of a shorter block: the same bits.
        float* ap = alone.data();
        attend_block(c.seq, layer, off, hd, hd, scale, &qp[i], &npos[i], &ap, 1, ctx, scratch.data());
        ASSERT_EQ(0, std::memcmp(alone.data(), out.data() + i * hd, hd * sizeof(float))) << what << " alone";
        const size_t first = i >= 3 ? i - 3 : 0;
        std::vector<float> part((i + 1 - first) * hd, NAN);
        std::vector<float*> pp;
        for (size_t j = first; j <= i; ++j) pp.push_back(part.data() + (j - first) * hd);
        attend_block(c.seq, layer, off, hd, hd, scale, &qp[first], &npos[first], pp.data(), i + 1 - first, ctx,
                     scratch.data());
        ASSERT_EQ(0, std::memcmp(part.data() + (i - first) * hd, out.data() + i * hd, hd * sizeof(float)))
            << what << " in a shorter block";
      }
    }
}

// DeepSeek's values are narrower than its keys (v_head_dim 128 of a 192-wide
// slot): out holds value_dim floats, the first ones of each value slot.
TEST(PagedAttention, NarrowValuesAreTheFirstFloatsOfTheSlot) {
  std::mt19937 rng(11);
  const size_t hd = 24, vd = 16, positions = 150;
  const int64_t ctx = 160;
  Cache c(KvType::F16, 2 * hd, positions, rng);
  std::vector<float> q(hd);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (float& v : q) v = d(rng);
  std::vector<float> out(hd, 12345.0f), scratch(attention_scratch_floats(hd, ctx));
  const float* qp = q.data();
  float* op = out.data();
  const size_t npos = positions;
  const float scale = 0.3f;
  attend_block(c.seq, 0, hd, hd, vd, scale, &qp, &npos, &op, 1, ctx, scratch.data());
  const std::vector<double> ref = reference(c, 0, hd, hd, scale, q.data(), npos);
  for (size_t e = 0; e < vd; ++e) EXPECT_NEAR(out[e], ref[e], 2e-5) << "element " << e;
  for (size_t e = vd; e < hd; ++e) EXPECT_EQ(out[e], 12345.0f) << "element " << e << " past value_dim was written";
}

}  // namespace
}  // namespace strata
