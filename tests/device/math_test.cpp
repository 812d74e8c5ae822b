// kiln::gelu_erf (kiln/device/math.hpp), GELU's erf form through Phi's tail, measured on
// the host (exact 1/x and 2^x there; the GPU's approximate ones add about 3e-7) against
// long double's erfc over f32 inputs.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>

#include "kiln/device/math.hpp"

namespace {

long double exact_gelu(float v) {
  const long double x = v;
  return 0.5L * x * std::erfc(-x / std::sqrt(2.0L));
}

// The largest relative error of gelu_erf over the f32 values of magnitude in [lo, hi),
// every `stride`-th bit pattern of each sign, skipping exact results under 2^-126 (which
// the GPU flushes to zero).
double worst_relative_error(float lo, float hi, std::uint32_t stride) {
  double worst = 0.0;
  for (std::uint32_t bits = std::bit_cast<std::uint32_t>(lo);
       bits < std::bit_cast<std::uint32_t>(hi); bits += stride) {
    for (const float v : {std::bit_cast<float>(bits), -std::bit_cast<float>(bits)}) {
      const long double want = exact_gelu(v);
      if (std::fabs(want) < std::numeric_limits<float>::min()) continue;
      const double e = double(std::fabs((kiln::gelu_erf(v) - want) / want));
      if (e > worst) worst = e;
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("gelu_erf: within 1.2e-6 of GELU for |v| <= 4 and 1e-5 beyond, tails included") {
  // About 2.6 million inputs: every 257th f32 from 2^-20 up.
  const double near = worst_relative_error(0x1p-20f, 4.0f, 257);
  const double far = worst_relative_error(4.0f, 16.0f, 257);
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

TEST_CASE("exp2_approx and rcp_approx are 2^x and 1/x on the host") {
  CHECK(kiln::exp2_approx(3.0f) == 8.0f);
  CHECK(kiln::exp2_approx(-1.0f) == 0.5f);
  CHECK(kiln::rcp_approx(4.0f) == 0.25f);
}
