// Coordinates (kiln/dims/coords.hpp): bundles of values of different dimensions.
#include <doctest/doctest.h>

#include <type_traits>

#include "kiln/dims/coords.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;
using K2 = kiln::Fold<K, 2>;
using KMod8 = kiln::Module<K, 8>;

template <class A, class B>
concept EqualityComparable = requires(A a, B b) {
  a == b;
};

static_assert(std::is_same_v<decltype(I(1) + J(2)), kiln::Coords<I, J>>);
static_assert(std::is_same_v<decltype(J(2) + I(1)), kiln::Coords<J, I>>);
static_assert(std::is_same_v<decltype(I(1) - J(2)), kiln::Coords<I, J>>);
static_assert(std::is_same_v<decltype(I(1) + K8(2)), kiln::Coords<I, K>>,
              "coordinates hold base dimensions");
static_assert(std::is_same_v<decltype(I(1) + J(2) + K8(1) + K(3)), kiln::Coords<I, J, K>>);
static_assert(std::is_same_v<decltype(I(1) + J(2) + I(3)), kiln::Coords<I, J>>);
static_assert(std::is_same_v<decltype(K(1) + (I(1) + J(2))), kiln::Coords<K, I, J>>);
static_assert(std::is_same_v<decltype(kiln::coords(I(1), K(2))), kiln::Coords<I, K>>);
static_assert(std::is_same_v<decltype(kiln::coords(K8(1), K(2))), kiln::Coords<K>>);
static_assert(std::is_same_v<decltype(kiln::coords()), kiln::Coords<>>);
static_assert(std::is_same_v<decltype(kiln::to_coords(I(1))), kiln::Coords<I>>);
static_assert(std::is_same_v<decltype(-(I(1) + J(2))), kiln::Coords<I, J>>);

static_assert(kiln::is_coords<kiln::Coords<I, J>> && kiln::is_coords<const kiln::Coords<I>&>);
static_assert(!kiln::is_coords<I> && !kiln::is_coords<int>);
static_assert(!kiln::is_dim<kiln::Coords<I, J>>, "a sum of two dimensions is not a dimension");
static_assert(!std::is_convertible_v<kiln::Coords<I, K>, I>);

static_assert(kiln::Coords<I, K>::contains<I>);
static_assert(kiln::Coords<I, K>::contains<K>);
static_assert(kiln::Coords<I, K>::contains<K8>, "contains any fold of a held dimension");
static_assert(kiln::Coords<I, K>::contains<KMod8>);
static_assert(!kiln::Coords<I, K>::contains<J>);
static_assert(!kiln::Coords<>::contains<I>);

static_assert(!EqualityComparable<kiln::Coords<I, J>, I>);

// Constexpr throughout.
static_assert(kiln::get<K>(I(1) + K8(1) + K(3)) == K(11));
static_assert((I(1) + K(2)) == (K(2) + I(1)));

}  // namespace

TEST_CASE("coords: the sum of different dimensions is a bundle") {
  auto c = I(1) + J(2);
  CHECK(kiln::get<I>(c) == I(1));
  CHECK(kiln::get<J>(c) == J(2));
  CHECK(c.get<I>().get() == 1);
  CHECK(c.get<J>().get() == 2);
  CHECK(c.base_units<I>() == 1);
  CHECK(c.base_units<J>() == 2);
  CHECK(c.base_units<K>() == 0);  // absent: 0
  auto d = I(5) - J(3);
  CHECK(d.base_units<I>() == 5);
  CHECK(d.base_units<J>() == -3);
}

TEST_CASE("coords: equality ignores order") {
  CHECK((I(1) + J(2)) == (J(2) + I(1)));
  CHECK((J(2) + I(1)) == (I(1) + J(2)));
  CHECK_FALSE((I(1) + J(2)) == (J(1) + I(2)));
  CHECK((I(1) + J(2)) != (J(1) + I(2)));
  CHECK_FALSE((I(1) + J(2)) != (J(2) + I(1)));
  CHECK((I(1) + J(2) + K(3)) == (K(3) + I(1) + J(2)));
  CHECK((I(1) + J(2) + K(3)) == (J(2) + K(3) + I(1)));
  CHECK((I(1) + J(2) + K(3)) != (J(2) + K(4) + I(1)));
  CHECK((I(1) + K8(1)) == (K(8) + I(1)));  // values compare in base units
  CHECK((I(1) + K8(1)) != (K(9) + I(1)));
  CHECK(kiln::coords() == kiln::coords());
}

TEST_CASE("coords: arithmetic is per dimension and folds merge") {
  SUBCASE("adding K8 then K merges into one K value") {
    auto c = I(1) + J(2);
    auto d = c + K8(1) + K(3);
    static_assert(std::is_same_v<decltype(d), kiln::Coords<I, J, K>>);
    CHECK(d.base_units<K>() == 11);
    CHECK(kiln::get<K>(d) == K(11));
    CHECK(kiln::get<K8>(d) == K8(1));
    CHECK(kiln::get<K8>(d).get() == 1);
    CHECK(kiln::get<K2>(d).get() == 5);
    CHECK(kiln::get<KMod8>(d).get() == 3);
    CHECK(kiln::get<I>(d).get() == 1);
    CHECK(kiln::get<J>(d).get() == 2);
    auto e = d + K8(2);
    static_assert(std::is_same_v<decltype(e), kiln::Coords<I, J, K>>);
    CHECK(e.base_units<K>() == 27);
    CHECK(kiln::get<K8>(e).get() == 3);
  }
  SUBCASE("adding the same dimension accumulates") {
    auto c = I(1) + J(2) + I(3) + J(-5);
    CHECK(kiln::get<I>(c).get() == 4);
    CHECK(kiln::get<J>(c).get() == -3);
  }
  SUBCASE("a value plus a bundle, and a bundle plus a bundle") {
    auto c = K8(1) + (I(2) + J(3));
    CHECK(c.base_units<K>() == 8);
    CHECK(c.base_units<I>() == 2);
    CHECK(c.base_units<J>() == 3);
    auto d = (I(1) + K8(1)) + (K(3) + J(2));
    static_assert(std::is_same_v<decltype(d), kiln::Coords<I, K, J>>);
    CHECK(d == (I(1) + J(2) + K(11)));
    CHECK(d.base_units<K>() == 11);
  }
  SUBCASE("subtraction") {
    auto c = (I(5) + J(3)) - I(2);
    static_assert(std::is_same_v<decltype(c), kiln::Coords<I, J>>);
    CHECK(c == (I(3) + J(3)));
    auto d = (I(5) + J(3)) - (J(1) + I(2));
    CHECK(d == (I(3) + J(2)));
    // Dimensions only on the right come in negated.
    auto e = kiln::coords(I(5)) - (I(1) + K(2));
    static_assert(std::is_same_v<decltype(e), kiln::Coords<I, K>>);
    CHECK(e.base_units<I>() == 4);
    CHECK(e.base_units<K>() == -2);
    auto f = (I(5) + K(20)) - K8(2);
    CHECK(f.base_units<K>() == 4);
    CHECK(I(3) - K(2) == I(3) + K(-2));
  }
  SUBCASE("negation") {
    auto c = -(I(1) + J(-2) + K8(1));
    CHECK(c == (I(-1) + J(2) + K(-8)));
    CHECK(c.base_units<I>() == -1);
    CHECK(c.base_units<J>() == 2);
    CHECK(c.base_units<K>() == -8);
  }
}

TEST_CASE("coords: the coords() helper and to_coords") {
  auto c = kiln::coords(I(1), K(2));
  CHECK(c == (I(1) + K(2)));
  CHECK(c.base_units<I>() == 1);
  CHECK(c.base_units<K>() == 2);
  auto d = kiln::coords(K8(1), I(4), K(2));
  static_assert(std::is_same_v<decltype(d), kiln::Coords<K, I>>);
  CHECK(d.base_units<K>() == 10);
  CHECK(d.base_units<I>() == 4);
  auto one = kiln::coords(J(7));
  static_assert(std::is_same_v<decltype(one), kiln::Coords<J>>);
  CHECK(one.base_units<J>() == 7);
  auto t = kiln::to_coords(K8(3));
  CHECK(t.base_units<K>() == 24);
  const auto& same = kiln::to_coords(c);
  CHECK(&same == &c);  // a Coords is passed through, not copied
}

TEST_CASE("coords: get in a bounded fold reduces the value") {
  auto c = I(2) + K(29);
  CHECK(kiln::get<KMod8>(c).get() == 5);
  CHECK(kiln::get<kiln::Module<K8, 2>>(c).get() == 1);  // (29 / 8) % 2
  CHECK(kiln::get<K8>(c).get() == 3);
  CHECK(kiln::get<kiln::Fold<K, 32>>(c).get() == 0);
}
