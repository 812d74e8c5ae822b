// Layouts (kiln/dims/layout.hpp): static and run-time sizes and strides.
#include <doctest/doctest.h>

#include <initializer_list>
#include <type_traits>

#include "kiln/dims/layout.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
KILN_DIM(WARP);
KILN_DIM(LANE);
using K8 = kiln::Fold<K, 8>;
using kiln::dynamic;
using kiln::Extent;
using kiln::make_layout_t;
using kiln::Stride;

// ---- all static, packed ------------------------------------------------------------
using Packed = make_layout_t<Extent<I, 64>, Extent<K, 32>>;
static_assert(std::is_same_v<Packed, kiln::Layout<Extent<I, 64, 32>, Extent<K, 32, 1>>>,
              "packed strides resolve row-major, last fastest");
static_assert(Packed::rank == 2);
static_assert(std::is_empty_v<Packed> && sizeof(Packed) == 1);
static_assert(Packed().stride<K>() == 1 && Packed().stride<I>() == 32);
static_assert(Packed().offset(I(3) + K(5)) == 3 * 32 + 5);
static_assert(Packed().num_elements() == 64 * 32);
static_assert(Packed::index_of<I> == 0 && Packed::index_of<K> == 1 && Packed::index_of<J> == -1);
static_assert(Packed::index_of<K8> == -1, "index_of names exact types");
static_assert(Packed::has_dimension<K8> && Packed::has_dimension<K> && !Packed::has_dimension<J>);
static_assert(std::is_same_v<Packed::dim_at<0>, I> && std::is_same_v<Packed::dim_at<1>, K>);
static_assert(Packed::contiguous_index == 1);

using Packed3 = make_layout_t<Extent<I, 2>, Extent<J, 3>, Extent<K, 4>>;
static_assert(Packed3::extent_at<0>::stride == 12 && Packed3::extent_at<1>::stride == 4 &&
              Packed3::extent_at<2>::stride == 1);
static_assert(std::is_empty_v<Packed3>);

// ---- explicit strides (padding) ------------------------------------------------------
using Padded = make_layout_t<Extent<I, 64, 40>, Extent<K, 32>>;
static_assert(Padded::extent_at<0>::stride == 40 && Padded::extent_at<1>::stride == 1);
static_assert(std::is_empty_v<Padded>);
static_assert(Padded().offset(I(3) + K(5)) == 3 * 40 + 5);
// An explicit inner stride feeds the packed outer stride.
using InnerStrided = make_layout_t<Extent<J, 3>, Extent<I, 4, 10>, Extent<K, 8, 1>>;
static_assert(InnerStrided::extent_at<0>::stride == 40);
// A transposed layout: K outermost but contiguous.
using Transposed = make_layout_t<Extent<K, 32, 1>, Extent<I, 64, 32>>;
static_assert(Transposed::contiguous_index == 0);
static_assert(Transposed().offset(I(3) + K(5)) == 3 * 32 + 5);

// ---- run-time sizes ------------------------------------------------------------------
using DynOuter = make_layout_t<Extent<I, dynamic>, Extent<K, 32>>;
static_assert(DynOuter::extent_at<0>::stride == 32, "an outer run-time size keeps strides static");
static_assert(sizeof(DynOuter) == sizeof(int));

using DynInner = make_layout_t<Extent<I, 64>, Extent<K, dynamic>>;
static_assert(DynInner::extent_at<0>::stride == kiln::detail::derived,
              "an inner run-time size makes the outer packed stride run-time");
static_assert(DynInner::extent_at<1>::stride == 1);
static_assert(sizeof(DynInner) == 2 * sizeof(int));

using Dyn3 = make_layout_t<Extent<I, dynamic>, Extent<J, dynamic>, Extent<K, 4>>;
static_assert(Dyn3::extent_at<2>::stride == 1 && Dyn3::extent_at<1>::stride == 4);
static_assert(Dyn3::extent_at<0>::stride == kiln::detail::derived);
static_assert(sizeof(Dyn3) == 12, "three run-time values: two sizes and a derived stride");

using DynStride = make_layout_t<Extent<I, dynamic, dynamic>, Extent<K, 32>>;
static_assert(sizeof(DynStride) == 2 * sizeof(int));

// ---- folds -----------------------------------------------------------------------------
using Tile = make_layout_t<Extent<K8, 4>, Extent<I, 16>, Extent<K, 8>>;
static_assert(Tile::extent_at<0>::stride == 128 && Tile::extent_at<1>::stride == 8);
static_assert(Tile::carry_ratio<2> == 8 && Tile::carry_ratio<0> == 0 && Tile::carry_ratio<1> == 0);
static_assert(Tile().offset(kiln::coords(K(12))) == 1 * 128 + 4);
static_assert(Tile().offset(kiln::coords(K(7)) + K(5)) ==
              Tile().offset(kiln::coords(K8(1)) + K(4)));

using Tile3 = make_layout_t<Extent<kiln::Fold<K, 32>, 2>, Extent<K8, 4>, Extent<K, 8>>;
// The first dimension with a static stride of 1 is the contiguous one.
static_assert(make_layout_t<Extent<I, 16>, Extent<K, 1>>::contiguous_index == 0);

// A bounded fold as a dimension: indices wrap.
using Ring = make_layout_t<Extent<I, 4>, Extent<kiln::Module<K, 8>, 8>>;
static_assert(Ring::extent_at<0>::stride == 8);

static_assert(Tile3::carry_ratio<0> == 0 && Tile3::carry_ratio<1> == 4 &&
              Tile3::carry_ratio<2> == 8);

}  // namespace

TEST_CASE("layout: packed strides are row-major, last fastest") {
  Packed3 l;
  CHECK(l.stride<K>() == 1);
  CHECK(l.stride<J>() == 4);
  CHECK(l.stride<I>() == 12);
  CHECK(l.stride_at<0>() == 12);
  CHECK(l.size<I>() == I(2));
  CHECK(l.size<J>() == J(3));
  CHECK(l.size<K>() == K(4));
  CHECK(l.size_at<2>() == 4);
  CHECK(l.num_elements() == 24);
  // Every index point gets its own offset, in row-major order.
  int expected = 0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) CHECK(l.offset(I(i) + J(j) + K(k)) == expected++);
}

TEST_CASE("layout: explicit strides pad rows") {
  Padded l;
  CHECK(l.stride<I>() == 40);
  CHECK(l.stride<K>() == 1);
  CHECK(l.num_elements() == 64 * 32);
  CHECK(l.offset(I(3) + K(5)) == 125);
  CHECK(l.offset(K(5) + I(3)) == 125);
  CHECK(l.offset(kiln::coords(I(63))) == 63 * 40);
  InnerStrided s;
  CHECK(s.stride<J>() == 40);
  CHECK(s.stride<I>() == 10);
  CHECK(s.offset(J(2) + I(3) + K(7)) == 80 + 30 + 7);
}

TEST_CASE("layout: run-time sizes given in any order") {
  SUBCASE("outer run-time size") {
    DynOuter l(I(10));
    CHECK(l.size<I>() == I(10));
    CHECK(l.stride<I>() == 32);
    CHECK(l.num_elements() == 320);
    CHECK(l.offset(I(3) + K(5)) == 101);
  }
  SUBCASE("inner run-time size derives the outer stride") {
    DynInner l(K(20));
    CHECK(l.size<K>() == K(20));
    CHECK(l.stride<I>() == 20);
    CHECK(l.stride<K>() == 1);
    CHECK(l.num_elements() == 64 * 20);
    CHECK(l.offset(I(3) + K(5)) == 65);
  }
  SUBCASE("two run-time sizes, either order") {
    Dyn3 a(I(7), J(5));
    Dyn3 b(J(5), I(7));
    for (const Dyn3& l : {a, b}) {
      CHECK(l.size<I>() == I(7));
      CHECK(l.size<J>() == J(5));
      CHECK(l.size<K>() == K(4));
      CHECK(l.stride<K>() == 1);
      CHECK(l.stride<J>() == 4);
      CHECK(l.stride<I>() == 20);
      CHECK(l.num_elements() == 140);
      CHECK(l.offset(I(6) + J(4) + K(3)) == 6 * 20 + 4 * 4 + 3);
    }
  }
  SUBCASE("a run-time size between static ones") {
    using L = make_layout_t<Extent<I, 3>, Extent<J, dynamic>, Extent<K, 4>>;
    static_assert(L::extent_at<0>::stride == kiln::detail::derived);
    static_assert(L::extent_at<1>::stride == 4);
    L l(J(6));
    CHECK(l.stride<I>() == 24);
    CHECK(l.num_elements() == 72);
  }
}

TEST_CASE("layout: run-time strides via Stride<D>") {
  SUBCASE("stride and size in either order") {
    DynStride a(Stride<I>(40), I(10));
    DynStride b(I(10), Stride<I>(40));
    for (const DynStride& l : {a, b}) {
      CHECK(l.stride<I>() == 40);
      CHECK(l.size<I>() == I(10));
      CHECK(l.stride<K>() == 1);
      CHECK(l.num_elements() == 320);
      CHECK(l.offset(I(2) + K(3)) == 83);
    }
  }
  SUBCASE("a run-time inner stride derives the outer stride") {
    using L = make_layout_t<Extent<J, 3>, Extent<I, 4, dynamic>, Extent<K, 8>>;
    static_assert(L::extent_at<0>::stride == kiln::detail::derived);
    static_assert(sizeof(L) == 2 * sizeof(int));
    L l(Stride<I>(10));
    CHECK(l.stride<I>() == 10);
    CHECK(l.stride<J>() == 40);
    CHECK(l.offset(J(2) + I(1) + K(3)) == 80 + 10 + 3);
  }
  SUBCASE("a run-time inner stride and a run-time size") {
    using L = make_layout_t<Extent<J, dynamic>, Extent<I, dynamic, dynamic>, Extent<K, 8>>;
    static_assert(sizeof(L) == 4 * sizeof(int));
    L l(I(5), J(2), Stride<I>(9));
    CHECK(l.size<I>() == I(5));
    CHECK(l.size<J>() == J(2));
    CHECK(l.stride<I>() == 9);
    CHECK(l.stride<J>() == 45);
  }
}

TEST_CASE("layout: folds split an index coarsest first") {
  Tile l;
  CHECK(l.stride<K8>() == 128);
  CHECK(l.stride<I>() == 8);
  CHECK(l.stride<K>() == 1);
  CHECK(l.num_elements() == 512);
  CHECK(l.index_at<0>(kiln::coords(K(12))) == 1);
  CHECK(l.index_at<2>(kiln::coords(K(12))) == 4);
  CHECK(l.index_at<1>(kiln::coords(K(12))) == 0);  // I absent
  CHECK(l.offset(kiln::coords(K(12))) == 132);
  CHECK(l.offset(kiln::coords(K(7)) + K(5)) == 132);
  CHECK(l.offset(I(3) + K(31)) == 3 * 128 + 3 * 8 + 7);
  CHECK(l.offset(I(3) + K8(3) + K(7)) == 3 * 128 + 3 * 8 + 7);
  CHECK(l.offset(I(3) + kiln::Fold<K, 2>(3)) == 3 * 8 + 6);  // any fold of K: 6 base units
  Tile3 t;
  CHECK(t.stride<kiln::Fold<K, 32>>() == 32);
  CHECK(t.offset(kiln::coords(K(45))) == 32 + 8 + 5);
  CHECK(t.index_at<1>(kiln::coords(K(45))) == 1);
}

// The behaviour docs/typed-dims.md ("size<D>() of a folded layout") describes.
TEST_CASE("layout: size<D>() of a folded layout is that extent alone, in D's units") {
  Tile l;                        // (K8:4, I:16, K:8): K runs over 32 in all
  CHECK(l.size<K>() == K(8));    // the inner K extent only, not 32
  CHECK(l.size<K8>() == K8(4));  // 4 groups of 8
  CHECK(l.size<K8>().get() * l.size<K>().get() == 32);
  CHECK(kiln::unfold(l.size<K8>()) == K(32));  // the whole K range
  // Values compare across folds by base units: K8(4) is K(32).
  CHECK(l.size<K8>() == K(32));
  Tile3 t;  // (K32:2, K8:4, K:8)
  CHECK(t.size<kiln::Fold<K, 32>>().get() == 2);
  CHECK(kiln::unfold(t.size<kiln::Fold<K, 32>>()) == K(64));
  Ring r;  // (I:4, K mod 8: 8)
  CHECK(r.size<kiln::Module<K, 8>>().get() == 8);
}

TEST_CASE("layout: dimensions a layout lacks are ignored") {
  Packed l;
  CHECK(l.offset(I(3) + J(100) + K(5)) == 101);
  CHECK(l.offset(kiln::coords(J(7))) == 0);
  CHECK(l.in_bounds(I(3) + J(-100) + K(5)));
}

TEST_CASE("layout: in_bounds") {
  SUBCASE("static") {
    Packed l;
    CHECK(l.in_bounds(I(0) + K(0)));
    CHECK(l.in_bounds(I(63) + K(31)));
    CHECK_FALSE(l.in_bounds(I(64) + K(0)));
    CHECK_FALSE(l.in_bounds(I(0) + K(32)));
    CHECK_FALSE(l.in_bounds(I(-1) + K(0)));
    CHECK_FALSE(l.in_bounds(I(0) + K(-1)));
    CHECK(l.in_bounds(kiln::coords(I(5))));  // absent dims count as 0
  }
  SUBCASE("folded") {
    Tile l;
    CHECK(l.in_bounds(I(15) + K(31)));
    CHECK_FALSE(l.in_bounds(I(15) + K(32)));  // K8 index 4 is past 4
    CHECK_FALSE(l.in_bounds(I(0) + K(-1)));
    CHECK_FALSE(l.in_bounds(I(0) + K(-8)));
    CHECK_FALSE(l.in_bounds(I(0) + K(-9)));
    CHECK_FALSE(l.in_bounds(I(16) + K(0)));
  }
  SUBCASE("run-time sizes") {
    Dyn3 l(I(3), J(2));
    CHECK(l.in_bounds(I(2) + J(1) + K(3)));
    CHECK_FALSE(l.in_bounds(I(3) + J(1) + K(3)));
    CHECK_FALSE(l.in_bounds(I(2) + J(2) + K(3)));
    CHECK_FALSE(l.in_bounds(I(2) + J(1) + K(4)));
    CHECK_FALSE(l.in_bounds(I(-1) + J(1) + K(3)));
  }
}

TEST_CASE("layout: coords_of decomposes a linear index, last fastest") {
  using L = make_layout_t<Extent<WARP, 4>, Extent<LANE, 32>>;
  L l;
  auto c = l.coords_of(37);
  static_assert(std::is_same_v<decltype(c), kiln::Coords<WARP, LANE>>);
  CHECK(kiln::get<WARP>(c) == WARP(1));
  CHECK(kiln::get<LANE>(c) == LANE(5));
  CHECK(l.in_bounds(c));
  CHECK_FALSE(l.in_bounds(l.coords_of(128)));
  CHECK(kiln::get<WARP>(l.coords_of(128)) == WARP(4));  // the outermost index is not reduced
  // Folds of one dimension merge.
  Tile t;
  auto d = t.coords_of(1 * 128 + 3 * 8 + 5);
  static_assert(std::is_same_v<decltype(d), kiln::Coords<K, I>>);
  CHECK(d.base_units<K>() == 13);
  CHECK(d.base_units<I>() == 3);
  for (int i = 0; i < t.num_elements(); ++i) CHECK(t.offset(t.coords_of(i)) == i);
}

TEST_CASE("layout: to_arrays") {
  Dyn3 l(I(3), J(2));
  int sizes[3] = {-7, -7, -7};
  int strides[3] = {-7, -7, -7};
  l.to_arrays(sizes, strides);
  CHECK(sizes[0] == 3);
  CHECK(sizes[1] == 2);
  CHECK(sizes[2] == 4);
  CHECK(strides[0] == 8);
  CHECK(strides[1] == 4);
  CHECK(strides[2] == 1);
}

TEST_CASE("layout: a bounded fold wraps its index") {
  Ring l;
  CHECK(l.offset(I(1) + K(13)) == 8 + 5);
  CHECK(l.offset(I(1) + K(5)) == 8 + 5);
  CHECK(l.offset(I(2) + K(16)) == 16);
  CHECK(l.offset(I(2) + kiln::Fold<K, 4>(3)) == 16 + 4);  // 12 K's, modulo 8
  CHECK(l.in_bounds(I(3) + K(1000)));
  CHECK_FALSE(l.in_bounds(I(4) + K(1)));
  CHECK(l.num_elements() == 32);
}
