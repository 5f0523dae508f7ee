// The IQ4_NL / IQ4_XS weight quantizers of quant_ref.h: ggml's
// quantize_row_iq4_nl_impl as quantize_iq4_nl / quantize_iq4_xs call it
// without an importance matrix (weights x^2, 7 scale tries each side), the
// float operations in ggml's order so the blocks are llama-quantize's.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/quant_ref.h"

namespace strata::quant {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS
constexpr int kTries = 7;

// ggml's best_index_int8: the level nearest x (the lower one on ties).
int best_index(float x) {
  const int8_t* val = kIQ4NLValues;
  if (x <= val[0]) return 0;
  if (x >= val[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < val[mav]) mu = mav;
    else ml = mav;
  }
  return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// Levels of one 32-group and the best scale for them; 0 for a group of
// (near) zeros. L is left as the first pass chose it.
float group_scale(const float* xb, uint8_t* L) {
  const int8_t* values = kIQ4NLValues;
  float weight[32];
  for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    const float ax = std::fabs(xb[j]);
    if (ax > amax) {
      amax = ax;
      max = xb[j];
    }
  }
  if (amax < kGroupMaxEps) return 0.0f;
  float d = -max / float(values[0]);
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < 32; ++j) {
    const float al = id * xb[j];
    const int l = best_index(al);
    L[j] = uint8_t(l);
    const float q = values[l];
    const float w = weight[j];
    sumqx += w * q * xb[j];
    sumq2 += w * q * q;
  }
  d = sumqx / sumq2;
  float best = d * sumqx;
  for (int itry = -kTries; itry <= kTries; ++itry) {
    id = float(itry + values[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float al = id * xb[j];
      const int l = best_index(al);
      const float q = values[l];
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// 32 levels as ggml packs them: element l low nibble, l + 16 high nibble.
void pack(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t(L[j] | (L[16 + j] << 4));
}

}  // namespace

void quantize_iq4_nl_ref(const float* src, void* dst, size_t count) {
  BlockIQ4_NL* y = static_cast<BlockIQ4_NL*>(dst);
  uint8_t L[32];
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    const float* x = src + i * kQuantBlock;
    const float scale = group_scale(x, L);
    y[i].d = f32_to_f16(scale);
    const float id = scale != 0.0f ? 1 / scale : 0;
    for (int j = 0; j < 32; ++j) L[j] = uint8_t(best_index(id * x[j]));
    pack(L, y[i].qs);
  }
}

void quantize_iq4_xs_ref(const float* src, void* dst, size_t count) {
  BlockIQ4_XS* y = static_cast<BlockIQ4_XS*>(dst);
  uint8_t L[kSuperBlock];
  float scales[8];
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    const float* x = src + i * kSuperBlock;
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < 8; ++ib) {
      scales[ib] = group_scale(x + 32 * ib, L + 32 * ib);
      const float abs_d = std::fabs(scales[ib]);
      if (abs_d > amax_scale) {
        amax_scale = abs_d;
        max_scale = scales[ib];
      }
    }
    BlockIQ4_XS& b = y[i];
    std::memset(b.scales_l, 0, sizeof b.scales_l);
    b.scales_h = 0;
    const float d = -max_scale / 32;
    b.d = f32_to_f16(d);
    const float id = d != 0.0f ? 1 / d : 0.f;
    for (int ib = 0; ib < 8; ++ib) {
      int l = nearest_int(id * scales[ib]);
      l = std::max(-32, std::min(31, l));
      const float dl = d * float(l);
      const float idl = dl != 0.0f ? 1 / dl : 0.f;
      for (int j = 0; j < 32; ++j) L[32 * ib + j] = uint8_t(best_index(idl * x[32 * ib + j]));
      l += 32;
      b.scales_l[ib / 2] |= uint8_t((l & 0xf) << (4 * (ib % 2)));
      b.scales_h |= uint16_t((l >> 4) << (2 * ib));
    }
    for (int g = 0; g < 8; ++g) pack(L + 32 * g, b.qs + 16 * g);
  }
}

}  // namespace strata::quant
