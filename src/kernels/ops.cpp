#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

namespace strata {

void rmsnorm(const float* x, const float* w, size_t rows, size_t dim, float eps, float* out) {
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    float ss = 0;
    for (size_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
    for (size_t i = 0; i < dim; ++i) o[i] = xr[i] * inv * w[i];
  }
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.rope_dim();
  const size_t half = size_t(dim / 2);
  std::vector<float> f(half);
  const auto& s = c.rope_scaling;
  // yarn (transformers' _compute_yarn_parameters): dimensions that turn
  // fewer than beta_slow times over the original context are interpolated
  // by `factor`, those turning more than beta_fast times kept, with a
  // linear ramp between.
  double ramp_lo = 0, ramp_hi = 0;
  if (s.type == RopeScaling::Type::Yarn) {
    const double pi = 3.14159265358979323846, orig = double(s.original_max_position_embeddings);
    auto correction_dim = [&](double rotations) {
      return double(dim) * std::log(orig / (rotations * 2 * pi)) / (2 * std::log(c.rope_theta));
    };
    ramp_lo = std::max(std::floor(correction_dim(s.beta_fast)), 0.0);
    ramp_hi = std::min(std::ceil(correction_dim(s.beta_slow)), double(dim - 1));
    if (ramp_lo == ramp_hi) ramp_hi += 0.001;
  }
  for (size_t i = 0; i < half; ++i) {
    double inv = 1.0 / std::pow(c.rope_theta, double(2 * i) / double(dim));
    if (s.type == RopeScaling::Type::Yarn) {
      const double ramp = std::clamp((double(i) - ramp_lo) / (ramp_hi - ramp_lo), 0.0, 1.0);
      const double extrapolate = 1 - ramp;  // weight of the original frequency
      inv = inv / s.factor * (1 - extrapolate) + inv * extrapolate;
    } else if (s.type == RopeScaling::Type::Linear) {
      inv /= s.factor;
    } else if (s.type == RopeScaling::Type::Llama3) {
      // Long wavelengths are slowed by `factor`, short ones kept, and the band
      // between is interpolated (Llama 3.1's published scheme).
      const double pi = 3.14159265358979323846;
      double low_wavelen = double(s.original_max_position_embeddings) / s.low_freq_factor;
      double high_wavelen = double(s.original_max_position_embeddings) / s.high_freq_factor;
      double wavelen = 2 * pi / inv;
      if (wavelen > low_wavelen) {
        inv /= s.factor;
      } else if (wavelen >= high_wavelen) {
        double smooth = (double(s.original_max_position_embeddings) / wavelen - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
        inv = (1 - smooth) * inv / s.factor + smooth * inv;
      }
    }
    f[i] = float(inv);
  }
  return f;
}

void rope(float* x, size_t heads, size_t head_dim, int64_t pos, const float* inv_freq, bool interleaved) {
  const size_t half = head_dim / 2;
  if (!interleaved) {
    for (size_t i = 0; i < half; ++i) {
      float angle = float(pos) * inv_freq[i];
      float c = std::cos(angle), s = std::sin(angle);
      for (size_t h = 0; h < heads; ++h) {
        float* hx = x + h * head_dim;
        float a = hx[i], b = hx[i + half];
        hx[i] = a * c - b * s;
        hx[i + half] = b * c + a * s;
      }
    }
    return;
  }
  // Same angles and arithmetic per pair; only where the pair is read from
  // differs, and it is written back in rotate-half order.
  std::vector<float> cs(2 * half), tmp(head_dim);
  for (size_t i = 0; i < half; ++i) {
    float angle = float(pos) * inv_freq[i];
    cs[2 * i] = std::cos(angle);
    cs[2 * i + 1] = std::sin(angle);
  }
  for (size_t h = 0; h < heads; ++h) {
    float* hx = x + h * head_dim;
    std::copy(hx, hx + head_dim, tmp.begin());
    for (size_t i = 0; i < half; ++i) {
      float a = tmp[2 * i], b = tmp[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
      hx[i] = a * c - b * s;
      hx[i + half] = b * c + a * s;
    }
  }
}

void silu_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, size_t n) {
  if (n == 0) return;
  float mx = x[0];
  for (size_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  float sum = 0;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

void attend(const float* q, const float* k, const float* v, size_t n, size_t head_dim, size_t stride, float scale,
            float* scores, float* out) {
  for (size_t t = 0; t < n; ++t) {
    const float* kt = k + t * stride;
    float s = 0;
    for (size_t i = 0; i < head_dim; ++i) s += q[i] * kt[i];
    scores[t] = s * scale;
  }
  softmax(scores, n);
  for (size_t i = 0; i < head_dim; ++i) out[i] = 0;
  for (size_t t = 0; t < n; ++t) {
    const float* vt = v + t * stride;
    float a = scores[t];
    for (size_t i = 0; i < head_dim; ++i) out[i] += a * vt[i];
  }
}

}  // namespace strata
