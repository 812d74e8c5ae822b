#pragma once
/// Vector access: N consecutive elements moved as one (up to 16-byte) load or store
/// where the layout allows it, element by element where it does not.

#include "tensor.hpp"

namespace kiln {

namespace detail {
KILN_HOST_DEVICE constexpr int vector_alignment(int bytes) {
  int a = 1;
  while (a < 16 && bytes % (a * 2) == 0) a *= 2;
  return a;
}
}  // namespace detail

/// N values of T, aligned for one wide memory access.
template <class T, int N>
struct alignas(detail::vector_alignment(int(sizeof(T)) * N)) Vec {
  static_assert(N > 0, "a vector holds at least one element");
  T v[N];
  KILN_HOST_DEVICE constexpr T& operator[](int i) { return v[i]; }
  KILN_HOST_DEVICE constexpr const T& operator[](int i) const { return v[i]; }
  static constexpr int size = N;
};

namespace detail {
// A number the I-th stride is always a multiple of: a static stride itself; a packed
// stride over a run-time size (derived: the next dimension's stride times its size) is
// a multiple of the next dimension's stride; an explicit run-time stride only of 1.
template <class L, int I>
KILN_HOST_DEVICE constexpr int stride_factor() {
  constexpr int s = L::template extent_at<I>::stride;
  if constexpr (s >= 0) {
    return s;
  } else if constexpr (s == derived && I + 1 < L::rank) {
    return stride_factor<L, I + 1>();
  } else {
    return 1;
  }
}

// Every stride is 1 or provably a multiple of N, so aligned starts stay aligned.
template <class L, int N, int... Is>
KILN_HOST_DEVICE constexpr bool strides_keep_alignment(IntSeq<Is...>) {
  return ((L::template extent_at<Is>::stride == 1 || stride_factor<L, Is>() % N == 0) && ...);
}

template <class Tensor, int N>
KILN_HOST_DEVICE constexpr bool vectorizable() {
  using L = typename Tensor::layout_type;
  constexpr int i = L::contiguous_index;
  if constexpr (i < 0) {
    return false;
  } else {
    using E = typename L::template extent_at<i>;
    constexpr int bytes = int(sizeof(typename Tensor::element_type)) * N;
    constexpr int ratio = L::template carry_ratio<i>;
    return E::size > 0 && E::size % N == 0 && (ratio == 0 || ratio % N == 0) &&
           vector_alignment(bytes) == bytes && Tensor::swizzle_type::contiguous % N == 0 &&
           strides_keep_alignment<L, N>(make_int_seq<L::rank>());
  }
}
}  // namespace detail

/// Whether load_vector<N>/store_vector<N> on Tensor compile to one wide access: its
/// contiguous dimension has a static size that N divides (so a vector never crosses a
/// row or a fold boundary), every other stride is provably a multiple of N (a static
/// multiple, or a packed stride over a run-time size whose inner stride is one: so an
/// aligned start stays aligned), N elements fit an aligned access of a power-of-two
/// size, and the swizzle keeps runs of N elements together. Where it is false, the
/// access falls back to N element accesses; ask it in a static_assert to be sure:
///
///   // (I:n, J:m, K:8): I's stride J*8 is a run-time value, but a multiple of 8
///   static_assert(kiln::is_vectorizable<Tensor<float, Extent<I, dynamic>,
///                                                Extent<J, dynamic>, Extent<K, 8>>, 4>);
///   // (I:4 stride ld, K:32): a run-time stride may break alignment -> N scalar accesses
///   static_assert(!kiln::is_vectorizable<Tensor<float, Extent<I, 4, dynamic>,
///                                                 Extent<K, 32>>, 4>);
template <class Tensor, int N>
inline constexpr bool is_vectorizable = detail::vectorizable<Tensor, N>();

/// Loads N consecutive elements along the tensor's contiguous dimension, starting at
/// `at`. For the one-access path, the tensor's data must be aligned to the vector's
/// size and `at`'s index along that dimension a multiple of N.
template <int N, class Tensor, class C>
KILN_HOST_DEVICE constexpr auto load_vector(const Cursor<Tensor, C>& at) {
  using L = typename Tensor::layout_type;
  using T = typename detail::RemoveConst<typename Tensor::element_type>::type;
  static_assert(L::contiguous_index >= 0,
                "load_vector needs a tensor dimension with a static stride of 1");
  using D = typename L::template dim_at<L::contiguous_index>;
  Vec<T, N> r{};
  if constexpr (is_vectorizable<Tensor, N> && KILN_DEVICE_PASS) {
    r = *reinterpret_cast<const Vec<T, N>*>(at.ptr());
  } else {
    for (int j = 0; j < N; ++j) r[j] = *at[D(j)];
  }
  return r;
}

/// Stores N consecutive elements along the tensor's contiguous dimension (see
/// load_vector for the alignment rule).
template <int N, class Tensor, class C, class T>
KILN_HOST_DEVICE constexpr void store_vector(const Cursor<Tensor, C>& at, const Vec<T, N>& v) {
  using L = typename Tensor::layout_type;
  static_assert(L::contiguous_index >= 0,
                "store_vector needs a tensor dimension with a static stride of 1");
  using D = typename L::template dim_at<L::contiguous_index>;
  if constexpr (is_vectorizable<Tensor, N> && KILN_DEVICE_PASS) {
    *reinterpret_cast<Vec<T, N>*>(at.ptr()) = v;
  } else {
    for (int j = 0; j < N; ++j) *at[D(j)] = v[j];
  }
}

/// v[0] .. v[N - 1] into p[0] .. p[N - 1] by 16-byte stores (8-byte where N is even but not
/// a multiple of 4) where p is aligned to them, else one element at a time. For a thread's
/// run of consecutive floats whose neighbours' runs lie a run apart: one store an element
/// sends each sector a few bytes at a time (ncu had a norm backward's partial rows using
/// 4.8 of each sector's 32 bytes, its warps waiting on the store queue).
template <int N>
KILN_HOST_DEVICE KILN_FORCEINLINE void store_run(float* p, const float* v) {
  constexpr int W = N % 4 == 0 ? 4 : N % 2 == 0 ? 2 : 1;
  if constexpr (W > 1) {
    if (reinterpret_cast<unsigned long long>(p) % (4 * W) == 0) {
      KILN_UNROLL
      for (int j = 0; j < N; j += W) {
        Vec<float, W> w;
        KILN_UNROLL
        for (int e = 0; e < W; ++e) w.v[e] = v[j + e];
        *reinterpret_cast<Vec<float, W>*>(p + j) = w;
      }
      return;
    }
  }
  KILN_UNROLL
  for (int j = 0; j < N; ++j) p[j] = v[j];
}

}  // namespace kiln
