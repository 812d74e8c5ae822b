// Tests include/kiln/ops/detail/conv_params.hpp (the grouped convolution's problem: what is
// supported, the shapes, the bytes and FLOPs) and tests/ops/conv_reference.hpp (the double
// references the GPU tests will check kiln's kernels against). No GPU.
#include "kiln/ops/detail/conv_params.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "conv_reference.hpp"

using kiln::ops::conv_same_padding;
using kiln::ops::ConvGroupedParams;
using kiln::ops::ConvPass;
using kiln::ops::validate_conv_grouped;

namespace {

ConvGroupedParams problem(std::int32_t gw, std::int32_t c, std::int32_t r, std::int32_t s,
                          std::int32_t stride, std::int32_t pad_h, std::int32_t pad_w,
                          std::int64_t n, std::int32_t h, std::int32_t w) {
  ConvGroupedParams p;
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

std::string error_of(const ConvGroupedParams& p) {
  try {
    validate_conv_grouped(p);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return {};
}

std::vector<double> random_values(std::size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(count);
  for (double& x : v) x = u(rng);
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// A dense convolution written apart from conv_reference.hpp: the input copied into a
// zero-padded image, the grouped weights spread into a dense C x R x S x C filter that is
// zero between groups, every output a sum over all input channels.
std::vector<double> dense_fprop(const ConvGroupedParams& p, const std::vector<double>& x,
                                const std::vector<double>& w) {
  const std::int64_t C = p.channels, G = p.group_width, R = p.filter_h, S = p.filter_w;
  const std::int64_t H = p.h + 2 * p.pad_h, W = p.w + 2 * p.pad_w;
  std::vector<double> padded(std::size_t(p.n * H * W * C), 0.0);
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t y = 0; y < p.h; ++y)
      for (std::int64_t xx = 0; xx < p.w; ++xx)
        for (std::int64_t c = 0; c < C; ++c)
          padded[std::size_t(((n * H + y + p.pad_h) * W + xx + p.pad_w) * C + c)] =
              x[std::size_t(((n * p.h + y) * p.w + xx) * C + c)];
  std::vector<double> dense(std::size_t(C * R * S * C), 0.0);
  for (std::int64_t k = 0; k < C; ++k)
    for (std::int64_t r = 0; r < R; ++r)
      for (std::int64_t s = 0; s < S; ++s)
        for (std::int64_t g = 0; g < G; ++g)
          dense[std::size_t(((k * R + r) * S + s) * C + k / G * G + g)] =
              w[std::size_t(((k * R + r) * S + s) * G + g)];
  const std::int64_t P = (H - R) / p.stride + 1, Q = (W - S) / p.stride + 1;
  std::vector<double> y(std::size_t(p.n * P * Q * C), 0.0);
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t py = 0; py < P; ++py)
      for (std::int64_t qx = 0; qx < Q; ++qx)
        for (std::int64_t k = 0; k < C; ++k) {
          double sum = 0;
          for (std::int64_t r = 0; r < R; ++r)
            for (std::int64_t s = 0; s < S; ++s)
              for (std::int64_t c = 0; c < C; ++c)
                sum += padded[std::size_t(
                           ((n * H + py * p.stride + r) * W + qx * p.stride + s) * C + c)] *
                       dense[std::size_t(((k * R + r) * S + s) * C + c)];
          y[std::size_t(((n * P + py) * Q + qx) * C + k)] = sum;
        }
  return y;
}

// Small problems with every supported feature: odd images, N = 1, one group, stride 2,
// "same" and explicit padding, mixed filters, each group width.
std::vector<ConvGroupedParams> ragged_problems() {
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

}  // namespace

TEST_CASE("conv2d_grouped: output shapes, bytes and FLOPs") {
  // "same" padding keeps the image at stride 1 and halves it (rounding up) at stride 2.
  for (int r : {1, 3, 5, 7}) {
    for (int h : {1, 2, 7, 56, 57}) {
      const int pad = conv_same_padding(r);
      CHECK(kiln::ops::conv_out_h(problem(8, 8, r, r, 1, pad, pad, 1, h, h)) == h);
      CHECK(kiln::ops::conv_out_h(problem(8, 8, r, r, 2, pad, pad, 1, h, h)) == (h + 1) / 2);
    }
  }
  const auto p = problem(8, 256, 3, 3, 1, 0, 0, 128, 56, 56);  // no padding: 54 x 54
  CHECK(kiln::ops::conv_out_h(p) == 54);
  CHECK(kiln::ops::conv_out_w(p) == 54);
  CHECK(kiln::ops::conv_input_elements(p) == 128LL * 56 * 56 * 256);
  CHECK(kiln::ops::conv_output_elements(p) == 128LL * 54 * 54 * 256);
  CHECK(kiln::ops::conv_weight_elements(p) == 256LL * 3 * 3 * 8);
  CHECK(kiln::ops::conv_flops(p) == 2LL * 128 * 54 * 54 * 256 * 3 * 3 * 8);
  CHECK(kiln::ops::conv_min_bytes(p) ==
        2 * (128LL * 56 * 56 * 256 + 128LL * 54 * 54 * 256 + 256LL * 3 * 3 * 8));
}

TEST_CASE("conv2d_grouped: what is not supported is refused, saying what is") {
  const auto ok = problem(8, 256, 3, 3, 1, 1, 1, 128, 56, 56);
  CHECK(error_of(ok).empty());
  CHECK(error_of(problem(8, 8, 1, 1, 1, 0, 0, 0, 1, 1)).empty());  // no images: nothing to do
  auto with = [&](auto change) {
    ConvGroupedParams p = ok;
    change(p);
    return error_of(p);
  };
  auto refused = [](const std::string& e, const char* names, const char* fix) {
    CAPTURE(e);
    CHECK(e.find("kiln: conv2d_grouped: ") == 0);
    CHECK(e.find(names) != std::string::npos);
    CHECK(e.find(fix) != std::string::npos);
  };
  refused(with([](auto& p) { p.dtype = kiln::gen::DType::f32; }), "dtype f32", "use f16 or bf16");
  refused(with([](auto& p) { p.group_width = 4; }), "group_width = 4", "8, 16 or 32");
  refused(with([](auto& p) { p.channels = 260; }), "channels = 260",
          "multiple of the group width 8");
  refused(with([](auto& p) { p.channels = 4; }), "channels = 4", "pad the channels");
  refused(with([](auto& p) {
            p.group_width = 32;
            p.channels = 48;
          }),
          "channels = 48", "group width 32");
  refused(with([](auto& p) { p.filter_h = 2; }), "2 x 3 filter", "1, 3, 5 or 7");
  refused(with([](auto& p) { p.filter_w = 9; }), "3 x 9 filter", "1, 3, 5 or 7");
  refused(with([](auto& p) { p.stride = 3; }), "stride = 3", "use 1 or 2");
  refused(with([](auto& p) { p.pad_h = 3; }), "padding 3 x 1", "0 to R - 1");
  refused(with([](auto& p) { p.pad_w = -1; }), "padding 1 x -1",
          "\"same\" is conv_same_padding: 1 x 1");
  refused(with([](auto& p) { p.n = -1; }), "n = -1", "0 to 2147483647");
  refused(with([](auto& p) { p.n = 1LL << 31; }), "n = 2147483648", "0 to 2147483647");
  refused(with([](auto& p) { p.h = 0; }), "image of 0 x 56", "1 to 32768");
  refused(with([](auto& p) { p.w = 40000; }), "image of 56 x 40000", "1 to 32768");
  refused(with([](auto& p) {
            p.filter_h = p.filter_w = 7;
            p.pad_h = p.pad_w = 0;
            p.h = p.w = 5;
          }),
          "smaller than the 7 x 7 filter", "pad more");
  refused(with([](auto& p) {
            p.n = 2147483647;
            p.h = p.w = 32768;
            p.channels = 65536;
          }),
          "too large", "split the batch");
  refused(with([](auto& p) { p.pass = ConvPass(7); }), "pass 7", "fprop, dgrad or wgrad");
}

TEST_CASE("conv2d_grouped: params as JSON, the passes by name") {
  auto p = problem(16, 64, 5, 3, 2, 2, 1, 3, 11, 13);
  p.pass = ConvPass::wgrad;
  p.dtype = kiln::gen::DType::bf16;
  const nlohmann::json j = p;
  CHECK(j["pass"] == "wgrad");
  CHECK(j["dtype"] == "bf16");
  CHECK(j.get<ConvGroupedParams>() == p);
}

TEST_CASE("conv reference: fprop matches a dense convolution of zero-padded images") {
  std::mt19937 rng(11);
  for (const auto& p : ragged_problems()) {
    CAPTURE(nlohmann::json(p).dump());
    REQUIRE(error_of(p).empty());
    const auto x = random_values(std::size_t(kiln::ops::conv_input_elements(p)), rng);
    const auto w = random_values(std::size_t(kiln::ops::conv_weight_elements(p)), rng);
    const auto y = kiln_test::conv_fprop(p, x, w);
    const auto dense = dense_fprop(p, x, w);
    REQUIRE(y.size() == dense.size());
    double worst = 0;
    for (std::size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::abs(y[i] - dense[i]));
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("conv reference: dgrad and wgrad are fprop's adjoints") {
  // fprop is linear in x and in w, so for any dy:
  //   <fprop(x, w), dy> = <x, dgrad(dy, w)> = <w, wgrad(x, dy)>
  std::mt19937 rng(12);
  for (const auto& p : ragged_problems()) {
    CAPTURE(nlohmann::json(p).dump());
    const auto x = random_values(std::size_t(kiln::ops::conv_input_elements(p)), rng);
    const auto w = random_values(std::size_t(kiln::ops::conv_weight_elements(p)), rng);
    const auto dy = random_values(std::size_t(kiln::ops::conv_output_elements(p)), rng);
    const double forward = dot(kiln_test::conv_fprop(p, x, w), dy);
    const double through_x = dot(x, kiln_test::conv_dgrad(p, dy, w));
    const double through_w = dot(w, kiln_test::conv_wgrad(p, x, dy));
    const double scale = std::max(1.0, std::abs(forward));
    CHECK(std::abs(forward - through_x) < 1e-12 * scale * double(dy.size()));
    CHECK(std::abs(forward - through_w) < 1e-12 * scale * double(dy.size()));
  }
  // And one element of each by finite differences of fprop (exact for a linear map, up
  // to rounding): perturbing x[i] by e changes <fprop, dy> by e * dx[i].
  const auto p = problem(8, 16, 3, 3, 2, 1, 1, 1, 5, 6);
  auto x = random_values(std::size_t(kiln::ops::conv_input_elements(p)), rng);
  auto w = random_values(std::size_t(kiln::ops::conv_weight_elements(p)), rng);
  const auto dy = random_values(std::size_t(kiln::ops::conv_output_elements(p)), rng);
  const auto dx = kiln_test::conv_dgrad(p, dy, w);
  const auto dw = kiln_test::conv_wgrad(p, x, dy);
  const double base = dot(kiln_test::conv_fprop(p, x, w), dy);
  for (std::size_t i : {std::size_t(0), std::size_t(37), x.size() - 1}) {
    x[i] += 1e-3;
    CHECK((dot(kiln_test::conv_fprop(p, x, w), dy) - base) / 1e-3 ==
          doctest::Approx(dx[i]).epsilon(1e-8));
    x[i] -= 1e-3;
  }
  for (std::size_t i : {std::size_t(0), std::size_t(71), w.size() - 1}) {
    w[i] += 1e-3;
    CHECK((dot(kiln_test::conv_fprop(p, x, w), dy) - base) / 1e-3 ==
          doctest::Approx(dw[i]).epsilon(1e-8));
    w[i] -= 1e-3;
  }
}
