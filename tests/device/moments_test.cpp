// kiln::Moments and merge_moments (kiln/device/block.hpp), which LayerNorm's one-pass
// kernel reduces its rows with (kiln::RowMoments: butterfly_reduce over merge_moments),
// on the host with a simulated warp.
#include <doctest/doctest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kiln/device/block.hpp"

namespace {

using kiln::Moments;

bool same_bits(const Moments& a, const Moments& b) {
  return std::bit_cast<std::uint32_t>(a.n) == std::bit_cast<std::uint32_t>(b.n) &&
         std::bit_cast<std::uint32_t>(a.mean) == std::bit_cast<std::uint32_t>(b.mean) &&
         std::bit_cast<std::uint32_t>(a.m2) == std::bit_cast<std::uint32_t>(b.m2);
}

// A thread's Moments as kernels/norm.cu computes them from its registers.
Moments of(const std::vector<float>& v) {
  if (v.empty()) return {0.0f, 0.0f, 0.0f};
  float diff = 0.0f;
  for (float x : v) diff += x - v[0];
  const float n = float(v.size());
  Moments m{n, v[0] + diff / n, 0.0f};
  for (float x : v) m.m2 += (x - m.mean) * (x - m.mean);
  return m;
}

constexpr int kLanes = 32;
using Warp = std::array<Moments, kLanes>;

struct Merge {
  Warp operator()(const Warp& a, const Warp& b) const {
    Warp r;
    for (int l = 0; l < kLanes; ++l) r[size_t(l)] = kiln::merge_moments(a[size_t(l)], b[size_t(l)]);
    return r;
  }
};
struct ShuffleXor {
  Warp operator()(const Warp& v, int mask) const {
    Warp r;
    for (int l = 0; l < kLanes; ++l) r[size_t(l)] = v[size_t(l ^ mask)];
    return r;
  }
};

// The lanes' values reduced over the warp: every lane must hold the same bits.
Moments reduce(const std::vector<std::vector<float>>& lanes) {
  Warp w;
  for (int l = 0; l < kLanes; ++l) w[size_t(l)] = of(lanes[size_t(l)]);
  const Warp out = kiln::butterfly_reduce<kLanes>(w, Merge{}, ShuffleXor{});
  for (int l = 1; l < kLanes; ++l) {
    CAPTURE(l);
    CHECK(same_bits(out[size_t(l)], out[0]));
  }
  return out[0];
}

}  // namespace

TEST_CASE("merge_moments: either order gives the same bits; an empty set is the identity") {
  std::mt19937 rng(7);
  std::normal_distribution<float> value(3.0f, 10.0f);
  for (int t = 0; t < 1000; ++t) {
    std::vector<float> a(1 + rng() % 16), b(1 + rng() % 16);
    for (float& x : a) x = value(rng);
    for (float& x : b) x = value(rng);
    CHECK(same_bits(kiln::merge_moments(of(a), of(b)), kiln::merge_moments(of(b), of(a))));
    CHECK(same_bits(kiln::merge_moments(of(a), of({})), of(a)));
    CHECK(same_bits(kiln::merge_moments(of({}), of(b)), of(b)));
  }
}

TEST_CASE("a warp's Moments: the same bits in every lane, the mean and variance of the whole") {
  std::mt19937 rng(11);
  for (float offset : {0.0f, 1e4f, -3e5f}) {
    CAPTURE(offset);
    std::normal_distribution<float> value(offset, 1.0f);
    std::vector<std::vector<float>> lanes(kLanes);
    double sum = 0;
    std::size_t n = 0;
    for (int l = 0; l < kLanes; ++l) {
      lanes[size_t(l)].resize(l < 29 ? 16 : (l == 29 ? 8 : 0));  // ragged: short and empty lanes
      for (float& x : lanes[size_t(l)]) {
        x = value(rng);
        sum += x;
        ++n;
      }
    }
    const double mean = sum / double(n);
    double m2 = 0;
    for (const auto& lane : lanes) {
      for (float x : lane) m2 += (x - mean) * (x - mean);
    }
    const Moments m = reduce(lanes);
    CHECK(m.n == float(n));
    CHECK(m.mean == doctest::Approx(mean).epsilon(1e-6));
    // No cancellation: the variance of values around 1e4 or -3e5 comes out as well as that
    // of values around 0 (a sum of squares less the squared sum would lose it all in f32).
    CHECK(m.m2 / m.n == doctest::Approx(m2 / double(n)).epsilon(offset == 0.0f ? 1e-5 : 2e-2));
  }
}

TEST_CASE("a constant row: its value exactly as the mean, no variance, whatever the lanes hold") {
  for (float c : {60000.3f, 0.1f, -7.25e-3f, 1e30f}) {
    CAPTURE(c);
    std::vector<std::vector<float>> lanes(kLanes);
    for (int l = 0; l < kLanes; ++l) lanes[size_t(l)].assign(size_t(l % 5 == 4 ? 0 : 3 + l % 4), c);
    const Moments m = reduce(lanes);
    CHECK(m.mean == c);
    CHECK(m.m2 == 0.0f);
  }
}

namespace {

// LayerNorm's split rows on the host: slices of `slice` elements (the last one ragged),
// each's Moments as a slice publishes them (its sums shifted by its own first element),
// slice s held by lane s % 32, then gathered as kernels/norm.cu's gathered_stats does: the
// offsets from slice 0's mean and the spreads summed in each lane in slice order, then
// over the lanes by a butterfly, which must leave the same bits in every lane.
struct Gathered {
  float mean, m2;
};
Gathered gather(const std::vector<float>& row, std::size_t slice) {
  std::vector<Moments> parts;
  for (std::size_t at = 0; at < row.size(); at += slice) {
    const std::size_t end = std::min(row.size(), at + slice);
    const float shift = row[at];
    float sa = 0.0f, sb = 0.0f;
    for (std::size_t i = at; i < end; ++i) {
      const float d = row[i] - shift;
      sa += d;
      sb += d * d;
    }
    const float n = float(end - at);
    const float m2 = sb - sa * (sa / n);
    parts.push_back({n, shift + sa / n, m2 > 0.0f ? m2 : 0.0f});
  }
  const float inv_total = 1.0f / float(row.size());
  auto over_lanes = [](std::array<float, kLanes> v) {
    const auto out = kiln::butterfly_reduce<kLanes>(
        v,
        [](const std::array<float, kLanes>& a, const std::array<float, kLanes>& b) {
          std::array<float, kLanes> r;
          for (int l = 0; l < kLanes; ++l) r[size_t(l)] = a[size_t(l)] + b[size_t(l)];
          return r;
        },
        [](const std::array<float, kLanes>& a, int mask) {
          std::array<float, kLanes> r;
          for (int l = 0; l < kLanes; ++l) r[size_t(l)] = a[size_t(l ^ mask)];
          return r;
        });
    for (int l = 1; l < kLanes; ++l)
      CHECK(std::bit_cast<std::uint32_t>(out[size_t(l)]) == std::bit_cast<std::uint32_t>(out[0]));
    return out[0];
  };
  const float reference = parts[0].mean;
  std::array<float, kLanes> offset{};
  for (std::size_t s = 0; s < parts.size(); ++s) {
    offset[s % kLanes] += kiln::gathered_offset(parts[s], reference);
  }
  const float mean = reference + over_lanes(offset) * inv_total;
  std::array<float, kLanes> spread{};
  for (std::size_t s = 0; s < parts.size(); ++s) {
    spread[s % kLanes] += kiln::gathered_spread(parts[s], mean);
  }
  return {mean, over_lanes(spread)};
}

}  // namespace

TEST_CASE("gathered Moments (LayerNorm's split rows): the mean and variance of the row") {
  std::mt19937 rng(5);
  // Rows of 1M in 128 slices of 8192 (4 a lane) and in 64 (2 a lane); of 100000 in 13
  // slices, the last ragged (lanes without one).
  const std::pair<std::size_t, std::size_t> shapes[] = {
      {1 << 20, 8192}, {1 << 20, 16384}, {100000, 8192}};
  for (const auto& [cols, slice] : shapes) {
    for (float offset : {0.0f, 1e4f, -3e5f}) {
      CAPTURE(cols);
      CAPTURE(offset);
      // Slices of different means and spreads: the part between them counts too.
      std::vector<float> row(cols);
      std::normal_distribution<float> shift(0.0f, 4.0f);
      for (std::size_t at = 0; at < cols; at += slice) {
        std::normal_distribution<float> value(offset + shift(rng), 1.0f + float(at / slice % 3));
        for (std::size_t i = at; i < std::min(cols, at + slice); ++i) row[i] = value(rng);
      }
      double sum = 0;
      for (float x : row) sum += x;
      const double mean = sum / double(cols);
      double m2 = 0;
      for (float x : row) m2 += (x - mean) * (x - mean);
      const Gathered g = gather(row, slice);
      CHECK(g.mean == doctest::Approx(mean).epsilon(1e-6));
      CHECK(g.m2 / double(cols) ==
            doctest::Approx(m2 / double(cols)).epsilon(offset == 0.0f ? 1e-4 : 2e-2));
    }
  }
}

TEST_CASE("gathered Moments of a constant row: its value exactly, no variance") {
  for (float c : {60000.0f, 0.1f, -7.25e-3f, 1e30f}) {
    CAPTURE(c);
    for (std::size_t cols : {std::size_t(1) << 20, std::size_t(100000)}) {
      const Gathered g = gather(std::vector<float>(cols, c), 8192);
      CHECK(g.mean == c);
      CHECK(g.m2 == 0.0f);
    }
  }
}
