#pragma once
// Double-precision references of the grouped convolution's three passes
// (include/kiln/ops/detail/conv_params.hpp gives the layouts and the formula), for the
// tests of kiln's kernels. Plain loops over the definition; nothing here is fast.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/ops/detail/conv_params.hpp"

namespace kiln_test {

/// Offsets into the NHWC tensors and the C x R x S x G weights of `p`.
struct ConvIndex {
  const kiln::ops::ConvGroupedParams& p;
  std::int64_t out_h = kiln::ops::conv_out_h(p), out_w = kiln::ops::conv_out_w(p);
  std::size_t input(std::int64_t n, std::int64_t y, std::int64_t x, std::int64_t c) const {
    return std::size_t(((n * p.h + y) * p.w + x) * p.channels + c);
  }
  std::size_t output(std::int64_t n, std::int64_t y, std::int64_t x, std::int64_t k) const {
    return std::size_t(((n * out_h + y) * out_w + x) * p.channels + k);
  }
  std::size_t weight(std::int64_t k, std::int64_t r, std::int64_t s, std::int64_t g) const {
    return std::size_t(((k * p.filter_h + r) * p.filter_w + s) * p.group_width + g);
  }
};

/// Calls f(output offset, input offset, weight offset) for every product of the
/// convolution whose input lies inside the image (the padding adds nothing).
template <class F>
void for_each_product(const kiln::ops::ConvGroupedParams& p, F&& f) {
  const ConvIndex at{p};
  for (std::int64_t n = 0; n < p.n; ++n) {
    for (std::int64_t y = 0; y < at.out_h; ++y) {
      for (std::int64_t x = 0; x < at.out_w; ++x) {
        for (std::int64_t k = 0; k < p.channels; ++k) {
          const std::int64_t first = k / p.group_width * p.group_width;
          for (std::int64_t r = 0; r < p.filter_h; ++r) {
            const std::int64_t iy = y * p.stride + r - p.pad_h;
            if (iy < 0 || iy >= p.h) continue;
            for (std::int64_t s = 0; s < p.filter_w; ++s) {
              const std::int64_t ix = x * p.stride + s - p.pad_w;
              if (ix < 0 || ix >= p.w) continue;
              for (std::int64_t g = 0; g < p.group_width; ++g) {
                f(at.output(n, y, x, k), at.input(n, iy, ix, first + g), at.weight(k, r, s, g));
              }
            }
          }
        }
      }
    }
  }
}

/// y = conv(x, w).
inline std::vector<double> conv_fprop(const kiln::ops::ConvGroupedParams& p,
                                      const std::vector<double>& x, const std::vector<double>& w) {
  std::vector<double> y(std::size_t(kiln::ops::conv_output_elements(p)), 0.0);
  for_each_product(p, [&](std::size_t o, std::size_t i, std::size_t k) { y[o] += x[i] * w[k]; });
  return y;
}

/// dx = the gradient of sum(dy · conv(x, w)) with respect to x.
inline std::vector<double> conv_dgrad(const kiln::ops::ConvGroupedParams& p,
                                      const std::vector<double>& dy, const std::vector<double>& w) {
  std::vector<double> dx(std::size_t(kiln::ops::conv_input_elements(p)), 0.0);
  for_each_product(p, [&](std::size_t o, std::size_t i, std::size_t k) { dx[i] += dy[o] * w[k]; });
  return dx;
}

/// dw = the gradient of sum(dy · conv(x, w)) with respect to w.
inline std::vector<double> conv_wgrad(const kiln::ops::ConvGroupedParams& p,
                                      const std::vector<double>& x, const std::vector<double>& dy) {
  std::vector<double> dw(std::size_t(kiln::ops::conv_weight_elements(p)), 0.0);
  for_each_product(p, [&](std::size_t o, std::size_t i, std::size_t k) { dw[k] += dy[o] * x[i]; });
  return dw;
}

}  // namespace kiln_test
