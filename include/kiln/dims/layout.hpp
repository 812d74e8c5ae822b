#pragma once
/// Layouts: the sizes and strides of a tensor's (or a compound index's) dimensions,
/// each a compile-time constant or a run-time value.
///
///   // (I:64, K:32), row-major: K contiguous, I stride 32; everything static
///   make_layout_t<Extent<I, 64>, Extent<K, 32>>
///   // (I:n, K:32): run-time I, packed strides still static (I stride 32)
///   make_layout_t<Extent<I, dynamic>, Extent<K, 32>>
///   // (I:64, K:n): K's run-time size makes I's packed stride run-time too
///   make_layout_t<Extent<I, 64>, Extent<K, dynamic>>
///   // (I:64 stride 40, K:32): padded rows
///   make_layout_t<Extent<I, 64, 40>, Extent<K, 32>>
///
/// make_layout_t (and the Tensor and CompoundIndex templates) resolve kiln::packed
/// strides; Layout itself takes resolved extents only.
///
/// Dimensions listed first are outermost. A tensor may hold several folds of one
/// dimension (K8 and K): an index in K is split across them, coarsest first, so
/// K(12) lands on K8 = 1, K = 4 whatever the strides in memory.

#include "coords.hpp"
#include "fold_rules.hpp"

namespace kiln {

/// The type of kiln::dynamic: it converts to the int -1 wherever a size or stride is an
/// int (Extent<K, dynamic>, `size == dynamic`), and is a type of its own so that host
/// code (kiln::gen::Size) can tell "run-time" apart from a number.
struct Dynamic {
  // Implicit on purpose: Extent<K, dynamic> takes it as an int template argument.
  KILN_HOST_DEVICE constexpr operator int() const { return -1; }
};
/// A size or stride known only at run time.
inline constexpr Dynamic dynamic{};
/// A stride computed from the next inner dimension (stride * size), 1 for the innermost.
inline constexpr int packed = -2;

/// One dimension of a layout: its type, its size (in units of D) and its stride (in
/// elements). Size and Stride are constants, or kiln::dynamic for a run-time value;
/// Stride defaults to kiln::packed.
template <class D, int Size, int Stride = packed>
struct Extent {
  static_assert(is_dim<D>, "an Extent's first argument must be a typed dimension");
  static_assert(Size > 0 || Size == dynamic, "an extent's size must be positive or dynamic");
  static_assert(Stride >= 0 || Stride == dynamic || Stride == packed || Stride == -3,
                "an extent's stride must be >= 0, dynamic or packed");
  using dim = D;
  static constexpr int size = Size;
  static constexpr int stride = Stride;
};

/// A run-time stride for dimension D, passed to a tensor's constructor beside the
/// run-time sizes: Tensor<...>(ptr, I(rows), Stride<I>(ld)).
template <class D>
struct Stride {
  KILN_HOST_DEVICE constexpr explicit Stride(int v) : value(v) {}
  int value;
};

namespace detail {

/// Stride code of a packed stride that depends on a run-time size: computed once,
/// when the layout is constructed.
inline constexpr int derived = -3;

struct FromArrays {};

template <class T>
struct IsStride : Bool<false> {};
template <class D>
struct IsStride<Stride<D>> : Bool<true> {};

template <int N>
KILN_HOST_DEVICE constexpr int resolve_stride(const int (&sizes)[N], const int (&strides)[N],
                                              int i) {
  if (strides[i] != packed) return strides[i];
  if (i == N - 1) return 1;
  int inner = resolve_stride(sizes, strides, i + 1);
  if (inner < 0 || sizes[i + 1] < 0) return derived;
  return inner * sizes[i + 1];
}

template <class... Es>
struct Resolved {
  static constexpr int n = sizeof...(Es);
  static constexpr int sizes[n] = {Es::size...};
  static constexpr int strides[n] = {Es::stride...};
  template <int I>
  using At = typename TypeAt<I, Es...>::type;
  template <int I>
  using ExtentAt = Extent<typename At<I>::dim, At<I>::size, resolve_stride(sizes, strides, I)>;
};

template <template <class...> class Target, class Prefix, class R, class Seq>
struct ApplyResolved;
template <template <class...> class Target, class... Prefix, class R, int... Is>
struct ApplyResolved<Target, TypeList<Prefix...>, R, IntSeq<Is...>> {
  using type = Target<Prefix..., typename R::template ExtentAt<Is>...>;
};

}  // namespace detail

template <class... Es>
class Layout;

/// Target<Prefix..., Es'...> where Es' are Es with packed strides resolved.
template <template <class...> class Target, class Prefix, class... Es>
using resolve_layout_t = typename detail::ApplyResolved<Target, Prefix, detail::Resolved<Es...>,
                                                        detail::make_int_seq<sizeof...(Es)>>::type;

namespace detail {

template <int N>
struct RuntimeValues {
  int values[N];
};
template <>
struct RuntimeValues<0> {};

}  // namespace detail

/// Sizes and strides of a list of resolved extents (no kiln::packed left).
template <class... Es>
class Layout : detail::RuntimeValues<((Es::size < 0) + ... + 0) + ((Es::stride < 0) + ... + 0)> {
 public:
  static constexpr int rank = sizeof...(Es);
  static_assert(rank > 0, "a layout needs at least one dimension");

 private:
  static constexpr int num_runtime_sizes = ((Es::size < 0) + ... + 0);
  static constexpr int num_runtime = num_runtime_sizes + ((Es::stride < 0) + ... + 0);
  using Storage = detail::RuntimeValues<num_runtime>;

 public:
  template <int I>
  using extent_at = typename detail::TypeAt<I, Es...>::type;
  template <int I>
  using dim_at = typename extent_at<I>::dim;

  /// Position of dimension type D in the layout, or -1.
  template <class D>
  static constexpr int index_of = detail::IndexOf<D, typename Es::dim...>::value;
  /// Whether some dimension of the layout measures D's dimension.
  template <class D>
  static constexpr bool has_dimension = (same_dimension<D, typename Es::dim> || ...);

  static_assert(((Es::stride != packed) && ...),
                "Layout takes resolved strides: spell it make_layout_t<Extent...>");

 private:
  // The extents as kiln/dims/fold_rules.hpp sees them (the rules gen::Spec checks too).
  template <int... Is>
  KILN_HOST_DEVICE static constexpr fold_rules::FoldTable<rank> fold_table(detail::IntSeq<Is...>) {
    return {{{detail::IndexOf<base_of<dim_at<Is>>, base_of<typename Es::dim>...>::value,
              dim_at<Is>::stride, extent_at<Is>::size}...}};
  }
  template <int I, int... Js>
  KILN_HOST_DEVICE static constexpr int coarser_stride(detail::IntSeq<Js...> seq) {
    return fold_rules::coarser_stride(fold_table(seq).extents, rank, I);
  }
  template <int... Is>
  KILN_HOST_DEVICE static constexpr bool folds_consistent(detail::IntSeq<Is...> seq) {
    return ((fold_rules::stride_is_unique(fold_table(seq).extents, rank, Is) &&
             fold_rules::coarser_stride_divides(fold_table(seq).extents, rank, Is)) &&
            ...);
  }
  template <int... Is>
  KILN_HOST_DEVICE static constexpr bool folds_fit(detail::IntSeq<Is...> seq) {
    return (fold_rules::fits_under_coarser(fold_table(seq).extents, rank, Is) && ...);
  }
  static_assert(folds_consistent(detail::make_int_seq<rank>()),
                "a layout may hold each fold of a dimension once, and the fold strides of "
                "one dimension must divide each other (K and K8, not K and Module<K, 8>)");
  static_assert(folds_fit(detail::make_int_seq<rank>()),
                "a finer fold's size must fit under the next coarser fold of its dimension: "
                "(K8:4, K:8) is fine, (K8:4, K:16) is not");

  template <int... Is>
  KILN_HOST_DEVICE static constexpr int find_contiguous(detail::IntSeq<Is...>) {
    int found = -1;
    ((found = (found < 0 && Es::stride == 1) ? Is : found), ...);
    return found;
  }

 public:
  /// For a fold with a coarser fold of the same dimension in the layout, the ratio
  /// between them (K under K8: 8); 0 for the coarsest.
  template <int I>
  static constexpr int carry_ratio =
      coarser_stride<I>(detail::make_int_seq<rank>()) / dim_at<I>::stride;
  /// Position of the first dimension with a static stride of 1, or -1.
  static constexpr int contiguous_index = find_contiguous(detail::make_int_seq<rank>());

 private:
  template <int I>
  KILN_HOST_DEVICE static constexpr int size_slot() {
    int slot = 0;
    int sizes[rank] = {Es::size...};
    for (int j = 0; j < I; ++j) slot += sizes[j] < 0;
    return slot;
  }
  template <int I>
  KILN_HOST_DEVICE static constexpr int stride_slot() {
    int slot = num_runtime_sizes;
    int strides[rank] = {Es::stride...};
    for (int j = 0; j < I; ++j) slot += strides[j] < 0;
    return slot;
  }

 public:
  /// A layout whose run-time sizes and strides are given, in any order, as values of
  /// the dimensions (I(rows)) and as Stride<D>(elements). Each run-time size and each
  /// explicitly dynamic stride must be given exactly once; packed strides that depend
  /// on run-time sizes are computed here, once.
  template <class... Args,
            class = detail::enable_if_t<!(detail::is_same<Args, detail::FromArrays> || ...)>>
  KILN_HOST_DEVICE constexpr explicit Layout(Args... args) : Storage{} {
    static_assert((accepts<Args>() && ...),
                  "a layout's constructor takes only the run-time sizes (as dimension values "
                  "of its dynamic-size dimensions) and run-time strides (Stride<D>) it needs");
    static_assert(((count_of<Args, Args...>() == 1) && ...),
                  "a run-time size or stride is given twice");
    static_assert(((Es::size >= 0 || count_of<typename Es::dim, Args...>() == 1) && ...),
                  "a dimension declared with a dynamic size needs its size, as a value of "
                  "that dimension, in the constructor");
    static_assert(
        ((Es::stride != dynamic || count_of<Stride<typename Es::dim>, Args...>() == 1) && ...),
        "a dimension declared with a dynamic stride needs Stride<D>(value) in the "
        "constructor");
    store_args(detail::make_int_seq<rank>(), args...);
    compute_derived<rank - 1>();
  }

  /// A layout from the full arrays of sizes and strides (static entries are ignored).
  KILN_HOST_DEVICE constexpr Layout(detail::FromArrays, const int* sizes, const int* strides)
      : Storage{} {
    store_arrays(detail::make_int_seq<rank>(), sizes, strides);
  }

  /// The size of the I-th dimension, in units of its dimension type.
  template <int I>
  KILN_HOST_DEVICE constexpr int size_at() const {
    if constexpr (extent_at<I>::size >= 0) {
      return extent_at<I>::size;
    } else {
      return this->values[size_slot<I>()];
    }
  }
  /// The stride of the I-th dimension, in elements.
  template <int I>
  KILN_HOST_DEVICE constexpr int stride_at() const {
    if constexpr (extent_at<I>::stride >= 0) {
      return extent_at<I>::stride;
    } else {
      return this->values[stride_slot<I>()];
    }
  }
  /// The size of dimension D (a type the layout lists), as a value of D.
  template <class D>
  KILN_HOST_DEVICE constexpr D size() const {
    static_assert(index_of<D> >= 0, "this layout has no dimension of that type");
    return D(size_at<index_of<D>>());
  }
  /// The stride of dimension D (a type the layout lists), in elements.
  template <class D>
  KILN_HOST_DEVICE constexpr int stride() const {
    static_assert(index_of<D> >= 0, "this layout has no dimension of that type");
    return stride_at<index_of<D>>();
  }
  /// The number of index points (the product of the sizes).
  KILN_HOST_DEVICE constexpr int num_elements() const {
    return product(detail::make_int_seq<rank>());
  }

  /// The I-th dimension's index for coordinates c: c's value of that dimension in units
  /// of the I-th type, reduced by the carry to a coarser fold and by the modulus.
  template <int I, class C>
  KILN_HOST_DEVICE constexpr int index_at(const C& c) const {
    using D = dim_at<I>;
    if constexpr (!C::template contains<D>) {
      return 0;
    } else {
      int v = c.template base_units<D>();
      if constexpr (D::stride != 1) v /= D::stride;
      if constexpr (carry_ratio < I >> 0) v %= carry_ratio<I>;
      if constexpr (D::modulus > 0) v %= D::modulus;
      return v;
    }
  }

  /// The element offset of coordinates c (dimensions the layout lacks are ignored).
  template <class C>
  KILN_HOST_DEVICE constexpr int offset(const C& c) const {
    return offset_impl(c, detail::make_int_seq<rank>());
  }

  /// Whether every dimension's index for c lies in [0, size).
  template <class C>
  KILN_HOST_DEVICE constexpr bool in_bounds(const C& c) const {
    return in_bounds_impl(c, detail::make_int_seq<rank>());
  }

  /// The coordinates of the linear index `linear` over this layout's sizes, last
  /// dimension fastest. The outermost index is not reduced, so a linear index past
  /// num_elements() gives coordinates that are not in_bounds.
  ///
  ///   Layout<Extent<WARP, 4>, Extent<LANE, 32>>: 37 -> (WARP:1, LANE:5)
  KILN_HOST_DEVICE constexpr auto coords_of(int linear) const {
    int v[rank] = {};
    decompose<rank - 1>(v, linear);
    return build_coords(v, detail::make_int_seq<rank>());
  }

  /// Copies this layout's sizes and strides into arrays of rank ints.
  KILN_HOST_DEVICE constexpr void to_arrays(int* sizes, int* strides) const {
    to_arrays_impl(sizes, strides, detail::make_int_seq<rank>());
  }

 private:
  template <class A>
  KILN_HOST_DEVICE static constexpr bool accepts() {
    if constexpr (detail::IsStride<A>::value) {
      return ((detail::is_same<A, Stride<typename Es::dim>> && Es::stride == dynamic) || ...);
    } else {
      return ((detail::is_same<A, typename Es::dim> && Es::size == dynamic) || ...);
    }
  }
  template <class A, class... Args>
  KILN_HOST_DEVICE static constexpr int count_of() {
    return (detail::is_same<A, Args> + ... + 0);
  }
  template <class A>
  KILN_HOST_DEVICE static constexpr int value_of(const A& a) {
    if constexpr (detail::IsStride<A>::value) {
      return a.value;
    } else {
      return a.get();
    }
  }
  template <class Want, class... Args>
  KILN_HOST_DEVICE static constexpr int pick(const Args&... args) {
    int out = 0;
    ((detail::is_same<Want, Args> ? (void)(out = value_of(args)) : (void)0), ...);
    return out;
  }
  template <int... Is, class... Args>
  KILN_HOST_DEVICE constexpr void store_args(detail::IntSeq<Is...>, const Args&... args) {
    (store_size<Is>(pick<dim_at<Is>>(args...)), ...);
    (store_user_stride<Is>(pick<Stride<dim_at<Is>>>(args...)), ...);
  }
  template <int I>
  KILN_HOST_DEVICE constexpr void store_size(int v) {
    if constexpr (extent_at<I>::size < 0) this->values[size_slot<I>()] = v;
  }
  template <int I>
  KILN_HOST_DEVICE constexpr void store_user_stride(int v) {
    if constexpr (extent_at<I>::stride == dynamic) this->values[stride_slot<I>()] = v;
  }
  template <int I>
  KILN_HOST_DEVICE constexpr void compute_derived() {
    if constexpr (extent_at<I>::stride == detail::derived) {
      this->values[stride_slot<I>()] = stride_at<I + 1>() * size_at<I + 1>();
    }
    if constexpr (I > 0) compute_derived<I - 1>();
  }
  template <int... Is>
  KILN_HOST_DEVICE constexpr void store_arrays(detail::IntSeq<Is...>, const int* sizes,
                                               const int* strides) {
    (store_size<Is>(sizes[Is]), ...);
    (store_any_stride<Is>(strides[Is]), ...);
  }
  template <int I>
  KILN_HOST_DEVICE constexpr void store_any_stride(int v) {
    if constexpr (extent_at<I>::stride < 0) this->values[stride_slot<I>()] = v;
  }
  template <int... Is>
  KILN_HOST_DEVICE constexpr void to_arrays_impl(int* sizes, int* strides,
                                                 detail::IntSeq<Is...>) const {
    ((sizes[Is] = size_at<Is>()), ...);
    ((strides[Is] = stride_at<Is>()), ...);
  }
  template <int... Is>
  KILN_HOST_DEVICE constexpr int product(detail::IntSeq<Is...>) const {
    return (size_at<Is>() * ... * 1);
  }
  template <class C, int... Is>
  KILN_HOST_DEVICE constexpr int offset_impl(const C& c, detail::IntSeq<Is...>) const {
    return ((index_at<Is>(c) * stride_at<Is>()) + ... + 0);
  }
  template <class C, int... Is>
  KILN_HOST_DEVICE constexpr bool in_bounds_impl(const C& c, detail::IntSeq<Is...>) const {
    return ((index_at<Is>(c) >= 0 && index_at<Is>(c) < size_at<Is>()) && ...);
  }
  template <int I>
  KILN_HOST_DEVICE constexpr void decompose(int* v, int rest) const {
    if constexpr (I == 0) {
      v[0] = rest;
    } else {
      v[I] = rest % size_at<I>();
      decompose<I - 1>(v, rest / size_at<I>());
    }
  }
  template <int... Is>
  KILN_HOST_DEVICE static constexpr auto build_coords(const int* v, detail::IntSeq<Is...>) {
    return (Coords<>() + ... + dim_at<Is>(v[Is]));
  }
};

/// A Layout with packed strides resolved: make_layout_t<Extent<I, 64>, Extent<K, 32>>.
template <class... Es>
using make_layout_t = resolve_layout_t<Layout, detail::TypeList<>, Es...>;

}  // namespace kiln
