#pragma once
/// The rules a layout's folds must follow, written once for kiln::Layout (checked at
/// compile time) and kiln::gen::Spec::validate() (checked at run time, before any header
/// reaches a compiler).
///
/// Among the extents of one logical dimension in one layout (K, K8 = K/8, K64 = K/64):
///   - each fold stride appears once:          (K8, K8) or (K, Module<K, 8>) is refused;
///   - the coarser stride divides by the finer: (K8, K) works, (K8, K3) does not;
///   - a finer fold fits under the next coarser one: (K8:4, K:8) works, (K8:4, K:16) would
///     put K(8) and K8(1) on the same element.
///
/// Device-safe: no standard library, so kernels compile it under NVRTC and hipRTC.

#include "../detail/portability.hpp"

namespace kiln::fold_rules {

/// One extent as the rules see it.
///
/// Parameters:
///   base    which logical dimension it measures (equal for K and K8, any id)
///   stride  its fold stride in units of that dimension (8 for K8)
///   size    its size, or a negative number for a size known only at run time
struct FoldExtent {
  int base;
  int stride;
  int size;
};

/// The stride of the next coarser fold of extent `i`'s dimension among extents[0, n), or 0
/// where it is the coarsest.
KILN_HOST_DEVICE constexpr int coarser_stride(const FoldExtent* extents, int n, int i) {
  int best = 0;
  for (int j = 0; j < n; ++j) {
    const FoldExtent& e = extents[j];
    if (e.base == extents[i].base && e.stride > extents[i].stride &&
        (best == 0 || e.stride < best)) {
      best = e.stride;
    }
  }
  return best;
}

/// Whether extent `i` is the only extent of its dimension with its stride.
KILN_HOST_DEVICE constexpr bool stride_is_unique(const FoldExtent* extents, int n, int i) {
  for (int j = 0; j < n; ++j) {
    if (j != i && extents[j].base == extents[i].base && extents[j].stride == extents[i].stride) {
      return false;
    }
  }
  return true;
}

/// Whether the next coarser stride of extent `i`'s dimension is a multiple of its stride.
KILN_HOST_DEVICE constexpr bool coarser_stride_divides(const FoldExtent* extents, int n, int i) {
  return coarser_stride(extents, n, i) % extents[i].stride == 0;
}

/// Whether extent `i` (size times stride) fits under the next coarser fold of its dimension
/// (always, where its size is known only at run time or it is the coarsest).
KILN_HOST_DEVICE constexpr bool fits_under_coarser(const FoldExtent* extents, int n, int i) {
  const int coarser = coarser_stride(extents, n, i);
  return extents[i].size < 0 || coarser == 0 ||
         static_cast<long long>(extents[i].size) * extents[i].stride <= coarser;
}

/// What, if anything, is wrong with extent `i`: the first rule it breaks.
enum class FoldProblem { none, repeated_stride, strides_do_not_divide, does_not_fit };

KILN_HOST_DEVICE constexpr FoldProblem fold_problem(const FoldExtent* extents, int n, int i) {
  if (!stride_is_unique(extents, n, i)) return FoldProblem::repeated_stride;
  if (!coarser_stride_divides(extents, n, i)) return FoldProblem::strides_do_not_divide;
  if (!fits_under_coarser(extents, n, i)) return FoldProblem::does_not_fit;
  return FoldProblem::none;
}

/// The extents of a layout of rank N, as an array the rules can walk at compile time.
template <int N>
struct FoldTable {
  FoldExtent extents[N];
};

}  // namespace kiln::fold_rules
