// Whole-tensor helpers (kiln/dims/algorithms.hpp): for_each, fill, zero, copy.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "kiln/dims/algorithms.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;
using kiln::dynamic;
using kiln::Extent;
using kiln::Tensor;

std::vector<float> iota_buffer(int n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int e = 0; e < n; ++e) v[static_cast<std::size_t>(e)] = static_cast<float>(1000 + e);
  return v;
}

float at(const std::vector<float>& v, int e) {
  return v[static_cast<std::size_t>(e)];
}

// (I:3, J:4, K:5) with I padded to a stride of 24 (J*K = 20 elements used).
using Padded = Tensor<float, Extent<I, 3, 24>, Extent<J, 4>, Extent<K, 5>>;
constexpr int kPaddedBuf = 3 * 24;
bool padded_is_used(int off) {
  return off % 24 < 20;
}

// (K8:2, I:3, K:8): K runs 0..15 over two folds.
using Folded = Tensor<float, Extent<K8, 2>, Extent<I, 3>, Extent<K, 8>>;

}  // namespace

TEST_CASE("for_each visits every index point exactly once") {
  SUBCASE("three static dims") {
    std::vector<float> buf(kPaddedBuf);
    Padded t(buf.data());
    int visits[3][4][5] = {};
    int calls = 0;
    kiln::for_each(t, [&](const auto& c) {
      static_assert(std::is_same_v<std::remove_cvref_t<decltype(c)>, kiln::Coords<I, J, K>>);
      REQUIRE(t.in_bounds(c));
      ++visits[kiln::get<I>(c).get()][kiln::get<J>(c).get()][kiln::get<K>(c).get()];
      ++calls;
    });
    CHECK(calls == 60);
    for (auto& plane : visits)
      for (auto& row : plane)
        for (int v : row) CHECK(v == 1);
  }
  SUBCASE("folds: coordinates come merged") {
    std::vector<float> buf(48);
    Folded t(buf.data());
    int visits[3][16] = {};
    kiln::for_each(t, [&](const auto& c) {
      static_assert(std::is_same_v<std::remove_cvref_t<decltype(c)>, kiln::Coords<K, I>>);
      REQUIRE(t.in_bounds(c));
      ++visits[kiln::get<I>(c).get()][kiln::get<K>(c).get()];
    });
    for (auto& row : visits)
      for (int v : row) CHECK(v == 1);
  }
  SUBCASE("run-time sizes") {
    std::vector<float> buf(35);
    Tensor<float, Extent<I, dynamic>, Extent<K, dynamic>> t(buf.data(), I(5), K(7));
    std::vector<int> hits(35, 0);
    kiln::for_each(
        t, [&](const auto& c) { ++hits[static_cast<std::size_t>(t[c].ptr() - buf.data())]; });
    for (int h : hits) CHECK(h == 1);
  }
  SUBCASE("partitioned: every point once across all ranks") {
    std::vector<float> buf(kPaddedBuf);
    Padded t(buf.data());
    for (int count = 1; count <= 7; ++count) {
      int visits[3][4][5] = {};
      for (int rank = 0; rank < count; ++rank) {
        int mine = 0;
        kiln::for_each(
            t,
            [&](const auto& c) {
              REQUIRE(t.in_bounds(c));
              ++visits[kiln::get<I>(c).get()][kiln::get<J>(c).get()][kiln::get<K>(c).get()];
              ++mine;
            },
            rank, count);
        // Rank r of count gets the linear indices r, r + count, ...
        CHECK(mine == (60 - rank + count - 1) / count);
      }
      for (auto& plane : visits)
        for (auto& row : plane)
          for (int v : row) CHECK(v == 1);
    }
  }
}

TEST_CASE("fill and zero touch every element and nothing else") {
  SUBCASE("fill") {
    auto buf = iota_buffer(kPaddedBuf);
    Padded t(buf.data());
    kiln::fill(t, 7);  // converted to the element type
    for (int e = 0; e < kPaddedBuf; ++e)
      CHECK(at(buf, e) == (padded_is_used(e) ? 7.0f : static_cast<float>(1000 + e)));
  }
  SUBCASE("zero") {
    auto buf = iota_buffer(kPaddedBuf);
    Padded t(buf.data());
    kiln::zero(t);
    for (int e = 0; e < kPaddedBuf; ++e)
      CHECK(at(buf, e) == (padded_is_used(e) ? 0.0f : static_cast<float>(1000 + e)));
  }
  SUBCASE("fill a folded tensor") {
    auto buf = iota_buffer(48);
    Folded t(buf.data());
    kiln::fill(t, -2.5f);
    for (int e = 0; e < 48; ++e) CHECK(at(buf, e) == -2.5f);
  }
  SUBCASE("fill a slice") {
    auto buf = iota_buffer(kPaddedBuf);
    Padded t(buf.data());
    kiln::fill(t.slice<2>(J(1)).slice<3>(K(2)), 5.0f);
    for (int e = 0; e < kPaddedBuf; ++e) {
      const int j = (e % 24) / 5;
      const int k = (e % 24) % 5;
      const bool inside = padded_is_used(e) && j >= 1 && j < 3 && k >= 2;
      CHECK(at(buf, e) == (inside ? 5.0f : static_cast<float>(1000 + e)));
    }
  }
  SUBCASE("partitioned fill: each rank writes its own share") {
    for (int count = 1; count <= 7; ++count) {
      auto buf = iota_buffer(kPaddedBuf);
      Padded t(buf.data());
      for (int rank = 0; rank < count; ++rank)
        kiln::fill(t, static_cast<float>(rank + 1), rank, count);
      // The element at linear index n (over the layout, last fastest) belongs to rank n % count.
      int n = 0;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j)
          for (int k = 0; k < 5; ++k, ++n)
            CHECK(*t[I(i)][J(j)][K(k)] == static_cast<float>(n % count + 1));
      for (int e = 0; e < kPaddedBuf; ++e)
        if (!padded_is_used(e)) CHECK(at(buf, e) == static_cast<float>(1000 + e));
    }
  }
  SUBCASE("partitioned zero") {
    auto buf = iota_buffer(kPaddedBuf);
    Padded t(buf.data());
    kiln::zero(t, 1, 3);
    int zeros = 0;
    for (int e = 0; e < kPaddedBuf; ++e) zeros += at(buf, e) == 0.0f;
    CHECK(zeros == 20);
    kiln::zero(t, 0, 3);
    kiln::zero(t, 2, 3);
    for (int e = 0; e < kPaddedBuf; ++e)
      CHECK(at(buf, e) == (padded_is_used(e) ? 0.0f : static_cast<float>(1000 + e)));
  }
}

TEST_CASE("copy matches elements by coordinates") {
  SUBCASE("a transpose") {
    auto in = iota_buffer(12);
    std::vector<float> out(12, 0.0f);
    Tensor<const float, Extent<I, 3>, Extent<K, 4>> src(in.data());
    Tensor<float, Extent<K, 4>, Extent<I, 3>> dst(out.data());
    kiln::copy(dst, src);
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) CHECK(at(out, k * 3 + i) == at(in, i * 4 + k));
  }
  SUBCASE("into a padded, folded layout from a plain one") {
    auto in = iota_buffer(3 * 16);
    std::vector<float> out(2 * 3 * 10, -1.0f);
    Tensor<const float, Extent<I, 3>, Extent<K, 16>> src(in.data());
    Tensor<float, Extent<K8, 2>, Extent<I, 3, 10>, Extent<K, 8>> dst(out.data());
    kiln::copy(dst, src);
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 16; ++k)
        CHECK(at(out, (k / 8) * 30 + i * 10 + k % 8) == at(in, i * 16 + k));
    for (int e = 0; e < 60; ++e)
      if (e % 10 >= 8) CHECK(at(out, e) == -1.0f);
  }
  SUBCASE("dimensions the source lacks are ignored (a broadcast)") {
    auto in = iota_buffer(4);
    std::vector<float> out(12, 0.0f);
    Tensor<const float, Extent<K, 4>> src(in.data());
    Tensor<float, Extent<I, 3>, Extent<K, 4>> dst(out.data());
    kiln::copy(dst, src);
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) CHECK(at(out, i * 4 + k) == at(in, k));
  }
  SUBCASE("partitioned transpose covers every element exactly once") {
    auto in = iota_buffer(5 * 7);
    Tensor<const float, Extent<I, 5>, Extent<K, 7>> src(in.data());
    for (int count = 1; count <= 8; ++count) {
      std::vector<float> out(35, 0.0f);
      Tensor<float, Extent<K, 7>, Extent<I, 5>> dst(out.data());
      // Each rank adds its share on top: an element written twice would show as a double.
      std::vector<float> scratch(35, 0.0f);
      Tensor<float, Extent<K, 7>, Extent<I, 5>> part(scratch.data());
      for (int rank = 0; rank < count; ++rank) {
        std::fill(scratch.begin(), scratch.end(), 0.0f);
        kiln::copy(part, src, rank, count);
        for (int e = 0; e < 35; ++e) out[static_cast<std::size_t>(e)] += at(scratch, e);
      }
      for (int i = 0; i < 5; ++i)
        for (int k = 0; k < 7; ++k) CHECK(*dst[I(i)][K(k)] == at(in, i * 7 + k));
    }
  }
  SUBCASE("swizzled destination") {
    auto in = iota_buffer(8 * 64);
    std::vector<float> out(8 * 64, 0.0f);
    Tensor<const float, Extent<I, 8>, Extent<K, 64>> src(in.data());
    kiln::SwizzledTensor<float, kiln::Swizzle<3, 2, 4>, Extent<I, 8>, Extent<K, 64>> dst(
        out.data());
    kiln::copy(dst, src, 1, 2);
    kiln::copy(dst, src, 0, 2);
    for (int i = 0; i < 8; ++i)
      for (int k = 0; k < 64; ++k) {
        CHECK(*dst[I(i)][K(k)] == at(in, i * 64 + k));
        CHECK(at(out, i * 64 + (k ^ (i << 2))) == at(in, i * 64 + k));
      }
  }
}
