#pragma once
// What benchmarks/softmax and benchmarks/norm share: f16 / bf16 / f32 rows as bytes on the
// host (random inputs, decoding for spot checks), their --shapes / --dtypes lists, and a
// result's GB/s by name.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/gen/dtype.hpp"
#include "kiln/prof.hpp"

namespace bench {

/// The value at `p`, stored as `dt` (f16: normal numbers, as make_input gives).
inline float decode(kiln::gen::DType dt, const unsigned char* p) {
  if (dt == kiln::gen::DType::f32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  std::uint16_t b;
  std::memcpy(&b, p, 2);
  if (dt == kiln::gen::DType::bf16) {
    const std::uint32_t bits = std::uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  const int e = (b >> 10) & 31, m = b & 1023;
  const float v = e == 0 ? std::ldexp(float(m), -24) : std::ldexp(float(m | 1024), e - 25);
  return (b & 0x8000) ? -v : v;
}

/// `n` random values of dtype `dt` as bytes, from `seed`: f32 in [-2, 2), f16 and bf16 in
/// +-[0.5, 2).
inline std::vector<unsigned char> make_input(kiln::gen::DType dt, std::size_t n,
                                             std::uint32_t seed = 12345) {
  const std::size_t esize = std::size_t(kiln::gen::size_of(dt));
  std::vector<unsigned char> out(n * esize);
  std::uint32_t state = seed;
  for (std::size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    const std::uint32_t r = state >> 8;
    if (dt == kiln::gen::DType::f32) {
      const float f = float(r) / float(1u << 24) * 4.0f - 2.0f;
      std::memcpy(&out[i * 4], &f, 4);
    } else {
      // sign, exponent of 1.0 or 0.5, random mantissa: +-[0.5, 2)
      const std::uint16_t b = dt == kiln::gen::DType::f16 ? std::uint16_t(0x3800 | (r & 0x87ff))
                                                          : std::uint16_t(0x3f00 | (r & 0x80ff));
      std::memcpy(&out[i * 2], &b, 2);
    }
  }
  return out;
}

inline std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
  return out;
}

/// GB/s of the result named `name` (0 where there is none).
inline double gbps_of(const std::vector<kiln::prof::Result>& rs, const std::string& name) {
  for (const auto& r : rs) {
    if (r.name == name) return r.gbps();
  }
  return 0;
}

}  // namespace bench
