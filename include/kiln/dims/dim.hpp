#pragma once
/// Typed dimensions: every logical dimension of a kernel is its own type.
///
/// A dimension value wraps an int. Values of one dimension add, subtract and compare;
/// values of different dimensions never compare, and their sum is a Coords bundle
/// (coords.hpp), never a value of either. Folds measure a dimension in coarser units:
/// Fold<K, 8> (K8) counts groups of 8 K's, and Module<K, 8> is K modulo 8. Folds of one
/// dimension carry into each other: K8(3) + K(4) == K(28).
///
///   KILN_DIM(I);                 // declares struct I
///   KILN_DIM(K);
///   using K8 = kiln::Fold<K, 8>;
///   K k = K8(3) + K(4);          // K(28)
///   auto c = I(1) + K(2);        // kiln::Coords<I, K>
///   // I(1) == K(1);             // does not compile

#include "meta.hpp"

namespace kiln {

template <class Self, class Base, int Stride, int Modulus>
class DimValue;

namespace detail {

template <class... Ts>
struct VoidT {
  using type = void;
};
template <class T, class = void>
struct IsDim : Bool<false> {};
template <class T>
struct IsDim<T, typename VoidT<typename T::kiln_dim_base>::type> : Bool<true> {};

}  // namespace detail

/// True when T is a typed dimension (a declared dimension or a fold of one).
template <class T>
inline constexpr bool is_dim = detail::IsDim<detail::remove_cvref_t<T>>::value;

/// The dimension a fold measures (K for K8); a declared dimension is its own base.
template <class D>
using base_of = typename D::kiln_dim_base;

/// Whether two dimension types measure the same logical dimension.
template <class A, class B>
inline constexpr bool same_dimension = detail::is_same<base_of<A>, base_of<B>>;

/// A value of one typed dimension.
///
/// Parameters:
///   Self     the derived type, which arithmetic returns
///   Base     the logical dimension (Self for a declared dimension)
///   Stride   how many Base units one unit of Self is (8 for K8)
///   Modulus  0 for an unbounded dimension; N for "modulo N" (a bounded fold)
template <class Self, class Base, int Stride, int Modulus>
class DimValue {
  static_assert(Stride > 0, "a fold stride must be positive");
  static_assert(Modulus >= 0, "a fold modulus must not be negative");

 public:
  using kiln_dim_base = Base;
  static constexpr int stride = Stride;
  static constexpr int modulus = Modulus;

  KILN_HOST_DEVICE constexpr DimValue() : value_(0) {}
  KILN_HOST_DEVICE constexpr explicit DimValue(int value) : value_(value) {}

  /// The value as a plain int, in units of Self.
  KILN_HOST_DEVICE constexpr int get() const { return value_; }
  /// The value in units of Base (K8(3).base_units() == 24).
  KILN_HOST_DEVICE constexpr int base_units() const { return value_ * Stride; }

  KILN_HOST_DEVICE constexpr Self& operator+=(Self other) {
    value_ += other.get();
    return self();
  }
  KILN_HOST_DEVICE constexpr Self& operator-=(Self other) {
    value_ -= other.get();
    return self();
  }
  /// Adds a coarser fold of the same dimension: K k; k += K8(1) adds 8.
  template <class Other,
            class = detail::enable_if_t<!detail::is_same<Other, Self> &&
                                        detail::is_same<typename Other::kiln_dim_base, Base> &&
                                        Other::stride % Stride == 0>>
  KILN_HOST_DEVICE constexpr Self& operator+=(Other other) {
    value_ += other.base_units() / Stride;
    return self();
  }
  template <class Other,
            class = detail::enable_if_t<!detail::is_same<Other, Self> &&
                                        detail::is_same<typename Other::kiln_dim_base, Base> &&
                                        Other::stride % Stride == 0>>
  KILN_HOST_DEVICE constexpr Self& operator-=(Other other) {
    value_ -= other.base_units() / Stride;
    return self();
  }
  KILN_HOST_DEVICE constexpr Self& operator++() {
    ++value_;
    return self();
  }
  KILN_HOST_DEVICE constexpr Self operator++(int) {
    Self old = self();
    ++value_;
    return old;
  }
  KILN_HOST_DEVICE constexpr Self& operator--() {
    --value_;
    return self();
  }
  KILN_HOST_DEVICE constexpr Self operator--(int) {
    Self old = self();
    --value_;
    return old;
  }
  KILN_HOST_DEVICE constexpr Self operator-() const { return Self(-value_); }

 private:
  KILN_HOST_DEVICE constexpr Self& self() { return static_cast<Self&>(*this); }
  int value_;
};

/// Base class of a declared dimension; use KILN_DIM(Name) to declare one.
template <class Self>
using Dim = DimValue<Self, Self, 1, 0>;

/// A dimension counted in units of Stride base units (see Fold).
template <class Base, int Stride>
struct FoldDim : DimValue<FoldDim<Base, Stride>, Base, Stride, 0> {
  using DimValue<FoldDim<Base, Stride>, Base, Stride, 0>::DimValue;
};

/// A dimension counted in units of Stride base units, modulo Modulus (see Module).
template <class Base, int Modulus, int Stride>
struct ModuleDim : DimValue<ModuleDim<Base, Modulus, Stride>, Base, Stride, Modulus> {
  using DimValue<ModuleDim<Base, Modulus, Stride>, Base, Stride, Modulus>::DimValue;
};

namespace detail {
template <class Base, int Stride>
struct FoldOf {
  using type = FoldDim<Base, Stride>;
};
template <class Base>
struct FoldOf<Base, 1> {
  using type = Base;
};
}  // namespace detail

/// The unbounded dimension that measures D's base in units of Stride base units.
/// UnboundedOf<K, 1> is K itself, so every type has one canonical spelling.
template <class D, int Stride>
using UnboundedOf = typename detail::FoldOf<base_of<D>, Stride>::type;

/// D folded by N: one unit is N units of D. Fold<Fold<K, 8>, 4> is Fold<K, 32>,
/// and Fold<K, 1> is K.
template <class D, int N>
using Fold = UnboundedOf<D, D::stride * N>;

/// D modulo N (a bounded fold). mod<N>(d) and dim_cast reduce a value into [0, N); the
/// constructor, like every dimension's, takes the value as given.
template <class D, int N>
using Module = ModuleDim<base_of<D>, N, D::stride>;

/// Declares a typed dimension: KILN_DIM(I); makes struct I. `I::kiln_name()` is "I", the
/// name kiln::gen::Spec gives the dimension when it derives a tensor from host types.
#define KILN_DIM(Name)                                                          \
  struct Name : ::kiln::Dim<Name> {                                             \
    using ::kiln::Dim<Name>::DimValue;                                          \
    KILN_HOST_DEVICE static constexpr const char* kiln_name() { return #Name; } \
  }

namespace detail {
template <class A, class B>
using CommonDim = UnboundedOf<A, gcd(A::stride, B::stride)>;

// 1: same dimension, 0: two different dimensions, -1: not both dimensions.
template <class A, class B, bool = is_dim<A>&& is_dim<B>>
struct DimRelation : Constant<int, -1> {};
template <class A, class B>
struct DimRelation<A, B, true> : Constant<int, same_dimension<A, B> ? 1 : 0> {};

template <class A, class B>
using if_same_dimension = enable_if_t<DimRelation<A, B>::value == 1>;
template <class A, class B>
using if_other_dimension = enable_if_t<DimRelation<A, B>::value == 0>;
template <class A>
using if_dim = enable_if_t<is_dim<A>>;
}  // namespace detail

/// Converts a value to another fold of the same dimension (rounding toward zero, and
/// reducing by To's modulus for a bounded fold): dim_cast<K8>(K(28)) == K8(3).
template <class To, class From, class = detail::if_same_dimension<To, From>>
KILN_HOST_DEVICE constexpr To dim_cast(From from) {
  int units = from.base_units() / To::stride;
  if constexpr (To::modulus > 0) {
    units %= To::modulus;
    if (units < 0) units += To::modulus;  // into [0, N) for negative values too
  }
  return To(units);
}

/// K(28) -> Fold<K, 8>(3).
template <int N, class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr Fold<D, N> fold(D d) {
  return dim_cast<Fold<D, N>>(d);
}
/// K(28) -> Module<K, 8>(4).
template <int N, class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr Module<D, N> mod(D d) {
  return dim_cast<Module<D, N>>(d);
}
/// K8(3) -> K(24).
template <class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr base_of<D> unfold(D d) {
  return base_of<D>(d.base_units());
}

// Same dimension: the result is in the finest common unit, K8(3) + K(4) == K(28).
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr detail::CommonDim<A, B> operator+(A a, B b) {
  using R = detail::CommonDim<A, B>;
  return R((a.base_units() + b.base_units()) / R::stride);
}
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr detail::CommonDim<A, B> operator-(A a, B b) {
  using R = detail::CommonDim<A, B>;
  return R((a.base_units() - b.base_units()) / R::stride);
}

template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr bool operator==(A a, B b) {
  return a.base_units() == b.base_units();
}
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr bool operator!=(A a, B b) {
  return a.base_units() != b.base_units();
}
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr bool operator<(A a, B b) {
  return a.base_units() < b.base_units();
}
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr bool operator<=(A a, B b) {
  return a.base_units() <= b.base_units();
}
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr bool operator>(A a, B b) {
  return a.base_units() > b.base_units();
}
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr bool operator>=(A a, B b) {
  return a.base_units() >= b.base_units();
}

// Values of different dimensions never compare: these deleted overloads turn the page of
// failed candidates into one error that names both types and points at the line below.
template <class A, class B, detail::if_other_dimension<A, B>* = nullptr>
KILN_HOST_DEVICE bool operator==(A, B) = delete;  // values of different dimensions never compare
template <class A, class B, detail::if_other_dimension<A, B>* = nullptr>
KILN_HOST_DEVICE bool operator!=(A, B) = delete;  // values of different dimensions never compare
template <class A, class B, detail::if_other_dimension<A, B>* = nullptr>
KILN_HOST_DEVICE bool operator<(A, B) = delete;  // values of different dimensions have no order
template <class A, class B, detail::if_other_dimension<A, B>* = nullptr>
KILN_HOST_DEVICE bool operator<=(A, B) = delete;  // values of different dimensions have no order
template <class A, class B, detail::if_other_dimension<A, B>* = nullptr>
KILN_HOST_DEVICE bool operator>(A, B) = delete;  // values of different dimensions have no order
template <class A, class B, detail::if_other_dimension<A, B>* = nullptr>
KILN_HOST_DEVICE bool operator>=(A, B) = delete;  // values of different dimensions have no order

// Scaling by a plain count keeps the dimension (a bounded fold becomes unbounded).
template <class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr UnboundedOf<D, D::stride> operator*(D d, int n) {
  return UnboundedOf<D, D::stride>(d.get() * n);
}
template <class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr UnboundedOf<D, D::stride> operator*(int n, D d) {
  return UnboundedOf<D, D::stride>(n * d.get());
}
template <class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr UnboundedOf<D, D::stride> operator/(D d, int n) {
  return UnboundedOf<D, D::stride>(d.get() / n);
}
template <class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr UnboundedOf<D, D::stride> operator%(D d, int n) {
  return UnboundedOf<D, D::stride>(d.get() % n);
}

/// The smaller of two values of one dimension, in their common unit.
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr detail::CommonDim<A, B> min(A a, B b) {
  using R = detail::CommonDim<A, B>;
  return a.base_units() < b.base_units() ? dim_cast<R>(a) : dim_cast<R>(b);
}
/// The larger of two values of one dimension, in their common unit.
template <class A, class B, class = detail::if_same_dimension<A, B>>
KILN_HOST_DEVICE constexpr detail::CommonDim<A, B> max(A a, B b) {
  using R = detail::CommonDim<A, B>;
  return a.base_units() < b.base_units() ? dim_cast<R>(b) : dim_cast<R>(a);
}

}  // namespace kiln
