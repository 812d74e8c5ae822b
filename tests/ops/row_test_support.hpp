#pragma once
// What the GPU tests of kiln's row ops (softmax, LayerNorm, RMSNorm) share: the ragged
// shapes the ops are called on, elements as f16 / bf16 / f32 bit patterns, and the
// rounding of the storage type that no kernel avoids.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../half_bits.hpp"
#include "kiln/gen/dtype.hpp"

namespace kiln_test {

struct RowShape {
  std::int64_t rows;
  int cols;
};
/// One element, a single row, odd and prime lengths, a warp's, around the one-pass limit,
/// long rows of both passes and the longest supported (2^20).
inline constexpr RowShape ragged_row_shapes[] = {
    {1, 1},    {1000, 1}, {333, 3},   {100, 100}, {2049, 128}, {5, 513},    {64, 1024},  {31, 2047},
    {9, 4096}, {5, 8192}, {3, 16384}, {3, 32768}, {2, 65536},  {3, 100003}, {2, 1 << 20}};

/// `f` stored as `dt`: T is std::uint16_t for f16 / bf16, std::uint32_t for f32.
template <class T>
T encode(kiln::gen::DType dt, float f) {
  if constexpr (sizeof(T) == 4) {
    T b;
    std::memcpy(&b, &f, 4);
    return b;
  } else {
    return dt == kiln::gen::DType::f16 ? float_to_half(f) : float_to_bf16(f);
  }
}
/// The value of `b`, stored as `dt`.
template <class T>
double decode(kiln::gen::DType dt, T b) {
  if constexpr (sizeof(T) == 4) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  } else {
    return dt == kiln::gen::DType::f16 ? half_to_float(b) : bf16_to_float(b);
  }
}

/// Half a unit in the last place of `v` in the storage type `dt` (subnormals included).
inline double half_ulp(kiln::gen::DType dt, double v) {
  const int bits = dt == kiln::gen::DType::f16 ? 10 : dt == kiln::gen::DType::bf16 ? 7 : 23;
  const int min_exp = dt == kiln::gen::DType::f16 ? -14 : -126;
  const int e = v == 0 ? min_exp : std::max(min_exp, std::ilogb(v));
  return std::ldexp(1.0, e - bits - 1);
}

}  // namespace kiln_test
