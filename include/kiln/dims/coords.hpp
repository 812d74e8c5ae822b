#pragma once
/// Coordinates: a bundle of values of different dimensions.
///
/// A Coords holds one value per logical dimension, in that dimension's base units, so
/// folds of one dimension carry into each other as they are added:
///
///   auto c = I(1) + J(2);          // Coords<I, J>
///   auto d = c + K8(1) + K(3);     // Coords<I, J, K> with K == 11
///   get<K8>(d) == K8(1);           // read back in any fold
///   c == J(2) + I(1);              // order does not matter
///
/// Indexing a tensor with a Coords uses the dimensions the tensor has and ignores
/// the others (tensor.hpp).

#include "dim.hpp"

namespace kiln {

template <class... Bases>
class Coords;

namespace detail {
template <class T>
struct IsCoords : Bool<false> {};
template <class... Bs>
struct IsCoords<Coords<Bs...>> : Bool<true> {};
}  // namespace detail

template <class T>
inline constexpr bool is_coords = detail::IsCoords<detail::remove_cvref_t<T>>::value;

/// Values of several distinct logical dimensions (each Base a declared dimension).
template <class... Bases>
class Coords {
  static constexpr int n = sizeof...(Bases);

 public:
  using bases = detail::TypeList<Bases...>;

  /// Whether the dimension of D (any fold of it) is present.
  template <class D>
  static constexpr bool contains = detail::IndexOf<base_of<D>, Bases...>::value >= 0;

  KILN_HOST_DEVICE constexpr Coords() : units_{} {}
  /// From values in base units, in the order of Bases.
  template <class... Ints>
  KILN_HOST_DEVICE constexpr explicit Coords(detail::Constant<int, 0>, Ints... units)
      : units_{units...} {}

  /// The value of D's dimension in base units (0 if absent).
  template <class D>
  KILN_HOST_DEVICE constexpr int base_units() const {
    constexpr int i = detail::IndexOf<base_of<D>, Bases...>::value;
    if constexpr (i < 0) {
      return 0;
    } else {
      return units_[i];
    }
  }
  /// The value of D's dimension, converted to D (a fold or a bounded fold).
  template <class D>
  KILN_HOST_DEVICE constexpr D get() const {
    static_assert(contains<D>, "these coordinates have no value for this dimension");
    return dim_cast<D>(base_of<D>(base_units<D>()));
  }

  /// Adds the value of one dimension (merged with the same dimension if present).
  template <class D, class = detail::if_dim<D>>
  KILN_HOST_DEVICE constexpr auto operator+(D d) const {
    return add(d.base_units(), static_cast<base_of<D>*>(nullptr));
  }
  template <class D, class = detail::if_dim<D>>
  KILN_HOST_DEVICE constexpr auto operator-(D d) const {
    return add(-d.base_units(), static_cast<base_of<D>*>(nullptr));
  }
  template <class... Others>
  KILN_HOST_DEVICE constexpr auto operator+(const Coords<Others...>& other) const {
    return add_all(other, 1);
  }
  template <class... Others>
  KILN_HOST_DEVICE constexpr auto operator-(const Coords<Others...>& other) const {
    return add_all(other, -1);
  }
  KILN_HOST_DEVICE constexpr Coords operator-() const {
    Coords r;
    for (int i = 0; i < n; ++i) r.units_[i] = -units_[i];
    return r;
  }

  /// Equal when both hold the same dimensions with the same values, in any order.
  template <class... Others>
  KILN_HOST_DEVICE constexpr bool operator==(const Coords<Others...>& other) const {
    static_assert(sizeof...(Others) == n && (Coords<Others...>::template contains<Bases> && ...),
                  "only coordinates over the same dimensions compare");
    return ((base_units<Bases>() == other.template base_units<Bases>()) && ...);
  }
  template <class... Others>
  KILN_HOST_DEVICE constexpr bool operator!=(const Coords<Others...>& other) const {
    return !(*this == other);
  }

 private:
  template <class...>
  friend class Coords;

  template <class B>
  KILN_HOST_DEVICE constexpr auto add(int units, B*) const {
    constexpr int i = detail::IndexOf<B, Bases...>::value;
    if constexpr (i >= 0) {
      Coords r = *this;
      r.units_[i] += units;
      return r;
    } else {
      Coords<Bases..., B> r;
      for (int j = 0; j < n; ++j) r.units_[j] = units_[j];
      r.units_[n] = units;
      return r;
    }
  }
  template <class... Others>
  KILN_HOST_DEVICE constexpr auto add_all(const Coords<Others...>& other, int sign) const {
    return add_each(other, sign, static_cast<Others*>(nullptr)...);
  }
  template <class... Others>
  KILN_HOST_DEVICE constexpr Coords add_each(const Coords<Others...>&, int) const {
    return *this;
  }
  template <class... Others, class First, class... Rest>
  KILN_HOST_DEVICE constexpr auto add_each(const Coords<Others...>& other, int sign, First* f,
                                           Rest*... rest) const {
    return add(sign * other.template base_units<First>(), f).add_each(other, sign, rest...);
  }

  int units_[n > 0 ? n : 1];
};

/// Builds coordinates from dimension values of distinct dimensions: coords(I(1), K(2)).
template <class... Ds>
KILN_HOST_DEVICE constexpr auto coords(Ds... ds) {
  return (Coords<>() + ... + ds);
}

/// A Coords from a single value or a Coords (used where either is accepted).
template <class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr auto to_coords(D d) {
  return Coords<>() + d;
}
template <class... Bs>
KILN_HOST_DEVICE constexpr const Coords<Bs...>& to_coords(const Coords<Bs...>& c) {
  return c;
}

/// The value of D's dimension in c: get<K8>(I(1) + K(28)) == K8(3).
template <class D, class... Bs>
KILN_HOST_DEVICE constexpr D get(const Coords<Bs...>& c) {
  return c.template get<D>();
}

// Different dimensions: the sum is a bundle, never a value of either.
template <class A, class B, class = detail::if_other_dimension<A, B>>
KILN_HOST_DEVICE constexpr auto operator+(A a, B b) {
  return Coords<>() + a + b;
}
template <class A, class B, class = detail::if_other_dimension<A, B>>
KILN_HOST_DEVICE constexpr auto operator-(A a, B b) {
  return Coords<>() + a - b;
}
template <class D, class... Bs, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr auto operator+(D d, const Coords<Bs...>& c) {
  return Coords<>() + d + c;
}
template <class D, class... Bs, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr auto operator-(D d, const Coords<Bs...>& c) {
  return Coords<>() + d - c;
}

}  // namespace kiln
