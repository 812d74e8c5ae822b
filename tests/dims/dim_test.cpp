// Typed dimension values (kiln/dims/dim.hpp): one type per dimension, int values,
// arithmetic and comparison within a dimension, folds and bounded folds.
#include <doctest/doctest.h>

#include <type_traits>
#include <utility>

#include "kiln/dims/dim.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;
using K2 = kiln::Fold<K, 2>;
using K4 = kiln::Fold<K, 4>;
using K32 = kiln::Fold<K, 32>;
using KMod8 = kiln::Module<K, 8>;

// Expression probes: whether an operation between two types compiles at all.
template <class A, class B>
concept EqualityComparable = requires(A a, B b) {
  a == b;
};
template <class A, class B>
concept Ordered = requires(A a, B b) {
  a < b;
};
template <class A, class B>
concept Addable = requires(A a, B b) {
  a + b;
};
template <class A, class B>
concept Multipliable = requires(A a, B b) {
  (a * b);
};
template <class A, class B>
concept AddAssignable = requires(A a, B b) {
  a += b;
};
template <class A>
concept HasUnaryMinus = requires(A a) {
  -a;
};

// ---- compile-time facts ------------------------------------------------------------

// A distinct type per dimension, and a dimension is not an int in disguise.
static_assert(!std::is_same_v<I, J> && !std::is_same_v<I, K> && !std::is_same_v<J, K>);
static_assert(!std::is_convertible_v<I, K> && !std::is_convertible_v<K, I>);
static_assert(!std::is_constructible_v<K, I>);
static_assert(!std::is_convertible_v<int, I>, "an int does not silently become an I");
static_assert(!std::is_convertible_v<I, int>, "an I does not silently become an int");
static_assert(std::is_constructible_v<I, int>, "but an I is made explicitly from an int");
static_assert(std::is_same_v<decltype(I(1).get()), int>);
static_assert(sizeof(I) == sizeof(int) && sizeof(K8) == sizeof(int) &&
              sizeof(KMod8) == sizeof(int));
static_assert(std::is_trivially_copyable_v<I> && std::is_trivially_copyable_v<K8>);

static_assert(kiln::is_dim<I> && kiln::is_dim<K8> && kiln::is_dim<KMod8>);
static_assert(kiln::is_dim<const I&>);
static_assert(!kiln::is_dim<int> && !kiln::is_dim<float>);

static_assert(kiln::same_dimension<K, K8> && kiln::same_dimension<K8, KMod8>);
static_assert(!kiln::same_dimension<I, K> && !kiln::same_dimension<I, K8>);
static_assert(std::is_same_v<kiln::base_of<K8>, K> && std::is_same_v<kiln::base_of<K>, K>);
static_assert(std::is_same_v<kiln::base_of<KMod8>, K>);

// Operations between different dimensions do not compile; within one they do.
static_assert(EqualityComparable<I, I> && EqualityComparable<K8, K>);
static_assert(!EqualityComparable<I, K> && !EqualityComparable<I, K8>);
static_assert(!EqualityComparable<I, int> && !EqualityComparable<int, I>);
static_assert(Ordered<K, K8> && !Ordered<I, K> && !Ordered<I, int>);
static_assert(!Addable<I, int> && !Addable<int, I>);
static_assert(Multipliable<I, int> && Multipliable<int, I> && !Multipliable<I, I>);
static_assert(!Multipliable<I, K>);
static_assert(AddAssignable<I&, I> && !AddAssignable<I&, K> && !AddAssignable<I&, int>);
static_assert(HasUnaryMinus<I> && HasUnaryMinus<K8>);

// Folds: Fold<K, 8> measures K in units of 8, folds compose, Fold<K, 1> is K.
static_assert(K8::stride == 8 && K8::modulus == 0);
static_assert(K::stride == 1 && K::modulus == 0);
static_assert(std::is_same_v<kiln::Fold<K8, 4>, K32>);
static_assert(std::is_same_v<kiln::Fold<kiln::Fold<K, 8>, 4>, kiln::Fold<K, 32>>);
static_assert(std::is_same_v<kiln::Fold<K, 1>, K>);
static_assert(std::is_same_v<kiln::Fold<K8, 1>, K8>);
static_assert(std::is_same_v<kiln::Fold<K2, 4>, K8>);
static_assert(!std::is_same_v<K8, K4> && !std::is_same_v<K8, K>);
static_assert(std::is_same_v<kiln::UnboundedOf<K8, 1>, K>);

// Bounded folds.
static_assert(KMod8::stride == 1 && KMod8::modulus == 8);
static_assert(kiln::Module<K8, 4>::stride == 8 && kiln::Module<K8, 4>::modulus == 4);
static_assert(!std::is_same_v<KMod8, K8> && !std::is_same_v<KMod8, K>);

// Result types of mixed-fold arithmetic: the finest common unit.
static_assert(std::is_same_v<decltype(K8(3) + K(4)), K>);
static_assert(std::is_same_v<decltype(K(4) + K8(3)), K>);
static_assert(std::is_same_v<decltype(K8(3) + K8(4)), K8>);
static_assert(std::is_same_v<decltype(K4(1) + K8(1)), K4>);
static_assert(std::is_same_v<decltype(kiln::Fold<K, 6>(1) + K8(1)), K2>);  // gcd(6, 8) = 2
static_assert(std::is_same_v<decltype(K8(3) - K(4)), K>);
static_assert(std::is_same_v<decltype(KMod8(3) + K8(1)), K>);
static_assert(std::is_same_v<decltype(K8(3) * 2), K8>);
static_assert(std::is_same_v<decltype(2 * K8(3)), K8>);
static_assert(std::is_same_v<decltype(K8(3) / 2), K8>);
static_assert(std::is_same_v<decltype(K8(3) % 2), K8>);
static_assert(std::is_same_v<decltype(KMod8(3) * 2), K>, "scaling unbounds a bounded fold");
static_assert(std::is_same_v<decltype(-K8(3)), K8>);
static_assert(std::is_same_v<decltype(kiln::min(K8(1), K(5))), K>);
static_assert(std::is_same_v<decltype(kiln::max(K8(1), K8(5))), K8>);
static_assert(std::is_same_v<decltype(kiln::fold<8>(K(28))), K8>);
static_assert(std::is_same_v<decltype(kiln::fold<4>(K8(1))), K32>);
static_assert(std::is_same_v<decltype(kiln::mod<8>(K(28))), KMod8>);
static_assert(std::is_same_v<decltype(kiln::mod<4>(K8(1))), kiln::Module<K8, 4>>);
static_assert(std::is_same_v<decltype(kiln::unfold(K8(3))), K>);
static_assert(std::is_same_v<decltype(kiln::unfold(kiln::Module<K8, 4>(3))), K>);
static_assert(std::is_same_v<decltype(++std::declval<I&>()), I&>);
static_assert(std::is_same_v<decltype(std::declval<I&>()++), I>);
static_assert(std::is_same_v<decltype(std::declval<K8&>() += K8(1)), K8&>);

// Everything is constexpr.
static_assert(K8(3) + K(4) == K(28));
static_assert(kiln::fold<8>(K(28)) == K8(3));
static_assert(kiln::mod<8>(K(28)).get() == 4);
static_assert((K8(3) - K(4)).get() == 20);

}  // namespace

TEST_CASE("dim: values are ints in units of their own type") {
  const I i(7);
  CHECK(i.get() == 7);
  CHECK(I().get() == 0);
  CHECK(K8(3).get() == 3);
  CHECK(K8(3).base_units() == 24);
  CHECK(K32(2).base_units() == 64);
  CHECK(K(5).base_units() == 5);
  CHECK(K8(-2).base_units() == -16);
  CHECK(kiln::Module<K8, 4>(3).base_units() == 24);
}

TEST_CASE("dim: arithmetic within one dimension") {
  SUBCASE("binary + and -") {
    CHECK((I(3) + I(4)).get() == 7);
    CHECK((I(3) - I(4)).get() == -1);
    CHECK((I(-3) + I(10)).get() == 7);
    CHECK(I(3) + I(4) == I(7));
    CHECK(I(3) + I(4) != I(8));
  }
  SUBCASE("compound assignment returns the object") {
    I i(10);
    I& r = (i += I(5));
    CHECK(&r == &i);
    CHECK(i.get() == 15);
    I& r2 = (i -= I(7));
    CHECK(&r2 == &i);
    CHECK(i.get() == 8);
    K8 k(2);
    k += K8(3);
    CHECK(k.get() == 5);
    k -= K8(1);
    CHECK(k.get() == 4);
    CHECK(k.base_units() == 32);
  }
  SUBCASE("increment and decrement") {
    I i(4);
    CHECK((++i).get() == 5);
    CHECK(i.get() == 5);
    I old = i++;
    CHECK(old.get() == 5);
    CHECK(i.get() == 6);
    CHECK((--i).get() == 5);
    CHECK(i.get() == 5);
    old = i--;
    CHECK(old.get() == 5);
    CHECK(i.get() == 4);
    I& pre = ++i;
    CHECK(&pre == &i);
    K8 k(1);
    ++k;  // one K8 unit is 8 K's
    CHECK(k.base_units() == 16);
  }
  SUBCASE("unary minus") {
    CHECK((-I(3)).get() == -3);
    CHECK(-I(3) == I(-3));
    CHECK((-(-I(3))).get() == 3);
    CHECK((-K8(2)).base_units() == -16);
  }
  SUBCASE("scaling by an int") {
    CHECK((I(7) * 3).get() == 21);
    CHECK((3 * I(7)).get() == 21);
    CHECK((I(7) * -2).get() == -14);
    CHECK((I(7) / 2).get() == 3);
    CHECK((I(-7) / 2).get() == -3);  // toward zero, like int
    CHECK((I(7) % 4).get() == 3);
    CHECK((I(12) % 4).get() == 0);
    CHECK((I(-7) % 4).get() == -3);
    CHECK((K8(3) * 2).base_units() == 48);
    CHECK((K8(7) / 2).get() == 3);
    CHECK((K8(7) % 3).get() == 1);
    // A bounded fold scaled is an unbounded value of the same unit, not reduced.
    CHECK((KMod8(5) * 3).get() == 15);
    CHECK((3 * KMod8(5)) == K(15));
  }
  SUBCASE("min and max") {
    CHECK(kiln::min(I(3), I(5)) == I(3));
    CHECK(kiln::min(I(5), I(3)) == I(3));
    CHECK(kiln::max(I(3), I(5)) == I(5));
    CHECK(kiln::max(I(5), I(3)) == I(5));
    CHECK(kiln::min(I(-4), I(2)).get() == -4);
    CHECK(kiln::max(I(-4), I(-2)).get() == -2);
    // Across folds, in the common unit.
    CHECK(kiln::min(K8(1), K(5)).get() == 5);
    CHECK(kiln::max(K8(1), K(5)).get() == 8);
    CHECK(kiln::min(K8(1), K(9)).get() == 8);
    CHECK(kiln::max(K8(1), K(9)).get() == 9);
    CHECK(kiln::max(K8(2), K8(5)).get() == 5);
  }
}

TEST_CASE("dim: the six comparisons") {
  SUBCASE("one type") {
    CHECK(I(3) == I(3));
    CHECK_FALSE(I(3) == I(4));
    CHECK(I(3) != I(4));
    CHECK_FALSE(I(3) != I(3));
    CHECK(I(3) < I(4));
    CHECK_FALSE(I(4) < I(3));
    CHECK_FALSE(I(3) < I(3));
    CHECK(I(3) <= I(3));
    CHECK(I(3) <= I(4));
    CHECK_FALSE(I(4) <= I(3));
    CHECK(I(4) > I(3));
    CHECK_FALSE(I(3) > I(4));
    CHECK_FALSE(I(3) > I(3));
    CHECK(I(3) >= I(3));
    CHECK(I(4) >= I(3));
    CHECK_FALSE(I(3) >= I(4));
    CHECK(I(-1) < I(0));
  }
  SUBCASE("across folds, in base units") {
    CHECK(K8(3) == K(24));
    CHECK(K(24) == K8(3));
    CHECK_FALSE(K8(3) == K(25));
    CHECK_FALSE(K8(3) == K(3));
    CHECK(K8(3) != K(25));
    CHECK_FALSE(K8(3) != K(24));
    CHECK(K8(3) < K(25));
    CHECK_FALSE(K8(3) < K(24));
    CHECK(K(23) < K8(3));
    CHECK(K8(3) <= K(24));
    CHECK_FALSE(K8(3) <= K(23));
    CHECK(K8(3) > K(23));
    CHECK_FALSE(K8(3) > K(24));
    CHECK(K8(3) >= K(24));
    CHECK_FALSE(K8(3) >= K(25));
    CHECK(K32(1) == K8(4));
    CHECK(K32(1) > K8(3));
    CHECK(K4(3) < K8(2));
  }
}

TEST_CASE("dim: folds carry into each other") {
  CHECK(K8(3) + K(4) == K(28));
  CHECK((K8(3) + K(4)).get() == 28);
  CHECK((K(4) + K8(3)).get() == 28);
  CHECK((K8(3) + K8(4)).get() == 7);
  CHECK((K8(3) - K(4)).get() == 20);
  CHECK((K(4) - K8(3)).get() == -20);
  CHECK((K32(1) + K8(1) + K(1)).get() == 41);
  CHECK((K4(1) + K8(1)).get() == 3);                // in K4 units: 4 + 8 = 12 = 3 * 4
  CHECK((kiln::Fold<K, 6>(1) + K8(1)).get() == 7);  // in K2 units: 6 + 8 = 14 = 7 * 2
  CHECK((KMod8(3) + K8(1)).get() == 11);
  K k = K8(2) + K(1);
  k += K(2);
  CHECK(k.get() == 19);
}

TEST_CASE("dim: Fold<K, 1> is K and folds compose, checked by value") {
  kiln::Fold<K, 1> k1(5);
  K k = k1;  // the same type: a plain copy
  CHECK(k.get() == 5);
  CHECK(k1.base_units() == 5);
  kiln::Fold<kiln::Fold<K, 8>, 4> k32(2);
  CHECK(k32.get() == 2);
  CHECK(k32.base_units() == 64);
  CHECK(k32 == K(64));
  CHECK(k32 == K8(8));
  CHECK(k32 == K32(2));
}

TEST_CASE("dim: dim_cast, fold, mod and unfold") {
  SUBCASE("fold") {
    CHECK(kiln::fold<8>(K(28)) == K8(3));
    CHECK(kiln::fold<8>(K(28)).get() == 3);
    CHECK(kiln::fold<8>(K(31)).get() == 3);
    CHECK(kiln::fold<8>(K(32)).get() == 4);
    CHECK(kiln::fold<8>(K(7)).get() == 0);
    CHECK(kiln::fold<4>(K8(3)).get() == 0);  // 24 K's is 0 whole K32's
    CHECK(kiln::fold<4>(K8(9)).get() == 2);  // 72 K's is 2 whole K32's
    CHECK(kiln::fold<1>(K(9)).get() == 9);
    CHECK(kiln::fold<8>(K(-9)).get() == -1);  // rounds toward zero
    CHECK(kiln::fold<8>(K(-3)).get() == 0);
  }
  SUBCASE("mod") {
    CHECK(kiln::mod<8>(K(28)).get() == 4);
    CHECK(kiln::mod<8>(K(28)) == K(4));
    CHECK(kiln::mod<8>(K(8)).get() == 0);
    CHECK(kiln::mod<8>(K(7)).get() == 7);
    // K8 modulo 4: (100 / 8) % 4 = 12 % 4 = 0, (88 / 8) % 4 = 3.
    CHECK(kiln::mod<4>(K8(12)).get() == 0);
    CHECK(kiln::dim_cast<kiln::Module<K8, 4>>(K(100)).get() == 0);
    CHECK(kiln::dim_cast<kiln::Module<K8, 4>>(K(88)).get() == 3);
    CHECK(kiln::dim_cast<kiln::Module<K8, 4>>(K(88)).base_units() == 24);
  }
  SUBCASE("dim_cast") {
    CHECK(kiln::dim_cast<K8>(K(28)).get() == 3);
    CHECK(kiln::dim_cast<K>(K8(3)).get() == 24);
    CHECK(kiln::dim_cast<K4>(K8(3)).get() == 6);
    CHECK(kiln::dim_cast<K8>(K4(5)).get() == 2);
    CHECK(kiln::dim_cast<KMod8>(K(13)).get() == 5);
    CHECK(kiln::dim_cast<K>(KMod8(5)).get() == 5);
    CHECK(kiln::dim_cast<K>(K(-4)).get() == -4);
  }
  SUBCASE("unfold") {
    CHECK(kiln::unfold(K8(3)) == K(24));
    CHECK(kiln::unfold(K8(3)).get() == 24);
    CHECK(kiln::unfold(K32(2)).get() == 64);
    CHECK(kiln::unfold(K(5)).get() == 5);
    CHECK(kiln::unfold(kiln::Module<K8, 4>(3)).get() == 24);
    CHECK(kiln::unfold(kiln::fold<8>(K(29))).get() == 24);
  }
}

TEST_CASE("dim: bounded folds reduce negative values into [0, N)") {
  CHECK(kiln::mod<8>(K(-3)).get() == 5);
  CHECK(kiln::mod<8>(K(-8)).get() == 0);
  CHECK(kiln::dim_cast<kiln::Module<K8, 4>>(K(-9)).get() == 3);  // -9 / 8 = -1 -> 3
  CHECK(kiln::mod<8>(K(13)).get() == 5);
}

TEST_CASE("dim: += and -= take a coarser fold of the same dimension") {
  K k(3);
  k += K8(1);
  CHECK(k == K(11));
  k -= K8(1);
  CHECK(k == K(3));
}

// The behaviour docs/typed-dims.md ("mod<N> of a fold") describes.
TEST_CASE("dim: mod<N> of a fold counts in the fold's units") {
  // K8 modulo 4: 5 groups of 8 -> 1 group (8 K's), not K modulo 4.
  auto m = kiln::mod<4>(K8(5));
  static_assert(std::is_same_v<decltype(m), kiln::Module<K8, 4>>);
  static_assert(std::is_same_v<kiln::Module<K8, 4>, kiln::ModuleDim<K, 4, 8>>);
  CHECK(m.get() == 1);
  CHECK(m.base_units() == 8);
  CHECK(m == K8(1));
  CHECK(m + K(3) == K(11));
  CHECK(kiln::mod<4>(K8(-1)).get() == 3);  // into [0, 4) for negative values too
  // A fold of K given to mod<N> of K is converted first: K(44) is K8(5) + K(4).
  CHECK(kiln::mod<4>(kiln::fold<8>(K(44))).get() == 1);
  CHECK(kiln::mod<32>(K(44)).get() == 12);
  // mod of a bounded fold replaces its modulus: 7 (mod 8) taken mod 4 is 3.
  auto b = kiln::mod<4>(KMod8(7));
  static_assert(std::is_same_v<decltype(b), kiln::Module<K, 4>>);
  CHECK(b.get() == 3);
}
