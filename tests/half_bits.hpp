#pragma once
// 16-bit floats as bits on the host (IEEE binary16 and bfloat16), rounding to nearest even:
// for GPU tests that fill f16 / bf16 buffers and read them back, whatever 16-bit types the
// host compiler has.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace kiln_test {

inline float half_to_float(std::uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (e == 31) return m ? NAN : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(float(m), -24);
  return sign * std::ldexp(float(m | 1024), e - 25);
}
inline std::uint16_t float_to_half(float f) {  // for finite values in range
  const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(double(f));
  if (a == 0) return sign;
  int e = std::ilogb(a);
  if (e < -14) e = -14;  // subnormal: a fixed step of 2^-24
  const double step = std::ldexp(1.0, e - 10);
  const double q = std::nearbyint(a / step);  // ties to even (default rounding mode)
  const double v = q * step;
  if (v >= 65520.0) return std::uint16_t(sign | 0x7c00);
  if (v < std::ldexp(1.0, -14)) return std::uint16_t(sign | std::uint16_t(q));
  const int ve = std::ilogb(v);
  const int mant = int(std::ldexp(v, 10 - ve)) - 1024;
  return std::uint16_t(sign | ((ve + 15) << 10) | mant);
}
inline float bf16_to_float(std::uint16_t b) {
  const std::uint32_t bits = std::uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return std::uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// The distance between two finite values of one 16-bit type (both f16 or both bf16), in
// units in the last place: their bit patterns as ordered integers (+0 and -0 alike).
inline int ulp_distance16(std::uint16_t a, std::uint16_t b) {
  const auto ordered = [](std::uint16_t x) { return (x & 0x8000) ? -int(x & 0x7fff) : int(x); };
  return std::abs(ordered(a) - ordered(b));
}

}  // namespace kiln_test
