// Constants: their C++ types and literals that read back as exactly the same value.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "kiln/gen.hpp"

using namespace kiln::gen;

namespace {

// The value a C++ compiler gives a float literal ("0.1f"), read the same way (strtof
// rounds correctly, like the compiler).
float read_float(std::string literal) {
  REQUIRE(literal.back() == 'f');
  literal.pop_back();
  return std::strtof(literal.c_str(), nullptr);
}
double read_double(const std::string& literal) {
  return std::strtod(literal.c_str(), nullptr);
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

std::string constant_line(const Spec& spec) {
  std::string h = spec.header();
  auto begin = h.find("inline constexpr");
  REQUIRE(begin != std::string::npos);
  return h.substr(begin, h.find('\n', begin) - begin);
}

}  // namespace

TEST_CASE("each constant has the type of its value") {
  CHECK(constant_line(Spec().constant("c", 64)) == "inline constexpr int c = 64;");
  CHECK(constant_line(Spec().constant("c", -7)) == "inline constexpr int c = -7;");
  CHECK(constant_line(Spec().constant("c", 64L)) == "inline constexpr long long c = 64LL;");
  CHECK(constant_line(Spec().constant("c", 1LL << 40)) ==
        "inline constexpr long long c = 1099511627776LL;");
  CHECK(constant_line(Spec().constant("c", 0.5f)) == "inline constexpr float c = 0.5f;");
  CHECK(constant_line(Spec().constant("c", 0.1f)) == "inline constexpr float c = 0.1f;");
  CHECK(constant_line(Spec().constant("c", 2.0f)) == "inline constexpr float c = 2.0f;");
  CHECK(constant_line(Spec().constant("c", 0.1)) == "inline constexpr double c = 0.1;");
  CHECK(constant_line(Spec().constant("c", 1e300)) == "inline constexpr double c = 1e+300;");
  CHECK(constant_line(Spec().constant("c", -3.0)) == "inline constexpr double c = -3.0;");
}

TEST_CASE("integer extremes are valid literals of their type") {
  CHECK(int_literal(std::numeric_limits<int>::max()) == "2147483647");
  CHECK(int_literal(std::numeric_limits<int>::min()) == "(-2147483647 - 1)");
  CHECK(long_long_literal(std::numeric_limits<long long>::max()) == "9223372036854775807LL");
  CHECK(long_long_literal(std::numeric_limits<long long>::min()) == "(-9223372036854775807LL - 1)");
  CHECK(long_long_literal(-1) == "-1LL");
}

TEST_CASE("float and double literals read back exactly") {
  for (float v : {0.0f, -0.0f, 1.0f, 0.1f, 1.0f / 3.0f, 3.4028235e38f, 1.17549435e-38f, 1e-45f,
                  -123456.789f, 16777217.0f, 1e20f}) {
    CAPTURE(v);
    std::string literal = float_literal(v);
    CAPTURE(literal);
    CHECK(same_bits(read_float(literal), v));
    CHECK(literal.find_first_of(".e") != std::string::npos);  // not an int literal
  }
  for (double v : {0.0, -0.0, 1.0, 0.1, 1.0 / 3.0, 1.7976931348623157e308, 4.9e-324, 2.5e-310,
                   -9007199254740993.0, 1e22}) {
    CAPTURE(v);
    std::string literal = double_literal(v);
    CAPTURE(literal);
    CHECK(same_bits(read_double(literal), v));
    CHECK(literal.find_first_of(".e") != std::string::npos);
  }
  // Random bit patterns, every finite one must come back.
  std::mt19937_64 rng(7);
  int floats = 0, doubles = 0;
  for (int i = 0; i < 20000; ++i) {
    auto bits = rng();
    auto bits32 = static_cast<std::uint32_t>(bits);
    float f;
    std::memcpy(&f, &bits32, sizeof f);
    if (std::isfinite(f)) {
      ++floats;
      if (!same_bits(read_float(float_literal(f)), f)) FAIL("float " << float_literal(f));
    }
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (std::isfinite(d)) {
      ++doubles;
      if (!same_bits(read_double(double_literal(d)), d)) FAIL("double " << double_literal(d));
    }
  }
  CHECK(floats > 10000);
  CHECK(doubles > 10000);
}
