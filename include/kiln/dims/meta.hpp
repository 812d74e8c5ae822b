#pragma once
/// Small type-level helpers for the device headers, which may not include the
/// standard library (NVRTC and hipRTC ship none).

#include "../detail/portability.hpp"

namespace kiln::detail {

template <class T, T V>
struct Constant {
  static constexpr T value = V;
};
template <bool B>
using Bool = Constant<bool, B>;

template <class A, class B>
inline constexpr bool is_same = false;
template <class A>
inline constexpr bool is_same<A, A> = true;

template <bool B, class T = void>
struct EnableIf {};
template <class T>
struct EnableIf<true, T> {
  using type = T;
};
template <bool B, class T = void>
using enable_if_t = typename EnableIf<B, T>::type;

template <bool B, class T, class F>
struct Conditional {
  using type = T;
};
template <class T, class F>
struct Conditional<false, T, F> {
  using type = F;
};
template <bool B, class T, class F>
using conditional_t = typename Conditional<B, T, F>::type;

template <class T>
struct RemoveCvRef {
  using type = T;
};
template <class T>
struct RemoveCvRef<const T> : RemoveCvRef<T> {};
template <class T>
struct RemoveCvRef<volatile T> : RemoveCvRef<T> {};
template <class T>
struct RemoveCvRef<const volatile T> : RemoveCvRef<T> {};
template <class T>
struct RemoveCvRef<T&> : RemoveCvRef<T> {};
template <class T>
struct RemoveCvRef<T&&> : RemoveCvRef<T> {};
template <class T>
using remove_cvref_t = typename RemoveCvRef<T>::type;

template <class T>
struct RemoveConst {
  using type = T;
};
template <class T>
struct RemoveConst<const T> {
  using type = T;
};

/// An ordered list of types.
template <class... Ts>
struct TypeList {
  static constexpr int size = sizeof...(Ts);
};

/// Index of the first type in Ts... for which Pred<T>::value holds, or -1.
template <template <class> class Pred, class... Ts>
struct FindIf;
template <template <class> class Pred>
struct FindIf<Pred> {
  static constexpr int value = -1;
};
template <template <class> class Pred, class T, class... Ts>
struct FindIf<Pred, T, Ts...> {
  static constexpr int rest = FindIf<Pred, Ts...>::value;
  static constexpr int value = Pred<T>::value ? 0 : (rest < 0 ? -1 : rest + 1);
};

/// Index of T in Ts..., or -1.
template <class T, class... Ts>
struct IndexOf {
  template <class U>
  using Same = Bool<is_same<T, U>>;
  static constexpr int value = FindIf<Same, Ts...>::value;
};

/// The I-th type of Ts...
template <int I, class... Ts>
struct TypeAt;
template <class T, class... Ts>
struct TypeAt<0, T, Ts...> {
  using type = T;
};
template <int I, class T, class... Ts>
struct TypeAt<I, T, Ts...> : TypeAt<I - 1, Ts...> {};

template <int... Is>
struct IntSeq {};
template <int N, int... Is>
struct MakeIntSeq : MakeIntSeq<N - 1, N - 1, Is...> {};
template <int... Is>
struct MakeIntSeq<0, Is...> {
  using type = IntSeq<Is...>;
};
template <int N>
using make_int_seq = typename MakeIntSeq<N>::type;

KILN_HOST_DEVICE constexpr int gcd(int a, int b) {
  return b == 0 ? a : gcd(b, a % b);
}

}  // namespace kiln::detail
