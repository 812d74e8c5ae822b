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
