#pragma once
/// Whole-tensor helpers: visit, fill, zero and copy, by one thread or shared among
/// `count` threads (thread `rank` takes every count-th element).
///
///   fill(tile, 0.0f);                                   // one thread does all
///   copy(smem_tile, global_tile, thread_index(), 256);  // 256 threads share the copy
///
/// copy() matches elements by coordinates, not by memory order, so source and
/// destination may lay out their dimensions differently (a transpose is a copy).

#include "tensor.hpp"

namespace kiln {

/// The coordinates type of Tensor's index points (what for_each passes).
template <class Tensor>
using coords_t = decltype(static_cast<const Tensor*>(nullptr)->coords_of(0));

/// Calls f(coords) for every index point of t's layout. Under NVRTC, f must not be a
/// generic lambda (NVRTC rejects `[&](auto c)` in device code): take a coords_t<Tensor>.
template <class Tensor, class F>
KILN_HOST_DEVICE void for_each(const Tensor& t, F f, int rank = 0, int count = 1) {
  const int n = t.num_elements();
  for (int i = rank; i < n; i += count) f(t.coords_of(i));
}

/// Sets every element of t to v.
template <class Tensor, class V>
KILN_HOST_DEVICE constexpr void fill(const Tensor& t, const V& v, int rank = 0, int count = 1) {
  using T = typename detail::RemoveConst<typename Tensor::element_type>::type;
  const T value = static_cast<T>(v);
  const int n = t.num_elements();
  for (int i = rank; i < n; i += count) *t[t.coords_of(i)] = value;
}

/// Sets every element of t to zero.
template <class Tensor>
KILN_HOST_DEVICE constexpr void zero(const Tensor& t, int rank = 0, int count = 1) {
  using T = typename detail::RemoveConst<typename Tensor::element_type>::type;
  fill(t, T(0), rank, count);
}

/// Copies src into dst element by element, matching coordinates: every index point of
/// dst reads src at the same coordinates (dimensions src lacks are ignored).
template <class Dst, class Src>
KILN_HOST_DEVICE constexpr void copy(const Dst& dst, const Src& src, int rank = 0, int count = 1) {
  const int n = dst.num_elements();
  for (int i = rank; i < n; i += count) {
    const auto c = dst.coords_of(i);
    *dst[c] = *src[c];
  }
}

}  // namespace kiln
