// Dequantization, activation quantization, K-quant unpacking and reference
// dots (see quant_ref.h); the weight quantizers are in quantize_ref.cpp.
#include "core/quant_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"

namespace strata::quant {
namespace {

template <class B>
const B* blocks(const void* p) {
  return static_cast<const B*>(p);
}

uint32_t qh_bits(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}

// Q4_0 .. Q5_1: the 32 integer q of a block in element order (Q4_0 and
// Q5_0 with their offset removed, so value = d * q (+ m)).
void q32(const BlockQ4_0& b, int* q) {
  for (size_t i = 0; i < 16; ++i) {
    q[i] = int(b.qs[i] & 0x0f) - 8;
    q[i + 16] = int(b.qs[i] >> 4) - 8;
  }
}
void q32(const BlockQ4_1& b, int* q) {
  for (size_t i = 0; i < 16; ++i) {
    q[i] = b.qs[i] & 0x0f;
    q[i + 16] = b.qs[i] >> 4;
  }
}
void q32(const BlockQ5_0& b, int* q) {
  const uint32_t h = qh_bits(b.qh);
  for (size_t i = 0; i < 16; ++i) {
    q[i] = int((b.qs[i] & 0x0f) | ((h >> i) & 1u) << 4) - 16;
    q[i + 16] = int((b.qs[i] >> 4) | ((h >> (i + 16)) & 1u) << 4) - 16;
  }
}
void q32(const BlockQ5_1& b, int* q) {
  const uint32_t h = qh_bits(b.qh);
  for (size_t i = 0; i < 16; ++i) {
    q[i] = int((b.qs[i] & 0x0f) | ((h >> i) & 1u) << 4);
    q[i + 16] = int((b.qs[i] >> 4) | ((h >> (i + 16)) & 1u) << 4);
  }
}

void q32(const BlockIQ4_NL& b, int* q) {
  for (size_t i = 0; i < 16; ++i) {
    q[i] = kIQ4NLValues[b.qs[i] & 0x0f];
    q[i + 16] = kIQ4NLValues[b.qs[i] >> 4];
  }
}

// IQ4_XS group g's 32 values in element order.
void iq4_xs_group(const BlockIQ4_XS& b, size_t g, int* q) {
  for (size_t l = 0; l < 16; ++l) {
    q[l] = kIQ4NLValues[b.qs[16 * g + l] & 0x0f];
    q[l + 16] = kIQ4NLValues[b.qs[16 * g + l] >> 4];
  }
}

template <class B>
void dequant32(const void* src, float* dst, size_t count) {
  const B* b = blocks<B>(src);
  int q[kQuantBlock];
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    q32(b[i], q);
    const float d = f16_to_f32(b[i].d);
    float m = 0.0f;
    if constexpr (requires { b[i].m; }) m = f16_to_f32(b[i].m);
    for (size_t e = 0; e < kQuantBlock; ++e) dst[i * kQuantBlock + e] = float(q[e]) * d + m;
  }
}

// kOffset: Q3_K / Q6_K store q + offset with the offset folded into m;
// their values are computed as ggml does, (d * sc) * (q - offset).
template <class B, int kOffset = 0>
void dequant_k(const void* src, float* dst, size_t count) {
  const B* b = blocks<B>(src);
  KGroups g;
  uint8_t q[kSuperBlock];
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    k_groups(b[i], &g);
    k_unpack_q(b[i], q);
    for (size_t e = 0; e < kSuperBlock; ++e) {
      const float dl = g.d * float(g.sc[e / 16]);
      dst[i * kSuperBlock + e] =
          kOffset ? dl * float(int(q[e]) - kOffset) : dl * float(q[e]) - g.dmin * float(g.m[e / 16]);
    }
  }
}

// Q4_K / Q5_K: the 6-bit scale and min of group j < 8 (ggml's get_scale_min_k4).
void scale_min_k4(size_t j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void k_groups_k4(uint16_t d, uint16_t dmin, const uint8_t* scales, KGroups* g) {
  for (size_t j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(j, scales, &sc, &m);
    g->sc[2 * j] = g->sc[2 * j + 1] = int16_t(sc);
    g->m[2 * j] = g->m[2 * j + 1] = int16_t(m);
  }
  g->d = f16_to_f32(d);
  g->dmin = f16_to_f32(dmin);
}

int block_dot32(const int* q, const int8_t* x) {
  int s = 0;
  for (size_t e = 0; e < kQuantBlock; ++e) s += q[e] * int(x[e]);
  return s;
}

template <class B>
float dot32_q8_0(size_t k, const void* w, const void* act) {
  const B* wb = blocks<B>(w);
  const BlockQ8_0* xb = blocks<BlockQ8_0>(act);
  int q[kQuantBlock];
  float acc = 0.0f;
  for (size_t i = 0; i < k / kQuantBlock; ++i) {
    q32(wb[i], q);
    acc += f16_to_f32(wb[i].d) * f16_to_f32(xb[i].d) * float(block_dot32(q, xb[i].qs));
  }
  return acc;
}

template <class B>
float dot32_q8_1(size_t k, const void* w, const void* act) {
  const B* wb = blocks<B>(w);
  const BlockQ8_1* xb = blocks<BlockQ8_1>(act);
  int q[kQuantBlock];
  float acc = 0.0f;
  for (size_t i = 0; i < k / kQuantBlock; ++i) {
    q32(wb[i], q);
    acc += f16_to_f32(wb[i].d) * f16_to_f32(xb[i].d) * float(block_dot32(q, xb[i].qs)) +
           f16_to_f32(wb[i].m) * f16_to_f32(xb[i].s);
  }
  return acc;
}

template <class B>
float dot_k(size_t k, const void* w, const void* act) {
  const B* wb = blocks<B>(w);
  const BlockQ8_K* xb = blocks<BlockQ8_K>(act);
  KGroups g;
  uint8_t q[kSuperBlock];
  float acc = 0.0f, accm = 0.0f;
  for (size_t i = 0; i < k / kSuperBlock; ++i) {
    k_groups(wb[i], &g);
    k_unpack_q(wb[i], q);
    int32_t isum = 0, imin = 0;
    for (size_t grp = 0; grp < 16; ++grp) {
      int32_t s = 0;
      for (size_t e = 16 * grp; e < 16 * grp + 16; ++e) s += int32_t(q[e]) * int32_t(xb[i].qs[e]);
      isum += int32_t(g.sc[grp]) * s;
      imin += int32_t(g.m[grp]) * int32_t(xb[i].bsums[grp]);
    }
    acc += g.d * xb[i].d * float(isum);
    accm += g.dmin * xb[i].d * float(imin);
  }
  return acc - accm;
}

// amax / 127 scaled blocks of 32 with round half to even; returns the sum of q.
int quantize_block_q8(const float* x, uint16_t* d_out, int8_t* qs, float* d32 = nullptr) {
  float amax = 0.0f;
  for (size_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  if (d32) *d32 = d;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d_out = f32_to_f16(d);
  int sum = 0;
  for (size_t i = 0; i < kQuantBlock; ++i) {
    qs[i] = int8_t(nearest_int(x[i] * id));
    sum += qs[i];
  }
  return sum;
}

}  // namespace

void dequantize_q8_0(const void* src, float* dst, size_t count) {
  const BlockQ8_0* b = blocks<BlockQ8_0>(src);
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (size_t e = 0; e < kQuantBlock; ++e) dst[i * kQuantBlock + e] = float(b[i].qs[e]) * d;
  }
}
void dequantize_q8_1(const void* src, float* dst, size_t count) {
  const BlockQ8_1* b = blocks<BlockQ8_1>(src);
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (size_t e = 0; e < kQuantBlock; ++e) dst[i * kQuantBlock + e] = float(b[i].qs[e]) * d;
  }
}
void dequantize_q4_0(const void* src, float* dst, size_t count) { dequant32<BlockQ4_0>(src, dst, count); }
void dequantize_q4_1(const void* src, float* dst, size_t count) { dequant32<BlockQ4_1>(src, dst, count); }
void dequantize_q5_0(const void* src, float* dst, size_t count) { dequant32<BlockQ5_0>(src, dst, count); }
void dequantize_q5_1(const void* src, float* dst, size_t count) { dequant32<BlockQ5_1>(src, dst, count); }
void dequantize_q2_K(const void* src, float* dst, size_t count) { dequant_k<BlockQ2_K>(src, dst, count); }
void dequantize_q3_K(const void* src, float* dst, size_t count) { dequant_k<BlockQ3_K, 4>(src, dst, count); }
void dequantize_q4_K(const void* src, float* dst, size_t count) { dequant_k<BlockQ4_K>(src, dst, count); }
void dequantize_q5_K(const void* src, float* dst, size_t count) { dequant_k<BlockQ5_K>(src, dst, count); }
void dequantize_q6_K(const void* src, float* dst, size_t count) { dequant_k<BlockQ6_K, 32>(src, dst, count); }
void dequantize_q8_K(const void* src, float* dst, size_t count) {
  const BlockQ8_K* b = blocks<BlockQ8_K>(src);
  for (size_t i = 0; i < count / kSuperBlock; ++i)
    for (size_t e = 0; e < kSuperBlock; ++e) dst[i * kSuperBlock + e] = b[i].d * float(b[i].qs[e]);
}

void dequantize_iq4_nl(const void* src, float* dst, size_t count) { dequant32<BlockIQ4_NL>(src, dst, count); }
void dequantize_iq4_xs(const void* src, float* dst, size_t count) {
  const BlockIQ4_XS* b = blocks<BlockIQ4_XS>(src);
  int q[32];
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (size_t g = 0; g < 8; ++g) {
      iq4_xs_group(b[i], g, q);
      const float dl = d * float(iq4_xs_scale(b[i], g));
      for (size_t e = 0; e < 32; ++e) dst[i * kSuperBlock + 32 * g + e] = dl * float(q[e]);
    }
  }
}

void quantize_q8_0_act(const float* src, void* dst, size_t count) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (size_t i = 0; i < count / kQuantBlock; ++i) quantize_block_q8(src + i * kQuantBlock, &y[i].d, y[i].qs);
}

void quantize_q8_1_act(const float* src, void* dst, size_t count) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    float d;
    const int sum = quantize_block_q8(src + i * kQuantBlock, &y[i].d, y[i].qs, &d);
    y[i].s = f32_to_f16(float(sum) * d);  // as ggml: the f32 scale, before its rounding to f16
  }
}

void quantize_q8_K_act(const float* src, void* dst, size_t count) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    const float* x = src + i * kSuperBlock;
    float amax = 0.0f, max = 0.0f;
    for (size_t e = 0; e < kSuperBlock; ++e)
      if (std::fabs(x[e]) > amax) {
        amax = std::fabs(x[e]);
        max = x[e];
      }
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (size_t e = 0; e < kSuperBlock; ++e) y[i].qs[e] = int8_t(std::min(127, nearest_int(iscale * x[e])));
    for (size_t g = 0; g < 16; ++g) {
      int s = 0;
      for (size_t e = 0; e < 16; ++e) s += y[i].qs[16 * g + e];
      y[i].bsums[g] = int16_t(s);
    }
    y[i].d = 1.0f / iscale;
  }
}

// --- K-quant groups and q

void k_groups(const BlockQ2_K& b, KGroups* g) {
  for (size_t j = 0; j < 16; ++j) {
    g->sc[j] = int16_t(b.scales[j] & 0x0f);
    g->m[j] = int16_t(b.scales[j] >> 4);
  }
  g->d = f16_to_f32(b.d);
  g->dmin = f16_to_f32(b.dmin);
}

void k_groups(const BlockQ3_K& b, KGroups* g) {
  for (size_t j = 0; j < 16; ++j) {
    const int lo = j < 8 ? b.scales[j] & 0x0f : b.scales[j - 8] >> 4;
    const int hi = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    const int sc = (lo | hi << 4) - 32;
    g->sc[j] = int16_t(sc);
    g->m[j] = int16_t(4 * sc);  // value = d * sc * (q - 4), q = low 2 bits + 4 * high bit
  }
  g->d = g->dmin = f16_to_f32(b.d);
}

void k_groups(const BlockQ4_K& b, KGroups* g) { k_groups_k4(b.d, b.dmin, b.scales, g); }
void k_groups(const BlockQ5_K& b, KGroups* g) { k_groups_k4(b.d, b.dmin, b.scales, g); }

void k_groups(const BlockQ6_K& b, KGroups* g) {
  for (size_t j = 0; j < 16; ++j) {
    g->sc[j] = int16_t(b.scales[j]);
    g->m[j] = int16_t(32 * b.scales[j]);
  }
  g->d = g->dmin = f16_to_f32(b.d);
}

void k_unpack_q(const BlockQ2_K& b, uint8_t* q) {
  for (size_t h = 0; h < 2; ++h)
    for (size_t j = 0; j < 4; ++j)
      for (size_t l = 0; l < 32; ++l) q[128 * h + 32 * j + l] = (b.qs[32 * h + l] >> (2 * j)) & 3;
}

void k_unpack_q(const BlockQ3_K& b, uint8_t* q) {
  for (size_t h = 0; h < 2; ++h)
    for (size_t j = 0; j < 4; ++j)
      for (size_t l = 0; l < 32; ++l)
        q[128 * h + 32 * j + l] =
            uint8_t(((b.qs[32 * h + l] >> (2 * j)) & 3) | (((b.hmask[l] >> (4 * h + j)) & 1) << 2));
}

void k_unpack_q(const BlockQ4_K& b, uint8_t* q) {
  for (size_t j = 0; j < 4; ++j)
    for (size_t l = 0; l < 32; ++l) {
      q[64 * j + l] = b.qs[32 * j + l] & 0x0f;
      q[64 * j + 32 + l] = b.qs[32 * j + l] >> 4;
    }
}

void k_unpack_q(const BlockQ5_K& b, uint8_t* q) {
  for (size_t j = 0; j < 4; ++j)
    for (size_t l = 0; l < 32; ++l) {
      q[64 * j + l] = uint8_t((b.qs[32 * j + l] & 0x0f) | (((b.qh[l] >> (2 * j)) & 1) << 4));
      q[64 * j + 32 + l] = uint8_t((b.qs[32 * j + l] >> 4) | (((b.qh[l] >> (2 * j + 1)) & 1) << 4));
    }
}

void k_unpack_q(const BlockQ6_K& b, uint8_t* q) {
  for (size_t h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    uint8_t* o = q + 128 * h;
    for (size_t l = 0; l < 32; ++l) {
      o[l] = uint8_t((ql[l] & 0x0f) | ((qh[l] & 3) << 4));
      o[l + 32] = uint8_t((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4));
      o[l + 64] = uint8_t((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      o[l + 96] = uint8_t((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
}

// --- reference dots

float vec_dot_q8_0(size_t k, const void* w, const void* act) {
  const BlockQ8_0* wb = blocks<BlockQ8_0>(w);
  const BlockQ8_0* xb = blocks<BlockQ8_0>(act);
  float acc = 0.0f;
  for (size_t i = 0; i < k / kQuantBlock; ++i) {
    int s = 0;
    for (size_t e = 0; e < kQuantBlock; ++e) s += int(wb[i].qs[e]) * int(xb[i].qs[e]);
    acc += f16_to_f32(wb[i].d) * f16_to_f32(xb[i].d) * float(s);
  }
  return acc;
}
float vec_dot_q4_0(size_t k, const void* w, const void* act) { return dot32_q8_0<BlockQ4_0>(k, w, act); }
float vec_dot_q5_0(size_t k, const void* w, const void* act) { return dot32_q8_0<BlockQ5_0>(k, w, act); }
float vec_dot_q4_1(size_t k, const void* w, const void* act) { return dot32_q8_1<BlockQ4_1>(k, w, act); }
float vec_dot_q5_1(size_t k, const void* w, const void* act) { return dot32_q8_1<BlockQ5_1>(k, w, act); }
float vec_dot_q2_K(size_t k, const void* w, const void* act) { return dot_k<BlockQ2_K>(k, w, act); }
float vec_dot_q3_K(size_t k, const void* w, const void* act) { return dot_k<BlockQ3_K>(k, w, act); }
float vec_dot_q4_K(size_t k, const void* w, const void* act) { return dot_k<BlockQ4_K>(k, w, act); }
float vec_dot_q5_K(size_t k, const void* w, const void* act) { return dot_k<BlockQ5_K>(k, w, act); }
float vec_dot_q6_K(size_t k, const void* w, const void* act) { return dot_k<BlockQ6_K>(k, w, act); }
float vec_dot_iq4_nl(size_t k, const void* w, const void* act) { return dot32_q8_0<BlockIQ4_NL>(k, w, act); }

float vec_dot_iq4_xs(size_t k, const void* w, const void* act) {
  const BlockIQ4_XS* wb = blocks<BlockIQ4_XS>(w);
  const BlockQ8_K* xb = blocks<BlockQ8_K>(act);
  int q[32];
  float acc = 0.0f;
  for (size_t i = 0; i < k / kSuperBlock; ++i) {
    int32_t isum = 0;
    for (size_t g = 0; g < 8; ++g) {
      iq4_xs_group(wb[i], g, q);
      int32_t s = 0;
      for (size_t e = 0; e < 32; ++e) s += q[e] * int32_t(xb[i].qs[32 * g + e]);
      isum += iq4_xs_scale(wb[i], g) * s;
    }
    acc += f16_to_f32(wb[i].d) * xb[i].d * float(isum);
  }
  return acc;
}

}  // namespace strata::quant
