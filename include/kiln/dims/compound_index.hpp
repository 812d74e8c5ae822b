#pragma once
/// Compound indices: one linear index (a thread or block number) seen as typed
/// coordinates over several dimensions, last dimension fastest.
///
///   // 256 threads as (WARP:8, LANE:warp_size)
///   using ThreadIdx = CompoundIndex<Extent<WARP, 256 / warp_size>, Extent<LANE, warp_size>>;
///   ThreadIdx t(thread_index());
///   WARP w = t.get<WARP>();  LANE l = t.get<LANE>();
///
///   // blocks as (IB:run-time, JB:run-time)
///   using BlockIdx = CompoundIndex<Extent<IB, dynamic>, Extent<JB, dynamic>>;
///   BlockIdx b(block_index(), IB(row_blocks), JB(col_blocks));
///
/// Folds work too: (I16:4, K8:8) maps 0..31 to I in steps of 16 and K in steps of 8.

#include "layout.hpp"

namespace kiln {

template <class... Es>
class CompoundIndex {
  // Strides are always packed: the linear index is decomposed by the sizes alone.
  using LayoutType = make_layout_t<Extent<typename Es::dim, Es::size>...>;
  // The product of the static sizes, stopping once it passes int (no overflow).
  KILN_HOST_DEVICE static constexpr long long static_points() {
    const long long sizes[] = {static_cast<long long>(Es::size)...};
    long long p = 1;
    for (long long s : sizes) {
      if (s > 0) p *= s;  // dynamic sizes (negative) are checked by nothing here
      if (p > 2147483647LL) return p;
    }
    return p;
  }
  static_assert(static_points() <= 2147483647LL,
                "a compound index spans at most 2^31 - 1 points (the int it decomposes): its "
                "static sizes multiply past that");

 public:
  /// The compound index of `linear`; `sizes` are the run-time sizes, as dimension values.
  template <class... Sizes>
  KILN_HOST_DEVICE constexpr explicit CompoundIndex(int linear, Sizes... sizes)
      : layout_(sizes...), linear_(linear) {}

  /// The whole index as coordinates (folds of one dimension merged).
  KILN_HOST_DEVICE constexpr auto coords() const { return layout_.coords_of(linear_); }
  /// The value of dimension D (any fold of a dimension this index covers).
  template <class D>
  KILN_HOST_DEVICE constexpr D get() const {
    return coords().template get<D>();
  }
  /// The linear index this was built from.
  KILN_HOST_DEVICE constexpr int linear() const { return linear_; }
  /// The number of index points: the product of the sizes.
  KILN_HOST_DEVICE constexpr int size() const { return layout_.num_elements(); }
  /// The size of dimension D (one of the listed types).
  template <class D>
  KILN_HOST_DEVICE constexpr D size() const {
    return layout_.template size<D>();
  }
  /// Whether the linear index lies inside the index space.
  KILN_HOST_DEVICE constexpr bool in_bounds() const { return linear_ >= 0 && linear_ < size(); }

 private:
  LayoutType layout_;
  int linear_;
};

}  // namespace kiln
