// The weight quantizers of quant_ref.h: ggml's reference algorithms
// (quantize_row_*_ref in ggml-quants.c, no importance matrix), written
// again here so that a file strata converts holds the blocks llama-quantize
// would write for the same f32 input. Comments name the ggml helper each
// function corresponds to; the float operations keep ggml's order so the
// results are bitwise the same.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <utility>

#include "core/dtype.h"
#include "core/quant_ref.h"

namespace strata::quant {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS

// make_qx_quants with rmse_type 1 and no importance weights: symmetric
// quantization to [-nmax, nmax - 1] with a scale search weighted by x^2.
// L gets q + nmax.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0.0f, amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = -float(nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = int8_t(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// make_q3_quants with do_rmse: symmetric to [-nmax, nmax - 1], then up to
// 5 rounds of moving single values where that lowers the x^2-weighted
// error. L gets q + nmax.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0.0f, amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = -float(nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = int8_t(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      if (slx > 0.0f) {
        float sl2 = suml2 - w * float(L[i]) * float(L[i]);
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = std::max(-nmax, std::min(nmax - 1, new_l));
        if (new_l != L[i]) {
          slx += w * x[i] * float(new_l);
          sl2 += w * float(new_l) * float(new_l);
          if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = int8_t(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// make_qkx2_quants: asymmetric quantization to [0, nmax] with a min (x =
// scale * L - the_min), searching nstep + 1 scales around nmax / range for
// the lowest weighted error (absolute if use_mad, else squared).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0.0f) min = 0.0f;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = float(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = uint8_t(std::max(0, std::min(nmax, l)));
    float diff = scale * float(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = uint8_t(l);
      const float w = weights[i];
      sum_l += w * float(l);
      sum_l2 += w * float(l) * float(l);
      sum_xl += w * float(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.0f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0.0f;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * float(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = uint8_t((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K / Q5_K share everything but nmax, the search parameters and how q is stored.
template <int kNmax>
void quantize_k4_groups(const float* x, uint16_t* d_out, uint16_t* dmin_out, uint8_t* scales, uint8_t* L,
                        float rmin, float rdelta, int nstep) {
  uint8_t Laux[32];
  float weights[32], mins[8], sc[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    sc[j] = make_qkx2_quants(32, kNmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep, false);
    if (sc[j] > max_scale) max_scale = sc[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < 8; ++j) {
    uint8_t ls = uint8_t(nearest_int(inv_scale * sc[j]));
    uint8_t lm = uint8_t(nearest_int(inv_min * mins[j]));
    ls = std::min<uint8_t>(63, ls);
    lm = std::min<uint8_t>(63, lm);
    if (j < 4) {
      scales[j] = ls;
      scales[j + 4] = lm;
    } else {
      scales[j + 4] = uint8_t((ls & 0x0f) | ((lm & 0x0f) << 4));
      scales[j - 4] |= uint8_t((ls >> 4) << 6);
      scales[j] |= uint8_t((lm >> 4) << 6);
    }
  }
  *d_out = f32_to_f16(max_scale / 63.0f);
  *dmin_out = f32_to_f16(max_min / 63.0f);
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    scale_min_k4(j, scales, &s, &m);
    const float d = f16_to_f32(*d_out) * float(s);
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(*dmin_out) * float(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = uint8_t(std::max(0, std::min(kNmax, l)));
    }
  }
}

// 2-bit values four to a byte: element 128h + 32j + l at bits 2j of byte 32h + l.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 256; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

}  // namespace

void quantize_q8_0_ref(const float* src, void* dst, size_t count) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    const float* x = src + i * kQuantBlock;
    float amax = 0.0f;
    for (size_t j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (size_t j = 0; j < kQuantBlock; ++j) y[i].qs[j] = int8_t(std::round(x[j] * id));
  }
}

namespace {

// The value of largest magnitude in a block, with its sign (the first one on
// ties), as ggml's reference quantizers pick their scale.
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (size_t j = 0; j < kQuantBlock; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

std::pair<float, float> min_max(const float* x) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (size_t j = 0; j < kQuantBlock; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  return {min, max};
}

}  // namespace

void quantize_q4_0_ref(const float* src, void* dst, size_t count) {
  BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    const float* x = src + i * kQuantBlock;
    const float max = signed_absmax(x);
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (size_t j = 0; j < 16; ++j) {
      const int q0 = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      const int q1 = std::min(15, int(int8_t(x[j + 16] * id + 8.5f)));
      y[i].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

void quantize_q4_1_ref(const float* src, void* dst, size_t count) {
  BlockQ4_1* y = static_cast<BlockQ4_1*>(dst);
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    const float* x = src + i * kQuantBlock;
    const auto [min, max] = min_max(x);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    for (size_t j = 0; j < 16; ++j) {
      const int q0 = std::min(15, int(int8_t((x[j] - min) * id + 0.5f)));
      const int q1 = std::min(15, int(int8_t((x[j + 16] - min) * id + 0.5f)));
      y[i].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

void quantize_q5_0_ref(const float* src, void* dst, size_t count) {
  BlockQ5_0* y = static_cast<BlockQ5_0*>(dst);
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    const float* x = src + i * kQuantBlock;
    const float max = signed_absmax(x);
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    uint32_t qh = 0;
    for (size_t j = 0; j < 16; ++j) {
      const uint32_t q0 = uint32_t(std::min(31, int(int8_t(x[j] * id + 16.5f))));
      const uint32_t q1 = uint32_t(std::min(31, int(int8_t(x[j + 16] * id + 16.5f))));
      y[i].qs[j] = uint8_t((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void quantize_q5_1_ref(const float* src, void* dst, size_t count) {
  BlockQ5_1* y = static_cast<BlockQ5_1*>(dst);
  for (size_t i = 0; i < count / kQuantBlock; ++i) {
    const float* x = src + i * kQuantBlock;
    const auto [min, max] = min_max(x);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    uint32_t qh = 0;
    for (size_t j = 0; j < 16; ++j) {
      const uint32_t q0 = uint8_t((x[j] - min) * id + 0.5f);
      const uint32_t q1 = uint8_t((x[j + 16] - min) * id + 0.5f);
      y[i].qs[j] = uint8_t((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void quantize_q2_K_ref(const float* src, void* dst, size_t count) {
  BlockQ2_K* y = static_cast<BlockQ2_K*>(dst);
  uint8_t L[kSuperBlock], Laux[16];
  float weights[16], mins[16], scales[16];
  constexpr float q4scale = 15.0f;
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    const float* x = src + i * kSuperBlock;
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0.0f) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) y[i].scales[j] = uint8_t(nearest_int(iscale * scales[j]));
      y[i].d = f32_to_f16(max_scale / q4scale);
    } else {
      for (int j = 0; j < 16; ++j) y[i].scales[j] = 0;
      y[i].d = f32_to_f16(0.0f);
    }
    if (max_min > 0.0f) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) y[i].scales[j] |= uint8_t(nearest_int(iscale * mins[j]) << 4);
      y[i].dmin = f32_to_f16(max_min / q4scale);
    } else {
      y[i].dmin = f32_to_f16(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = f16_to_f32(y[i].d) * float(y[i].scales[j] & 0x0f);
      if (d == 0.0f) continue;
      const float dm = f16_to_f32(y[i].dmin) * float(y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = uint8_t(std::max(0, std::min(3, l)));
      }
    }
    pack_2bit(L, y[i].qs);
  }
}

void quantize_q3_K_ref(const float* src, void* dst, size_t count) {
  BlockQ3_K* y = static_cast<BlockQ3_K*>(dst);
  int8_t L[kSuperBlock];
  float scales[16];
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    const float* x = src + i * kSuperBlock;
    float max_scale = 0.0f, amax = 0.0f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    std::memset(y[i].scales, 0, kKScaleBytes);
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        int8_t l = int8_t(nearest_int(iscale * scales[j]));
        l = int8_t(std::max(-32, std::min(31, int(l))) + 32);
        if (j < 8) y[i].scales[j] = uint8_t(l & 0x0f);
        else y[i].scales[j - 8] |= uint8_t((l & 0x0f) << 4);
        l = int8_t(l >> 4);
        y[i].scales[j % 4 + 8] |= uint8_t(l << (2 * (j / 4)));
      }
      y[i].d = f32_to_f16(1.0f / iscale);
    } else {
      y[i].d = f32_to_f16(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      int sc = j < 8 ? y[i].scales[j] & 0x0f : y[i].scales[j - 8] >> 4;
      sc = (sc | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      const float d = f16_to_f32(y[i].d) * float(sc);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = int8_t(std::max(-4, std::min(3, l)) + 4);
      }
    }
    std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < 256; ++j) {
      if (L[j] > 3) {
        y[i].hmask[m] |= hm;
        L[j] = int8_t(L[j] - 4);
      }
      if (++m == 32) {
        m = 0;
        hm = uint8_t(hm << 1);
      }
    }
    pack_2bit(reinterpret_cast<const uint8_t*>(L), y[i].qs);
  }
}

void quantize_q4_K_ref(const float* src, void* dst, size_t count) {
  BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kSuperBlock];
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    std::memset(y[i].scales, 0, kKScaleBytes);
    quantize_k4_groups<15>(src + i * kSuperBlock, &y[i].d, &y[i].dmin, y[i].scales, L, -1.0f, 0.1f, 20);
    uint8_t* q = y[i].qs;
    for (int j = 0; j < 256; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
  }
}

void quantize_q5_K_ref(const float* src, void* dst, size_t count) {
  BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
  uint8_t L[kSuperBlock];
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    std::memset(y[i].scales, 0, kKScaleBytes);
    quantize_k4_groups<31>(src + i * kSuperBlock, &y[i].d, &y[i].dmin, y[i].scales, L, -0.5f, 0.1f, 15);
    uint8_t* qh = y[i].qh;
    uint8_t* ql = y[i].qs;
    std::memset(qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < 256; n += 64, ql += 32) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j], l2 = L[n + j + 32];
        if (l1 > 15) {
          l1 -= 16;
          qh[j] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          qh[j] |= m2;
        }
        ql[j] = uint8_t(l1 | (l2 << 4));
      }
      m1 = uint8_t(m1 << 2);
      m2 = uint8_t(m2 << 2);
    }
  }
}

void quantize_q6_K_ref(const float* src, void* dst, size_t count) {
  BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
  int8_t L[kSuperBlock];
  float scales[16];
  for (size_t i = 0; i < count / kSuperBlock; ++i) {
    const float* x = src + i * kSuperBlock;
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int ib = 0; ib < 16; ++ib) {
      const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      if (std::fabs(scale) > max_abs_scale) {
        max_abs_scale = std::fabs(scale);
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.0f / max_scale;
    y[i].d = f32_to_f16(1.0f / iscale);
    for (int ib = 0; ib < 16; ++ib) y[i].scales[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < 16; ++j) {
      const float d = f16_to_f32(y[i].d) * float(y[i].scales[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = int8_t(std::max(-32, std::min(31, l)) + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l] & 0x0f, q2 = L[j + l + 32] & 0x0f, q3 = L[j + l + 64] & 0x0f,
                      q4 = L[j + l + 96] & 0x0f;
        ql[l] = uint8_t(q1 | (q3 << 4));
        ql[l + 32] = uint8_t(q2 | (q4 << 4));
        qh[l] = uint8_t((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                        ((L[j + l + 96] >> 4) << 6));
      }
  }
}

}  // namespace strata::quant
