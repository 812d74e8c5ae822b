// Tensors (kiln/dims/tensor.hpp): typed views of memory, indexed in any order.
#include <doctest/doctest.h>

#include <cstddef>
#include <initializer_list>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/dims/tensor.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;
using kiln::dynamic;
using kiln::Extent;
using kiln::Stride;
using kiln::Tensor;

// A buffer of n distinct, nonzero, index-derived values: element e holds 1000 + e.
std::vector<float> iota_buffer(int n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int e = 0; e < n; ++e) v[static_cast<std::size_t>(e)] = static_cast<float>(1000 + e);
  return v;
}

template <class P>
int offset_in(const P* p, const P* base) {
  return static_cast<int>(p - base);
}

using Plain = Tensor<float, Extent<I, 4>, Extent<K, 8>>;
// (K8:4, I:16 padded to a stride of 10, K:8): K8's packed stride is 16 * 10 = 160.
using Folded = Tensor<float, Extent<K8, 4>, Extent<I, 16, 10>, Extent<K, 8>>;

static_assert(std::is_same_v<Plain::element_type, float>);
static_assert(std::is_same_v<Plain::swizzle_type, kiln::NoSwizzle>);
static_assert(std::is_same_v<Plain::layout_type, kiln::Layout<Extent<I, 4, 8>, Extent<K, 8, 1>>>);
static_assert(sizeof(Plain) == sizeof(float*), "an all-static tensor is just a pointer");
static_assert(Folded::layout_type::extent_at<0>::stride == 160);
static_assert(Folded::layout_type::extent_at<1>::stride == 10);
static_assert(Folded::layout_type::extent_at<2>::stride == 1);

using Dyn = Tensor<float, Extent<I, dynamic>, Extent<K, dynamic>>;
static_assert(sizeof(Dyn::layout_type) == 12);

// Cursor element access types.
using CPlain = Tensor<const float, Extent<I, 4>, Extent<K, 8>>;
static_assert(std::is_same_v<decltype(*std::declval<Plain>()[I(1)]), float&>);
static_assert(std::is_same_v<decltype(*std::declval<CPlain>()[I(1)]), const float&>);
static_assert(std::is_same_v<decltype(std::declval<CPlain>()[I(1)].ptr()), const float*>);

template <class T, class X>
concept Indexable = requires(T t, X x) {
  t[x];
};
static_assert(Indexable<Plain, I> && Indexable<Plain, K> && Indexable<Plain, K8>);
static_assert(Indexable<Plain, kiln::Coords<I, J, K>>);
// (A single J is rejected by a static_assert in the body: see tests/compile_fail.)

struct Pair {
  int a;
  int b;
};

}  // namespace

TEST_CASE("tensor: indexing is order-free and hits the hand-computed address") {
  auto buf = iota_buffer(32);
  Plain t(buf.data());
  CHECK(t.data() == buf.data());
  CHECK(t[I(3)][K(5)] == t[K(5)][I(3)]);
  CHECK(t[I(3)][K(5)] == t[I(3) + K(5)]);
  CHECK(t[K(5)][I(3)] == t[K(5) + I(3)]);
  CHECK(t[I(3)][K(5)].ptr() == buf.data() + 3 * 8 + 5);
  CHECK(t[K(5)][I(3)].ptr() == buf.data() + 29);
  CHECK(t[I(3) + K(5)].ptr() == buf.data() + 29);
  CHECK(*t[I(3)][K(5)] == 1029.0f);
  CHECK(t[I(3)][K(5)] != t[I(3)][K(6)]);
  CHECK(t[I(3)][K(5)] != t[I(2)][K(5)]);
  CHECK_FALSE(t[I(3)][K(5)] == t[I(5)][K(3)]);
  // Every element, by every route.
  for (int i = 0; i < 4; ++i) {
    for (int k = 0; k < 8; ++k) {
      const int off = i * 8 + k;
      CHECK(offset_in(t[I(i)][K(k)].ptr(), buf.data()) == off);
      CHECK(offset_in(t[K(k)][I(i)].ptr(), buf.data()) == off);
      CHECK(offset_in(t[I(i) + K(k)].ptr(), buf.data()) == off);
      CHECK(*t[K(k)][I(i)] == static_cast<float>(1000 + off));
    }
  }
  // Repeated indexing in one dimension accumulates.
  CHECK(t[I(1)][I(2)][K(1)][K(4)].ptr() == buf.data() + 29);
  CHECK(t[I(3)][K(7)][K(-2)].ptr() == buf.data() + 29);
}

TEST_CASE("tensor: indices carry across folds") {
  auto buf = iota_buffer(640);
  Folded t(buf.data());
  CHECK(t[K(7)][K(5)] == t[K8(1)][K(4)]);
  CHECK(t[K(7)][K(5)] == t[kiln::coords(K(12))]);
  CHECK(t[K(7)][K(5)].ptr() == buf.data() + 160 + 4);
  CHECK(t[K8(1)][K(4)].ptr() == buf.data() + 164);
  CHECK(t[K(12)].ptr() == buf.data() + 164);
  CHECK(t[K(4)][K8(1)].ptr() == buf.data() + 164);
  CHECK(t[I(3)][K(7)][K(5)].ptr() == buf.data() + 164 + 30);
  CHECK(t[K(7)][I(3)][K(5)].ptr() == buf.data() + 194);
  CHECK(t[I(3) + K(31)].ptr() == buf.data() + 3 * 160 + 30 + 7);
  CHECK(t[kiln::Fold<K, 2>(5)].ptr() == buf.data() + 160 + 2);  // 10 K's: K8 1, K 2
  CHECK(t[kiln::mod<8>(K(13))].ptr() == buf.data() + 5);
  CHECK(*t[K(7)][K(5)] == 1164.0f);
  // Every element: a distinct address, and never in the padding (I stride 10 > K size 8).
  std::vector<int> hits(640, 0);
  for (int k = 0; k < 32; ++k) {
    for (int i = 0; i < 16; ++i) {
      const int off = offset_in(t[I(i)][K(k)].ptr(), buf.data());
      CHECK(off == (k / 8) * 160 + i * 10 + k % 8);
      REQUIRE(off >= 0);
      REQUIRE(off < 640);
      ++hits[static_cast<std::size_t>(off)];
    }
  }
  int visited = 0;
  for (int off = 0; off < 640; ++off) {
    const int h = hits[static_cast<std::size_t>(off)];
    CHECK(h == ((off % 10) < 8 ? 1 : 0));
    visited += h;
  }
  CHECK(visited == 512);
}

TEST_CASE("tensor: coordinates with dimensions the tensor lacks are ignored") {
  auto buf = iota_buffer(32);
  Plain t(buf.data());
  CHECK(t[I(1) + J(5) + K(2)] == t[I(1)][K(2)]);
  CHECK(t[I(1) + J(5) + K(2)].ptr() == buf.data() + 10);
  CHECK(t[kiln::coords(J(7))].ptr() == buf.data());
  CHECK(t[I(2)][J(3) + K(1)].ptr() == buf.data() + 17);
  CHECK(t[I(2)][J(3) + K(1)].in_bounds());
  CHECK(t[I(2)][J(-30) + K(1)].in_bounds());
}

TEST_CASE("tensor: write through a cursor and read back") {
  auto buf = iota_buffer(32);
  Plain t(buf.data());
  *t[I(2)][K(3)] = 42.5f;
  CHECK(buf[19] == 42.5f);
  CHECK(*t[K(3)][I(2)] == 42.5f);
  CHECK(buf[18] == 1018.0f);  // neighbours untouched
  CHECK(buf[20] == 1020.0f);
  CHECK(buf[11] == 1011.0f);
  // A const tensor object still writes: it is a view, like a const pointer.
  const Plain ct(buf.data());
  *ct[I(0)][K(1)] = -1.0f;
  CHECK(buf[1] == -1.0f);
  // operator-> reaches members.
  Pair pairs[6] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}};
  Tensor<Pair, Extent<I, 2>, Extent<K, 3>> p(pairs);
  CHECK(p[I(1)][K(2)]->a == 11);
  p[I(1)][K(0)]->b = 99;
  CHECK(pairs[3].b == 99);
  CHECK(pairs[3].a == 7);
}

TEST_CASE("tensor: const element tensors read") {
  const auto buf = iota_buffer(32);
  CPlain t(buf.data());
  CHECK(*t[I(3)][K(5)] == 1029.0f);
  CHECK(t[K(5)][I(3)].ptr() == buf.data() + 29);
  CHECK(*t[I(0)][K(0)] == 1000.0f);
  float sum = 0;
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 8; ++k) sum += *t[I(i)][K(k)];
  CHECK(sum == static_cast<float>(32 * 1000 + 31 * 32 / 2));
}

// The read-only view of any tensor, through the implicit conversion.
template <class U, class Sw, class... Es>
kiln::BasicTensor<const U, Sw, Es...> as_read_only(const kiln::BasicTensor<U, Sw, Es...>& t) {
  return t;
}

// A function that only reads takes the read-only tensor; a mutable one converts to it.
float read_first(Tensor<const float, Extent<I, dynamic>, Extent<K, 8>> t) {
  return *t[I(0)][K(0)];
}

TEST_CASE("tensor: a mutable tensor converts implicitly to the read-only one") {
  auto buf = iota_buffer(32);
  Plain m(buf.data());
  CPlain c = m;
  CHECK(c.data() == buf.data());
  CHECK(*c[I(3)][K(5)] == 1029.0f);
  static_assert(std::is_convertible_v<Plain, CPlain>);
  static_assert(!std::is_convertible_v<CPlain, Plain>, "read-only never becomes writable");
  static_assert(!std::is_constructible_v<Plain, CPlain>);
  static_assert(!std::is_convertible_v<Plain, Tensor<const float, Extent<K, 8>, Extent<I, 4>>>,
                "only the same layout");
  static_assert(!std::is_convertible_v<Plain, Tensor<const double, Extent<I, 4>, Extent<K, 8>>>);
  // Run-time sizes travel with the view.
  Tensor<float, Extent<I, dynamic>, Extent<K, 8>> r(buf.data(), I(4));
  CHECK(read_first(r) == 1000.0f);
  Tensor<const float, Extent<I, dynamic>, Extent<K, 8>> cr = r;
  CHECK(cr.size<I>() == I(4));
  // A swizzled slice keeps its origin.
  using Sw = kiln::SwizzledTensor<float, kiln::Swizzle<2, 0, 2>, Extent<I, 4>, Extent<K, 8>>;
  using CSw = kiln::SwizzledTensor<const float, kiln::Swizzle<2, 0, 2>, Extent<I, 4>, Extent<K, 8>>;
  Sw s(buf.data());
  auto part = s.slice<2>(I(2));
  auto cpart = as_read_only(part);
  static_assert(std::is_same_v<decltype(cpart)::element_type, const float>);
  CHECK(cpart[I(1)][K(3)].ptr() == part[I(1)][K(3)].ptr());
  CHECK(cpart[I(1)][K(3)].ptr() != buf.data() + 1 * 8 + 3);  // the slice's origin counts
  static_assert(std::is_convertible_v<Sw, CSw>);
}

TEST_CASE("tensor: run-time extents") {
  SUBCASE("sizes in any order, derived stride") {
    auto buf = iota_buffer(30);
    Dyn a(buf.data(), K(6), I(5));
    Dyn b(buf.data(), I(5), K(6));
    for (const Dyn& t : {a, b}) {
      CHECK(t.size<I>() == I(5));
      CHECK(t.size<K>() == K(6));
      CHECK(t.stride<I>() == 6);
      CHECK(t.num_elements() == 30);
      CHECK(t[I(4)][K(5)].ptr() == buf.data() + 29);
      CHECK(t[K(1)][I(2)].ptr() == buf.data() + 13);
      CHECK(*t[K(1)][I(2)] == 1013.0f);
    }
  }
  SUBCASE("run-time stride") {
    auto buf = iota_buffer(64);
    using T = Tensor<float, Extent<I, dynamic, dynamic>, Extent<K, 8>>;
    T t(buf.data(), Stride<I>(11), I(3));
    CHECK(t.stride<I>() == 11);
    CHECK(t.size<I>() == I(3));
    CHECK(t[I(2)][K(7)].ptr() == buf.data() + 29);
    CHECK(*t[I(1)][K(0)] == 1011.0f);
  }
  SUBCASE("from a layout object") {
    auto buf = iota_buffer(64);
    Dyn::layout_type l(I(4), K(7));
    Dyn t(buf.data(), l);
    CHECK(t.size<K>() == K(7));
    CHECK(t.stride<I>() == 7);
    CHECK(t[I(3)][K(2)].ptr() == buf.data() + 23);
  }
}

TEST_CASE("tensor: in_bounds") {
  auto buf = iota_buffer(640);
  SUBCASE("static") {
    Plain t(buf.data());
    CHECK(t[I(3)][K(7)].in_bounds());
    CHECK(t[I(0)][K(0)].in_bounds());
    CHECK_FALSE(t[I(4)][K(0)].in_bounds());
    CHECK_FALSE(t[I(0)][K(8)].in_bounds());
    CHECK_FALSE(t[I(-1)][K(0)].in_bounds());
    CHECK_FALSE(t[I(0)][K(-1)].in_bounds());
    CHECK(t.in_bounds(I(3) + K(7)));
    CHECK_FALSE(t.in_bounds(I(3) + K(8)));
  }
  SUBCASE("folded") {
    Folded t(buf.data());
    CHECK(t[I(15)][K(31)].in_bounds());
    CHECK(t[K8(3)][K(7)].in_bounds());
    CHECK_FALSE(t[I(0)][K(32)].in_bounds());  // K8 index 4
    CHECK_FALSE(t[K8(4)].in_bounds());
    CHECK_FALSE(t[K8(3)][K(8)].in_bounds());  // carries into K8 index 4
    CHECK_FALSE(t[I(0)][K(-1)].in_bounds());
    CHECK_FALSE(t[K8(-1)].in_bounds());
    CHECK_FALSE(t[I(16)].in_bounds());
    CHECK(t[K(33)][K(-2)].in_bounds());  // 31 in all
  }
  SUBCASE("run-time") {
    Dyn t(buf.data(), I(5), K(6));
    CHECK(t[I(4)][K(5)].in_bounds());
    CHECK_FALSE(t[I(5)][K(5)].in_bounds());
    CHECK_FALSE(t[I(4)][K(6)].in_bounds());
    CHECK_FALSE(t[I(-1)][K(0)].in_bounds());
    CHECK_FALSE(t[K(-3)].in_bounds());
  }
}

TEST_CASE("tensor: cursors remember their coordinates") {
  auto buf = iota_buffer(640);
  Folded t(buf.data());
  auto c = t[I(1)][K8(1)][K(2)];
  static_assert(std::is_same_v<std::remove_cvref_t<decltype(c.coords())>, kiln::Coords<I, K>>);
  CHECK(c.coords().base_units<K>() == 10);
  CHECK(c.coords().base_units<I>() == 1);
  CHECK(c.tensor().data() == buf.data());
}

TEST_CASE("tensor: slice<N>(start) has a static extent") {
  auto buf = iota_buffer(128);
  Tensor<float, Extent<I, 8>, Extent<K, 16>> t(buf.data());
  auto s = t.slice<4>(I(2));
  using S = decltype(s);
  static_assert(std::is_same_v<S::layout_type::extent_at<0>, Extent<I, 4, 16>>);
  static_assert(std::is_same_v<S::layout_type::extent_at<1>, Extent<K, 16, 1>>);
  static_assert(std::is_empty_v<S::layout_type>);
  CHECK(s.size<I>() == I(4));
  CHECK(s.size<K>() == K(16));
  CHECK(s.num_elements() == 64);
  CHECK(s.data() == buf.data() + 32);
  CHECK(*s[I(0)][K(0)] == 1032.0f);
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 16; ++k) CHECK(s[I(i)][K(k)].ptr() == t[I(i + 2)][K(k)].ptr());
  CHECK_FALSE(s[I(4)].in_bounds());
  CHECK(s[I(3)].in_bounds());

  auto u = t.slice<8>(K(4));
  static_assert(std::is_same_v<decltype(u)::layout_type::extent_at<1>, Extent<K, 8, 1>>);
  CHECK(u.size<K>() == K(8));
  CHECK(u.size<I>() == I(8));
  CHECK(u.stride<I>() == 16);
  CHECK(u.data() == buf.data() + 4);
  CHECK(u[I(5)][K(7)].ptr() == t[I(5)][K(11)].ptr());
  CHECK_FALSE(u[K(8)].in_bounds());
}

TEST_CASE("tensor: slice(start, size) has a run-time extent") {
  auto buf = iota_buffer(128);
  Tensor<float, Extent<I, 8>, Extent<K, 16>> t(buf.data());
  auto s = t.slice(K(4), K(6));
  using SE = decltype(s)::layout_type::extent_at<1>;
  static_assert(std::is_same_v<typename SE::dim, K> && SE::size == dynamic && SE::stride == 1);
  CHECK(s.size<K>() == K(6));
  CHECK(s.size<I>() == I(8));
  CHECK(s.num_elements() == 48);
  CHECK(s.data() == buf.data() + 4);
  CHECK(s[I(2)][K(1)].ptr() == t[I(2)][K(5)].ptr());
  CHECK(*s[I(2)][K(1)] == 1037.0f);
  CHECK(s[K(5)].in_bounds());
  CHECK_FALSE(s[K(6)].in_bounds());
  auto r = t.slice(I(5), I(3));
  CHECK(r.size<I>() == I(3));
  CHECK(r.data() == buf.data() + 80);
  CHECK(r[I(2)][K(15)].ptr() == buf.data() + 127);
}

TEST_CASE("tensor: slices of slices") {
  auto buf = iota_buffer(128);
  Tensor<float, Extent<I, 8>, Extent<K, 16>> t(buf.data());
  auto s = t.slice<4>(I(2)).slice<8>(K(4)).slice(I(1), I(2)).slice<3>(K(2));
  CHECK(s.size<I>() == I(2));
  CHECK(s.size<K>() == K(3));
  CHECK(s.data() == buf.data() + 3 * 16 + 6);
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 3; ++k) CHECK(s[I(i)][K(k)].ptr() == t[I(3 + i)][K(6 + k)].ptr());
}

TEST_CASE("tensor: slices of folded, padded and run-time tensors") {
  SUBCASE("folded") {
    auto buf = iota_buffer(640);
    Folded t(buf.data());
    auto s = t.slice<2>(K8(1));
    CHECK(s.size<K8>() == K8(2));
    CHECK(s.data() == buf.data() + 160);
    CHECK(s[K(11)][I(2)].ptr() == t[K(19)][I(2)].ptr());
    CHECK(s[K(11)][I(2)].ptr() == buf.data() + 2 * 160 + 20 + 3);
    auto r = t.slice<4>(I(3));
    CHECK(r.stride<I>() == 10);
    CHECK(r.stride<K8>() == 160);
    CHECK(r[K(12)][I(1)].ptr() == t[K(12)][I(4)].ptr());
  }
  SUBCASE("run-time inner size: the derived stride survives") {
    auto buf = iota_buffer(40);
    using T = Tensor<float, Extent<I, 4>, Extent<K, dynamic>>;
    T t(buf.data(), K(10));
    auto s = t.slice<3>(K(2));
    static_assert(std::is_same_v<decltype(s)::layout_type::extent_at<1>, Extent<K, 3, 1>>);
    CHECK(s.stride<I>() == 10);
    CHECK(s.size<K>() == K(3));
    CHECK(s[I(2)][K(1)].ptr() == t[I(2)][K(3)].ptr());
    CHECK(*s[I(2)][K(1)] == 1023.0f);
  }
  SUBCASE("a static slice of a run-time extent") {
    auto buf = iota_buffer(80);
    using T = Tensor<float, Extent<I, dynamic>, Extent<K, 8>>;
    T t(buf.data(), I(10));
    auto s = t.slice<4>(I(3));
    static_assert(std::is_same_v<decltype(s)::layout_type::extent_at<0>, Extent<I, 4, 8>>);
    static_assert(std::is_empty_v<decltype(s)::layout_type>);
    CHECK(s.size<I>() == I(4));
    CHECK(s[I(1)][K(2)].ptr() == buf.data() + 34);
  }
  SUBCASE("a run-time stride is kept") {
    auto buf = iota_buffer(64);
    using T = Tensor<float, Extent<I, dynamic, dynamic>, Extent<K, 8>>;
    T t(buf.data(), Stride<I>(11), I(5));
    auto s = t.slice(K(2), K(4));
    CHECK(s.stride<I>() == 11);
    CHECK(s.size<I>() == I(5));
    CHECK(s[I(3)][K(3)].ptr() == buf.data() + 33 + 5);
  }
}

TEST_CASE("tensor: a bounded-fold dimension wraps") {
  auto buf = iota_buffer(16);
  Tensor<float, Extent<I, 2>, Extent<kiln::Module<K, 8>, 8>> t(buf.data());
  CHECK(t[I(1)][K(13)].ptr() == buf.data() + 13);
  CHECK(t[I(1)][K(5)][K(8)] == t[I(1)][K(13)]);
  CHECK(t[I(1)][K(5)] == t[I(1)][K(21)]);
  CHECK(*t[I(0)][K(10)] == 1002.0f);
  CHECK(t[K(100)].in_bounds());
}
