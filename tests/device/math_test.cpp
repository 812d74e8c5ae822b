// kiln::gelu_erf, gelu_erf_f16 and gelu_erf_bf16 (kiln/device/math.hpp), GELU's erf form
// through Phi's tail, measured on the host (exact 1/x and 2^x there; the GPU's approximate
// ones add about 3e-7) against long double's erfc over f32 inputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>

#include "../half_bits.hpp"
#include "kiln/device/math.hpp"

namespace {

long double exact_gelu(float v) {
  const long double x = v;
  return 0.5L * x * std::erfc(-x / std::sqrt(2.0L));
}

// Calls f on the f32 values of magnitude in [lo, hi), every `stride`-th bit pattern, each
// with both signs.
template <class F>
void for_each_input(float lo, float hi, std::uint32_t stride, F f) {
  for (std::uint32_t bits = std::bit_cast<std::uint32_t>(lo);
       bits < std::bit_cast<std::uint32_t>(hi); bits += stride) {
    f(std::bit_cast<float>(bits));
    f(-std::bit_cast<float>(bits));
  }
}

// The largest relative error of `gelu` over those inputs, skipping exact results under
// `smallest` (2^-126, which the GPU flushes to zero, for f32 results; the smallest normal
// value of a 16-bit result type, under which only absolute error counts).
template <class Gelu>
double worst_relative_error(Gelu gelu, float lo, float hi, std::uint32_t stride,
                            long double smallest = std::numeric_limits<float>::min()) {
  double worst = 0.0;
  for_each_input(lo, hi, stride, [&](float v) {
    const long double want = exact_gelu(v);
    if (std::fabs(want) < smallest) return;
    const double e = double(std::fabs((gelu(v) - want) / want));
    if (e > worst) worst = e;
  });
  return worst;
}

// The largest distance, in units in the last place of a 16-bit type, between gelu's result
// and the exact one, each rounded to the type by `round` (tests/half_bits.hpp: to nearest,
// ties to even), over every input in [lo, hi) and both signs.
template <class Gelu>
double worst_rounded_ulps(Gelu gelu, std::uint16_t (*round)(float), float lo, float hi,
                          std::uint32_t stride) {
  int worst = 0;
  for_each_input(lo, hi, stride, [&](float v) {
    worst = std::max(worst, kiln_test::ulp_distance16(round(gelu(v)), round(float(exact_gelu(v)))));
  });
  return worst;
}

}  // namespace

TEST_CASE("gelu_erf: within 1.2e-6 of GELU for |v| <= 4 and 1e-5 beyond, tails included") {
  // About 2.6 million inputs: every 257th f32 from 2^-20 up.
  const auto gelu = [](float v) { return kiln::gelu_erf(v); };
  const double near = worst_relative_error(gelu, 0x1p-20f, 4.0f, 257);
  const double far = worst_relative_error(gelu, 4.0f, 16.0f, 257);
  MESSAGE("worst relative error: " << near << " for |v| in [2^-20, 4), " << far
                                   << " for |v| in [4, 16)");
  CHECK(near < 1.2e-6);
  CHECK(far < 1e-5);
  // Where 1 + erf(v / sqrt 2) has cancelled to 0 in f32, Phi's tail keeps its digits.
  const float v = -6.0f;
  CHECK(0.5f * v * (1.0f + std::erf(v * 0.70710678f)) == 0.0f);
  CHECK(std::fabs((kiln::gelu_erf(v) - exact_gelu(v)) / exact_gelu(v)) < 1e-5L);
}

TEST_CASE("gelu_erf: zero, small, large and non-finite inputs") {
  CHECK(kiln::gelu_erf(0.0f) == 0.0f);
  CHECK(kiln::gelu_erf(1e-30f) == doctest::Approx(0.5e-30).epsilon(1e-6));
  CHECK(kiln::gelu_erf(100.0f) == 100.0f);
  CHECK(kiln::gelu_erf(-100.0f) == 0.0f);
  CHECK(kiln::gelu_erf(std::numeric_limits<float>::infinity()) ==
        std::numeric_limits<float>::infinity());
  CHECK(std::isnan(kiln::gelu_erf(std::numeric_limits<float>::quiet_NaN())));
  // Odd about v / 2: GELU(v) - GELU(-v) = v.
  for (const float v : {0.1f, 0.5f, 1.0f, 2.0f, 3.0f}) {
    CHECK(kiln::gelu_erf(v) - kiln::gelu_erf(-v) == doctest::Approx(v).epsilon(1e-6));
  }
}

TEST_CASE("gelu_erf_f16 and gelu_erf_bf16: within a small part of their type's rounding") {
  const auto f16 = [](float v) { return kiln::gelu_erf_f16(v); };
  const auto bf16 = [](float v) { return kiln::gelu_erf_bf16(v); };
  // Relative error where the 16-bit result is normal (f16 from 2^-14, bf16 from 2^-126):
  // every 257th f32 from 2^-20 up to 64 (f16's results are 0 or subnormal from |v| = 5.2).
  const double f16_error = worst_relative_error(f16, 0x1p-20f, 64.0f, 257, 0x1p-14L);
  const double bf16_error = worst_relative_error(bf16, 0x1p-20f, 64.0f, 257, 0x1p-126L);
  MESSAGE("worst relative error: gelu_erf_f16 " << f16_error << ", gelu_erf_bf16 " << bf16_error);
  CHECK(f16_error < 1e-5);
  CHECK(bf16_error < 5e-5);
  // Rounded to the type, within one unit in the last place of the exact result rounded,
  // subnormal and zero results included (f16's tail from v = -5.2 down, where the
  // polynomial, fitted up to 5.9, runs on), and far out on both sides.
  CHECK(worst_rounded_ulps(f16, kiln_test::float_to_half, 0x1p-20f, 64.0f, 263) <= 1.0);
  CHECK(worst_rounded_ulps(bf16, kiln_test::float_to_bf16, 0x1p-20f, 64.0f, 263) <= 1.0);
  CHECK(worst_rounded_ulps(f16, kiln_test::float_to_half, 64.0f, 0x1p120f, 65537) == 0.0);
  CHECK(worst_rounded_ulps(bf16, kiln_test::float_to_bf16, 64.0f, 0x1p120f, 65537) == 0.0);
  // The rounding test can fail: f16's fit is not good enough for bf16's tail.
  CHECK(worst_rounded_ulps(f16, kiln_test::float_to_bf16, 8.0f, 13.0f, 263) > 1.0);
}

TEST_CASE("gelu_erf_f16 and gelu_erf_bf16: zero, large and non-finite inputs") {
  const float inf = std::numeric_limits<float>::infinity();
  for (const auto gelu : {+[](float v) { return kiln::gelu_erf_f16(v); },
                          +[](float v) { return kiln::gelu_erf_bf16(v); }}) {
    CHECK(gelu(0.0f) == 0.0f);
    CHECK(gelu(1e-30f) == doctest::Approx(0.5e-30).epsilon(1e-4));
    CHECK(gelu(100.0f) == 100.0f);
    CHECK(gelu(-100.0f) == 0.0f);
    CHECK(gelu(3e38f) == 3e38f);
    CHECK(gelu(-3e38f) == 0.0f);
    CHECK(gelu(inf) == inf);
    CHECK(gelu(-inf) == 0.0f);
    CHECK(std::isnan(gelu(std::numeric_limits<float>::quiet_NaN())));
    for (const float v : {0.1f, 0.5f, 1.0f, 2.0f, 3.0f}) {
      CHECK(gelu(v) - gelu(-v) == doctest::Approx(v).epsilon(1e-5));
    }
  }
}

TEST_CASE("exp2_approx and rcp_approx are 2^x and 1/x on the host") {
  CHECK(kiln::exp2_approx(3.0f) == 8.0f);
  CHECK(kiln::exp2_approx(-1.0f) == 0.5f);
  CHECK(kiln::rcp_approx(4.0f) == 0.25f);
}
