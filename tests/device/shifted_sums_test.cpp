// kiln::ShiftedSums, reshifted, union_of (kiln/device/block.hpp): LayerNorm's sums, as
// kernels/norm.cu takes them, on the host. Each thread sums its elements about the
// pairwise mean of its first vector; a warp's union_of runs here in lock step, one host
// thread a lane (a barrier at each of its sums, which add over the lanes by the same
// butterfly as kiln::warp_sum); then the row's warps' as row_reduce takes them (lane i
// holding warp i's). Checked against double precision: rows with an outlier first, a huge
// offset, constant rows (their value exactly, no variance) and ragged rows.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "kiln/device/block.hpp"

namespace {

using kiln::ShiftedSums;

constexpr int kLanes = 32;

bool same_bits(const ShiftedSums& a, const ShiftedSums& b) {
  auto bits = [](float x) { return std::bit_cast<std::uint32_t>(x); };
  return bits(a.n) == bits(b.n) && bits(a.k) == bits(b.k) && bits(a.a) == bits(b.a) &&
         bits(a.b) == bits(b.b);
}

/// shifted_union over `lanes` parts (a power of 2, at most 32), each lane on a host thread
/// of its own, about lane 0's shift (as RowShiftedSums::lanes takes it); every lane's
/// result, and whether the lanes took union_of's two steps.
struct WarpUnion {
  std::vector<ShiftedSums> lanes;
  bool two_steps = false;
};
WarpUnion warp_union(const std::vector<ShiftedSums>& parts) {
  const std::size_t lanes = parts.size();
  std::vector<float> posted(lanes);
  std::vector<char> voted(lanes);
  WarpUnion out{std::vector<ShiftedSums>(lanes)};
  std::barrier<> step{std::ptrdiff_t(lanes)};
  auto lane = [&](std::size_t l) {
    // kiln::warp_sum's butterfly: at each step a lane adds the value of lane l ^ mask.
    auto sum = [&](float x) {
      posted[l] = x;
      step.arrive_and_wait();
      std::vector<float> v = posted;
      step.arrive_and_wait();
      for (std::size_t mask = lanes / 2; mask > 0; mask /= 2) {
        std::vector<float> next(lanes);
        for (std::size_t i = 0; i < lanes; ++i) next[i] = v[i] + v[i ^ mask];
        v = next;
      }
      return v[l];
    };
    auto any = [&](bool p) {  // kiln::any_lane
      voted[l] = p;
      step.arrive_and_wait();
      const bool anyone = std::any_of(voted.begin(), voted.end(), [](char c) { return c != 0; });
      step.arrive_and_wait();
      if (l == 0) out.two_steps = anyone;
      return anyone;
    };
    out.lanes[l] = kiln::shifted_union(parts[l], parts[0].k, sum, any);
  };
  std::vector<std::thread> threads;
  for (std::size_t l = 0; l < lanes; ++l) threads.emplace_back(lane, l);
  for (auto& t : threads) t.join();
  for (std::size_t l = 1; l < lanes; ++l) {
    CAPTURE(l);
    CHECK(same_bits(out.lanes[l], out.lanes[0]));
  }
  return out;
}

/// A thread's part as kernels/norm.cu's Part takes it: vectors t, t + threads, ... of
/// `vec` elements, `iters` at a time (multi pass's steps) summed about the pairwise mean
/// of their first, each step's sums merged into the thread's.
ShiftedSums thread_part(const std::vector<float>& row, int t, int threads, int vec, int iters) {
  ShiftedSums total{0.0f, 0.0f, 0.0f, 0.0f};
  const std::size_t vecs = row.size() / std::size_t(vec);
  std::size_t v = std::size_t(t);
  while (v < vecs) {
    ShiftedSums s{0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < iters && v < vecs; ++i, v += std::size_t(threads)) {
      const float* h = row.data() + v * std::size_t(vec);
      if (i == 0) {
        std::vector<float> m(h, h + vec);
        for (int w = vec / 2; w > 0; w /= 2) {
          for (int j = 0; j < w; ++j) {
            m[std::size_t(j)] = (m[std::size_t(j)] + m[std::size_t(j + w)]) * 0.5f;
          }
        }
        s.k = m[0];
      }
      for (int j = 0; j < vec; ++j) {
        const float d = h[j] - s.k;
        s.a += d;
        s.b += d * d;
      }
      s.n += float(vec);
    }
    total = kiln::merged(total, s);
  }
  return total;
}

/// The row's sums as a block of `threads` (whole warps) reduces them: each warp's union,
/// then the warps' (row_reduce's second level); `two_steps` counts the unions that took
/// union_of's two steps.
ShiftedSums row_sums(const std::vector<float>& row, int threads, int vec, int iters,
                     int* two_steps = nullptr) {
  std::vector<ShiftedSums> warps;
  int twice = 0;
  for (int w = 0; w < threads / kLanes; ++w) {
    std::vector<ShiftedSums> parts;
    for (int l = 0; l < kLanes; ++l)
      parts.push_back(thread_part(row, w * kLanes + l, threads, vec, iters));
    const WarpUnion u = warp_union(parts);
    twice += u.two_steps;
    warps.push_back(u.lanes[0]);
  }
  ShiftedSums out = warps[0];
  if (warps.size() > 1) {
    const WarpUnion u = warp_union(warps);
    twice += u.two_steps;
    out = u.lanes[0];
  }
  if (two_steps) *two_steps = twice;
  return out;
}

struct Exact {
  double mean, var;
};
Exact exact(const std::vector<float>& row) {
  double sum = 0;
  for (float x : row) sum += x;
  const double mean = sum / double(row.size());
  double m2 = 0;
  for (float x : row) m2 += (double(x) - mean) * (double(x) - mean);
  return {mean, m2 / double(row.size())};
}

/// LayerNorm's statistics as kernels/norm.cu's layer_stats takes them from the row's sums.
Exact stats_of(const ShiftedSums& s, std::size_t cols) {
  const float inv = 1.0f / float(cols);
  const float offset = s.a * inv;
  const float var = s.b * inv - offset * offset;
  return {double(s.k + offset), double(var > 0.0f ? var : 0.0f)};
}

}  // namespace

TEST_CASE("reshifted: the same set's sums about another shift") {
  std::mt19937 rng(3);
  std::normal_distribution<float> value(50.0f, 3.0f);
  for (int t = 0; t < 200; ++t) {
    std::vector<float> v(1 + rng() % 64);
    for (float& x : v) x = value(rng);
    const ShiftedSums about_first = thread_part(v, 0, 1, 1, 64);  // about v[0]
    const Exact e = exact(v);
    const kiln::Moments m = kiln::shifted_moments(kiln::reshifted(about_first, float(e.mean)));
    CHECK(m.n == float(v.size()));
    CHECK(m.mean == doctest::Approx(e.mean).epsilon(1e-6));
    CHECK(m.m2 / m.n == doctest::Approx(e.var).epsilon(1e-4).scale(1e-3));
  }
}

TEST_CASE("union_of: a row's mean and variance whatever its data, the same bits in every lane") {
  std::mt19937 rng(17);
  struct Shape {
    std::size_t cols;
    int threads, vec, iters;
  };
  // One pass (a few elements a thread), split slices (4096 and 16384 elements of 256
  // threads), multi pass (1024 elements a thread, in steps of 8 or 16 vectors), ragged
  // rows (threads without a vector).
  const Shape shapes[] = {{8192, 256, 8, 4},     {4096, 256, 8, 2},      {16384, 128, 8, 16},
                          {1 << 20, 1024, 8, 8}, {1 << 18, 1024, 4, 16}, {1000, 128, 8, 1},
                          {100, 64, 1, 2}};
  for (const Shape& sh : shapes) {
    for (int data = 0; data < 4; ++data) {
      CAPTURE(sh.cols);
      CAPTURE(sh.threads);
      CAPTURE(data);
      std::vector<float> row(sh.cols);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      const float scale = data == 3 ? 0.0625f : 4.0f;
      for (float& x : row) {
        x = (data == 1 ? 3e5f : 5.0f) + scale * normal(rng);
        if (data == 2) x = std::round(x * 64.0f) / 64.0f;  // f16-like values
      }
      // An outlier first (f16's largest order): the row's first element as the shift
      // (as LayerNorm's sums were taken) lost 4 digits of rows of 1M to cancellation.
      if (data != 1) row[0] = 54000.0f;
      const Exact want = exact(row);
      int two_steps = 0;
      const Exact got = stats_of(row_sums(row, sh.threads, sh.vec, sh.iters, &two_steps), sh.cols);
      const double sd = std::sqrt(want.var);
      // One step of sums about each group's first shift, but where the outlier is it, or
      // near it (a thread of 32 to 128 elements: the mean of its first vector, far off the
      // warp's; multi pass's threads merge steps about their own means).
      if (data == 1) CHECK(two_steps == 0);
      if (data != 1 && sh.cols >= 4096 && sh.cols <= 16384) CHECK(two_steps > 0);
      CHECK(std::fabs(got.mean - want.mean) <= 1e-6 * (std::fabs(want.mean) + sd));
      CHECK(got.var == doctest::Approx(want.var).epsilon(1e-5));
    }
  }
}

TEST_CASE("union_of: a constant row's value exactly as its mean, no variance") {
  for (float c : {60000.3f, 0.1f, -7.25e-3f, 1e30f}) {
    for (std::size_t cols : {std::size_t(8192), std::size_t(1000), std::size_t(1) << 18}) {
      CAPTURE(c);
      CAPTURE(cols);
      const ShiftedSums s = row_sums(std::vector<float>(cols, c), 256, 8, 2);
      CHECK(s.n == float(cols));
      CHECK(stats_of(s, cols).mean == double(c));
      CHECK(s.a == 0.0f);
      CHECK(s.b == 0.0f);
    }
  }
}
