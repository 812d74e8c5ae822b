#pragma once
/// Tensors: a pointer with a typed layout, indexed by dimension values in any order.
///
///   KILN_DIM(I); KILN_DIM(K);
///   using A = kiln::Tensor<float, kiln::Extent<I, kiln::dynamic>, kiln::Extent<K, 32>>;
///   A a(ptr, I(rows));                       // (I:rows, K:32)
///   *a[I(3)][K(5)] = 1.0f;                   // same element as a[K(5)][I(3)]
///   a[I(3) + K(5)].ptr() == a[K(5)][I(3)].ptr();
///
/// Indexing returns a Cursor that accumulates coordinates; its offset is computed
/// once, when the element is reached (so K(7) then K(5) carries into a K8 fold exactly
/// like K(12) would).

#include "layout.hpp"
#include "swizzle.hpp"

namespace kiln {

template <class T, class Sw, class... Es>
class BasicTensor;

/// A position in a tensor: the tensor plus accumulated coordinates.
template <class Tensor, class C>
class Cursor {
 public:
  using tensor_type = Tensor;
  using element_type = typename Tensor::element_type;

  KILN_HOST_DEVICE constexpr Cursor(const Tensor& tensor, const C& c)
      : tensor_(tensor), coords_(c) {}

  /// Moves further by a dimension value or coordinates.
  template <class X>
  KILN_HOST_DEVICE constexpr auto operator[](const X& x) const {
    Tensor::template check_index<X>();
    using Next = detail::remove_cvref_t<decltype(coords_ + x)>;
    return Cursor<Tensor, Next>(tensor_, coords_ + x);
  }
  /// The element's address; the offset is computed here.
  KILN_HOST_DEVICE constexpr element_type* ptr() const { return tensor_.element_ptr(coords_); }
  KILN_HOST_DEVICE constexpr element_type& operator*() const { return *ptr(); }
  KILN_HOST_DEVICE constexpr element_type* operator->() const { return ptr(); }
  /// Whether the position lies inside the tensor.
  KILN_HOST_DEVICE constexpr bool in_bounds() const { return tensor_.in_bounds(coords_); }
  KILN_HOST_DEVICE constexpr const C& coords() const { return coords_; }
  KILN_HOST_DEVICE constexpr const Tensor& tensor() const { return tensor_; }

  /// Two cursors are equal when they reach the same element.
  template <class C2>
  KILN_HOST_DEVICE constexpr bool operator==(const Cursor<Tensor, C2>& other) const {
    return ptr() == other.ptr();
  }
  template <class C2>
  KILN_HOST_DEVICE constexpr bool operator!=(const Cursor<Tensor, C2>& other) const {
    return ptr() != other.ptr();
  }

 private:
  Tensor tensor_;
  C coords_;
};

namespace detail {

template <class Sw>
struct SwizzleOrigin {
  // Offsets are swizzled from the origin of the whole tile, so a slice of a swizzled
  // tensor keeps the tile's pointer and remembers where it starts.
  int origin = 0;
};
template <>
struct SwizzleOrigin<NoSwizzle> {};

template <class T, class Sw, int I, class NewE, class Seq, class... Es>
struct ReplaceExtent;
template <class T, class Sw, int I, class NewE, int... Is, class... Es>
struct ReplaceExtent<T, Sw, I, NewE, IntSeq<Is...>, Es...> {
  using type =
      BasicTensor<T, Sw, conditional_t<Is == I, NewE, typename TypeAt<Is, Es...>::type>...>;
};

}  // namespace detail

/// A typed view of memory: element type T, swizzle Sw, resolved extents Es (use the
/// Tensor and SwizzledTensor aliases, which resolve packed strides).
template <class T, class Sw, class... Es>
class BasicTensor : public Layout<Es...>, detail::SwizzleOrigin<Sw> {
  using LayoutType = Layout<Es...>;

 public:
  using element_type = T;
  using layout_type = LayoutType;
  using swizzle_type = Sw;

  /// A view of `data`; `rt` are the run-time sizes and strides (see Layout).
  template <class... Rt>
  KILN_HOST_DEVICE constexpr explicit BasicTensor(T* data, Rt... rt)
      : LayoutType(rt...), data_(data) {}

  KILN_HOST_DEVICE constexpr BasicTensor(T* data, const LayoutType& layout)
      : LayoutType(layout), data_(data) {}

  /// A read-only view of a mutable tensor of the same layout, implicitly: a
  /// Tensor<float, L...> passes where a Tensor<const float, L...> is expected (the
  /// reverse does not compile).
  template <class U,
            class = detail::enable_if_t<detail::is_same<const U, T> && !detail::is_same<U, T>>>
  KILN_HOST_DEVICE constexpr BasicTensor(const BasicTensor<U, Sw, Es...>& other)  // NOLINT
      : LayoutType(other.layout()),
        detail::SwizzleOrigin<Sw>(static_cast<const detail::SwizzleOrigin<Sw>&>(other)),
        data_(other.data()) {}

  /// The start of the view (for a swizzled tensor, of the whole swizzled tile).
  KILN_HOST_DEVICE constexpr T* data() const { return data_; }
  KILN_HOST_DEVICE constexpr const LayoutType& layout() const { return *this; }

  /// A cursor at a dimension value or coordinates; t[I(3)][K(5)] == t[K(5)][I(3)].
  template <class X>
  KILN_HOST_DEVICE constexpr auto operator[](const X& x) const {
    check_index<X>();
    using C = detail::remove_cvref_t<decltype(to_coords(x))>;
    return Cursor<BasicTensor, C>(*this, to_coords(x));
  }

  /// The address of the element at coordinates c.
  template <class C>
  KILN_HOST_DEVICE constexpr T* element_ptr(const C& c) const {
    return data_ + element_offset(c);
  }

  /// The element offset from data() of the element at a dimension value or coordinates,
  /// swizzle included: t[x].ptr() == t.data() + t.element_offset(x). For offsets in a tile
  /// worked out once and added to each of a ring's stages.
  template <class X>
  KILN_HOST_DEVICE constexpr int element_offset(const X& x) const {
    check_index<X>();
    if constexpr (Sw::is_identity) {
      return this->offset(to_coords(x));
    } else {
      return Sw::apply(this->origin + this->offset(to_coords(x)));
    }
  }

  /// The element offset of coordinates c from the start of data() before any swizzle
  /// (what hardware that swizzles addresses itself, such as wgmma's descriptors, takes).
  template <class C>
  KILN_HOST_DEVICE constexpr int linear_offset(const C& c) const {
    if constexpr (Sw::is_identity) {
      return this->offset(c);
    } else {
      return this->origin + this->offset(c);
    }
  }

  /// The sub-tile of N units of D starting at `start` (its other extents unchanged).
  ///
  ///   (I:64, K:32).slice<16>(I(32)) -> (I:16, K:32) at row 32
  template <int N, class D>
  KILN_HOST_DEVICE constexpr auto slice(D start) const {
    static_assert(N > 0, "a slice's size must be positive");
    return slice_impl<N>(start, N);
  }
  /// The sub-tile of `size` units of D (a run-time extent) starting at `start`.
  template <class D>
  KILN_HOST_DEVICE constexpr auto slice(D start, D size) const {
    return slice_impl<dynamic>(start, size.get());
  }

  /// The number of elements a tensor of this type spans: its largest offset + 1, or for
  /// a swizzled tensor one past the largest swizzled offset (so a buffer of this many
  /// elements holds every element wherever the swizzle moves it). Needs every size and
  /// stride static; it is what a shared-memory tile or a ring of them is carved by.
  ///
  ///   Tensor<float, Extent<I, 64>, Extent<K, 32>>::storage_size()      == 2048
  ///   Tensor<float, Extent<I, 64, 40>, Extent<K, 32>>::storage_size()  == 63 * 40 + 32
  ///   Tensor<float, Extent<K, 32>, Extent<I, dynamic>>::storage_size()  // compile error
  KILN_HOST_DEVICE static constexpr int storage_size() {
    constexpr bool all_static = ((Es::size >= 0 && Es::stride >= 0) && ...);
    static_assert(all_static,
                  "storage_size needs every size and stride of the tensor static: a "
                  "kiln::dynamic size or stride has no compile-time footprint");
    if constexpr (all_static) {
      constexpr int span = (((Es::size - 1) * Es::stride) + ... + 0) + 1;
      if constexpr (Sw::is_identity) {
        return span;
      } else {
        int end = 0;
        for (int o = 0; o < span; ++o) {
          const int s = Sw::apply(o) + 1;
          end = s > end ? s : end;
        }
        return end;
      }
    } else {
      return 0;
    }
  }

  /// Checked at compile time: a single dimension value must name a dimension this
  /// tensor has; coordinates may carry others, which are ignored.
  template <class X>
  KILN_HOST_DEVICE static constexpr void check_index() {
    using Y = detail::remove_cvref_t<X>;
    static_assert(is_dim<Y> || is_coords<Y>, "a tensor is indexed by dimension values or Coords");
    if constexpr (is_dim<Y>) {
      static_assert(LayoutType::template has_dimension<Y>,
                    "this tensor has no dimension of that type (index with Coords to ignore "
                    "dimensions a tensor lacks)");
    }
  }

 private:
  template <int N, class D>
  KILN_HOST_DEVICE constexpr auto slice_impl(D start, int size) const {
    constexpr int i = LayoutType::template index_of<D>;
    static_assert(i >= 0, "slice: this tensor has no dimension of that type");
    using E = typename LayoutType::template extent_at<i>;
    using NewE = Extent<D, N, (E::stride >= 0 ? E::stride : dynamic)>;
    using R = typename detail::ReplaceExtent<T, Sw, i, NewE, detail::make_int_seq<sizeof...(Es)>,
                                             Es...>::type;
    int sizes[sizeof...(Es)] = {};
    int strides[sizeof...(Es)] = {};
    this->to_arrays(sizes, strides);
    sizes[i] = size;
    using RLayout = typename R::layout_type;
    int offset = this->offset(to_coords(start));
    if constexpr (Sw::is_identity) {
      return R(data_ + offset, RLayout(detail::FromArrays(), sizes, strides));
    } else {
      R r(data_, RLayout(detail::FromArrays(), sizes, strides));
      r.origin = this->origin + offset;
      return r;
    }
  }

  template <class, class, class...>
  friend class BasicTensor;

  T* data_;
};

/// A tensor of T over extents Es (outermost first; packed strides resolved).
template <class T, class... Es>
using Tensor = resolve_layout_t<BasicTensor, detail::TypeList<T, NoSwizzle>, Es...>;

/// A tensor whose final offsets go through swizzle Sw (typically in shared memory).
template <class T, class Sw, class... Es>
using SwizzledTensor = resolve_layout_t<BasicTensor, detail::TypeList<T, Sw>, Es...>;

}  // namespace kiln
