#pragma once
// What the GPU tests of kiln's row ops (softmax, LayerNorm, RMSNorm) share: the ragged
// shapes the ops are called on, elements as f16 / bf16 / f32 bit patterns, the rounding
// of the storage type that no kernel avoids, and checking the rows of a result against
// the CPU's reference on every core.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

/// What one thread of check_rows found: the values it checked, how many were wrong, the
/// worst error it was told of, and the first 5 wrong ones described.
struct RowCheckPart {
  std::size_t checked = 0;
  std::size_t bad = 0;
  double worst = 0;
  std::vector<std::string> first;
  /// One wrong value, described by `what...` (streamed).
  template <class... A>
  void fail(const A&... what) {
    if (bad++ < 5) {
      std::ostringstream line;
      (line << ... << what);
      first.push_back(line.str());
    }
  }
  /// One value's error `err` against the tolerance `tol`: wrong unless err <= tol (NaN is
  /// wrong), and the worst so far if it is a number.
  template <class... A>
  void error(double err, double tol, const A&... what) {
    if (!(err <= tol)) fail(what...);
    if (!std::isnan(err)) worst = std::max(worst, err);
  }
};

/// The parts parallel_rows cuts `rows` rows into: as many as the machine has cores, at most
/// one a row, at least one.
inline std::size_t row_parts(std::int64_t rows) {
  return std::size_t(std::max<std::int64_t>(
      1, std::min<std::int64_t>(rows, std::max(1u, std::thread::hardware_concurrency()))));
}

/// Calls fn(part, first_row, end_row) for the row_parts(rows) parts of [0, rows), one thread
/// each. `fn` must only read what the threads share and write what is its part's alone.
template <class F>
void parallel_rows(std::int64_t rows, F fn) {
  const auto parts = std::int64_t(row_parts(rows));
  if (parts == 1) {
    fn(std::size_t(0), std::int64_t(0), rows);
    return;
  }
  std::vector<std::thread> threads;
  for (std::int64_t i = 0; i < parts; ++i) {
    threads.emplace_back(fn, std::size_t(i), rows * i / parts, rows * (i + 1) / parts);
  }
  for (auto& t : threads) t.join();
}

/// fn(part, first_row, end_row) over parallel_rows, each part writing its own RowCheckPart,
/// and their findings merged in row order: counts summed, the worst of the worsts, the
/// first 5 wrong values of all.
template <class F>
RowCheckPart check_rows(std::int64_t rows, F fn) {
  std::vector<RowCheckPart> found(row_parts(rows));
  parallel_rows(
      rows, [&](std::size_t part, std::int64_t r0, std::int64_t r1) { fn(found[part], r0, r1); });
  RowCheckPart all;
  for (const RowCheckPart& p : found) {
    all.checked += p.checked;
    all.bad += p.bad;
    all.worst = std::max(all.worst, p.worst);
    for (const std::string& line : p.first) {
      if (all.first.size() < 5) all.first.push_back(line);
    }
  }
  return all;
}

}  // namespace kiln_test
