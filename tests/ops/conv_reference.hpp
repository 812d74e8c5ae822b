#pragma once
// Double-precision references of the grouped convolution's three passes
// (include/kiln/ops/detail/conv_params.hpp gives the layouts and the formula), for the
// tests of kiln's kernels. Plain loops over the definition; nothing here is fast.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/ops/detail/conv_params.hpp"

namespace kiln_test {

/// A problem of groups of gw channels, c channels, an r x s filter, the stride and
/// padding, n images of h x w (fprop, f16, no epilogue).
inline kiln::ops::ConvGroupedParams conv_problem(std::int32_t gw, std::int32_t c, std::int32_t r,
                                                 std::int32_t s, std::int32_t stride,
                                                 std::int32_t pad_h, std::int32_t pad_w,
                                                 std::int64_t n, std::int32_t h, std::int32_t w) {
  kiln::ops::ConvGroupedParams p;
  p.group_width = gw;
  p.channels = c;
  p.filter_h = r;
  p.filter_w = s;
  p.stride = stride;
  p.pad_h = pad_h;
  p.pad_w = pad_w;
  p.n = n;
  p.h = h;
  p.w = w;
  return p;
}

/// Small problems with every kind of edge: odd images, N = 1, C = 8, each filter size,
/// both strides, uneven padding, each group width.
inline std::vector<kiln::ops::ConvGroupedParams> conv_ragged_problems() {
  const auto problem = conv_problem;
  return {
      problem(8, 8, 3, 3, 1, 1, 1, 1, 5, 7),    // one group, "same"
      problem(8, 16, 3, 3, 2, 1, 1, 2, 7, 5),   // stride 2, odd image
      problem(8, 24, 5, 5, 1, 2, 2, 1, 6, 6),   // 5x5 "same"
      problem(8, 16, 7, 7, 2, 3, 3, 1, 9, 8),   // 7x7, stride 2
      problem(8, 8, 1, 1, 1, 0, 0, 2, 3, 4),    // 1x1
      problem(8, 16, 3, 3, 1, 0, 0, 1, 5, 6),   // no padding
      problem(8, 8, 5, 3, 2, 1, 2, 1, 7, 7),    // explicit, uneven
      problem(8, 8, 1, 7, 1, 0, 3, 1, 3, 9),    // 1x7
      problem(16, 32, 3, 3, 1, 1, 1, 1, 4, 5),  // groups of 16
      problem(32, 64, 3, 3, 2, 1, 1, 1, 5, 3),  // groups of 32
      problem(8, 8, 7, 7, 1, 3, 3, 1, 1, 1),    // a 1 x 1 image under a 7x7 filter
  };
}

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
