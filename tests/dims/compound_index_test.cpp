// Compound indices (kiln/dims/compound_index.hpp): a linear index seen as typed coordinates.
#include <doctest/doctest.h>

#include <initializer_list>
#include <type_traits>

#include "kiln/dims/compound_index.hpp"

namespace {

KILN_DIM(WARP);
KILN_DIM(LANE);
KILN_DIM(IB);
KILN_DIM(JB);
KILN_DIM(I);
KILN_DIM(K);
using I16 = kiln::Fold<I, 16>;
using K8 = kiln::Fold<K, 8>;
using kiln::dynamic;
using kiln::Extent;

constexpr int kWarps = 4;
using Threads = kiln::CompoundIndex<Extent<WARP, kWarps>, Extent<LANE, kiln::warp_size>>;
static_assert(kiln::warp_size == 32 || kiln::warp_size == 64);
static_assert(Threads(kiln::warp_size + 5).get<WARP>() == WARP(1));
static_assert(Threads(kiln::warp_size + 5).get<LANE>() == LANE(5));
static_assert(std::is_same_v<decltype(Threads(0).get<LANE>()), LANE>);
static_assert(std::is_same_v<decltype(Threads(0).size<WARP>()), WARP>);
static_assert(std::is_same_v<decltype(Threads(0).coords()), kiln::Coords<WARP, LANE>>);

}  // namespace

TEST_CASE("compound index: WARP x LANE") {
  const int n = kWarps * kiln::warp_size;
  for (int t = 0; t < n; ++t) {
    Threads idx(t);
    CHECK(idx.linear() == t);
    CHECK(idx.get<WARP>() == WARP(t / kiln::warp_size));
    CHECK(idx.get<LANE>() == LANE(t % kiln::warp_size));
    CHECK(idx.get<WARP>().get() * kiln::warp_size + idx.get<LANE>().get() == t);
    CHECK(idx.coords() == (WARP(t / kiln::warp_size) + LANE(t % kiln::warp_size)));
    CHECK(idx.in_bounds());
  }
  Threads idx(37);
  CHECK(idx.size() == n);
  CHECK(idx.size<WARP>() == WARP(kWarps));
  CHECK(idx.size<LANE>() == LANE(kiln::warp_size));
  CHECK_FALSE(Threads(n).in_bounds());
  CHECK(Threads(n).get<WARP>() == WARP(kWarps));  // past the end: the outermost grows
  CHECK(Threads(n).get<LANE>() == LANE(0));
  CHECK_FALSE(Threads(-1).in_bounds());
  CHECK(Threads(n - 1).in_bounds());
}

TEST_CASE("compound index: run-time sizes, given in any order") {
  using Blocks = kiln::CompoundIndex<Extent<IB, dynamic>, Extent<JB, dynamic>>;
  for (int b = 0; b < 15; ++b) {
    Blocks x(b, IB(3), JB(5));
    Blocks y(b, JB(5), IB(3));
    for (const Blocks& idx : {x, y}) {
      CHECK(idx.size() == 15);
      CHECK(idx.size<IB>() == IB(3));
      CHECK(idx.size<JB>() == JB(5));
      CHECK(idx.get<IB>() == IB(b / 5));
      CHECK(idx.get<JB>() == JB(b % 5));
      CHECK(idx.linear() == b);
      CHECK(idx.in_bounds());
    }
  }
  CHECK_FALSE(Blocks(15, IB(3), JB(5)).in_bounds());
  CHECK(Blocks(15, IB(4), JB(5)).in_bounds());
  CHECK(Blocks(15, IB(4), JB(5)).get<IB>() == IB(3));
  CHECK(Blocks(15, IB(4), JB(5)).get<JB>() == JB(0));
  CHECK(Blocks(15, IB(5), JB(3)).get<JB>() == JB(0));
  CHECK(Blocks(15, IB(5), JB(3)).get<IB>() == IB(5));
  // Warps counted at run time, lanes at compile time (as in a kernel).
  using T = kiln::CompoundIndex<Extent<WARP, dynamic>, Extent<LANE, kiln::warp_size>>;
  T t(3 * kiln::warp_size + 7, WARP(8));
  CHECK(t.size() == 8 * kiln::warp_size);
  CHECK(t.size<WARP>() == WARP(8));
  CHECK(t.get<WARP>() == WARP(3));
  CHECK(t.get<LANE>() == LANE(7));
}

TEST_CASE("compound index: folded dimensions") {
  // (I16:4, K8:8) maps 0..31 to I in steps of 16 and K in steps of 8.
  using F = kiln::CompoundIndex<Extent<I16, 4>, Extent<K8, 8>>;
  for (int l = 0; l < 32; ++l) {
    F idx(l);
    CHECK(idx.get<I>() == I((l / 8) * 16));
    CHECK(idx.get<K>() == K((l % 8) * 8));
    CHECK(idx.get<I16>() == I16(l / 8));
    CHECK(idx.get<K8>().get() == l % 8);
    CHECK(idx.get<kiln::Fold<K, 4>>().get() == (l % 8) * 2);
    CHECK(idx.in_bounds());
  }
  CHECK(F(0).size() == 32);
  CHECK(F(0).size<I16>() == I16(4));
  CHECK(F(0).size<I16>().base_units() == 64);
  // Two folds of one dimension merge into one value.
  using G = kiln::CompoundIndex<Extent<K8, 4>, Extent<K, 8>>;
  for (int l = 0; l < 32; ++l) {
    G idx(l);
    CHECK(idx.get<K>() == K(l));
    CHECK(idx.get<K8>() == K8(l / 8));
    CHECK(idx.get<kiln::Module<K, 8>>().get() == l % 8);
  }
}
