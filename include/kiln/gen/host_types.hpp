#pragma once
/// A Spec's tensors from the host program's own tensor types, so that the dimensions and
/// layouts are written once, in C++, and used both to generate the kernel's header and to
/// build typed views of device buffers on the host.
///
///   KILN_DIM(ROW); KILN_DIM(COL);
///   using In  = kiln::Tensor<const float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL,
///   256>>; using Out = kiln::Tensor<float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL,
///   256>>; kiln::gen::Spec spec; spec.tensor<In>("In").tensor<Out>("Out");     // declares ROW and
///   COL as well
///   // the header says: using In = kiln::Tensor<const float, kiln::Extent<ROW, kiln::dynamic>,
///   //                                          kiln::Extent<COL, 256>>;  (and Out)
///   launch(..., In(d_in.data(), ROW(rows)), Out(d_out.data(), ROW(rows)));
///
/// Element types map to DTypes by kind and size (float -> f32, std::int64_t -> i64,
/// kiln::f16 -> f16); const elements make the tensor read-only. A dimension is named by its
/// KILN_DIM name; a fold or module in a layout must have been declared with Spec::fold or
/// Spec::module first (the Spec then spells it by that name). Swizzles and explicit strides
/// carry over; packed strides stay packed.

#include <fmt/format.h>

#include <map>
#include <string>
#include <type_traits>

#include "../device/half.hpp"
#include "../dims/tensor.hpp"
#include "dtype.hpp"
#include "spec_error.hpp"
#include "tensor_spec.hpp"

namespace kiln::gen {

/// The DType of a host element type; a type with no DType does not compile.
template <class T>
constexpr DType dtype_of() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, ::kiln::f16>) {
    return DType::f16;
  } else if constexpr (std::is_same_v<U, ::kiln::bf16>) {
    return DType::bf16;
  } else if constexpr (std::is_same_v<U, float>) {
    return DType::f32;
  } else if constexpr (std::is_same_v<U, double>) {
    return DType::f64;
  } else if constexpr (std::is_integral_v<U> && !std::is_same_v<U, bool>) {
    constexpr bool s = std::is_signed_v<U>;
    if constexpr (sizeof(U) == 1) return s ? DType::i8 : DType::u8;
    if constexpr (sizeof(U) == 2) return s ? DType::i16 : DType::u16;
    if constexpr (sizeof(U) == 4) return s ? DType::i32 : DType::u32;
    if constexpr (sizeof(U) == 8) return s ? DType::i64 : DType::u64;
  } else {
    static_assert(sizeof(U) == 0,
                  "kiln::gen::dtype_of: this element type has no kiln::gen::DType; use f16, "
                  "bf16, float, double or an integer of 1, 2, 4 or 8 bytes");
  }
}

namespace detail {

/// No fold names: what tensor_spec_of has when it is not given a Spec's names.
struct NoFoldNames {
  std::string base;
  long long stride = 0;
  int modulus = 0;
};

template <class T>
struct TensorTypeParts {
  static constexpr bool is_tensor = false;
};
template <class T, class Sw, class... Es>
struct TensorTypeParts<::kiln::BasicTensor<T, Sw, Es...>> {
  static constexpr bool is_tensor = true;
  using element = T;
  using swizzle = Sw;
};

template <int Bits, int Base, int Shift>
void apply_swizzle_args(TensorSpec& t, ::kiln::Swizzle<Bits, Base, Shift>) {
  t.swizzle(Bits, Base, Shift);
}
template <class Sw>
void apply_swizzle(TensorSpec& t) {
  if constexpr (!std::is_same_v<Sw, ::kiln::NoSwizzle>) apply_swizzle_args(t, Sw{});
}

/// The Spec name of dimension type D: its KILN_DIM name, or the name `names` (name ->
/// {base, stride, modulus}, as Spec::resolve() gives) has for a fold or module of it.
/// Throws SpecError saying what to declare when there is none.
template <class D, class Names>
std::string dim_name(const std::string& tensor, const Names& names) {
  using Base = ::kiln::base_of<D>;
  const std::string base = Base::kiln_name();
  if constexpr (D::stride == 1 && D::modulus == 0) {
    return base;
  } else {
    for (const auto& [name, m] : names) {
      if (m.base == base && m.stride == D::stride && m.modulus == D::modulus) return name;
    }
    const bool bounded = D::modulus > 0;
    throw SpecError(fmt::format(
        "kiln::gen: tensor '{}' has a dimension that is {} {} by {}{}, which the spec does not "
        "name; declare it first, e.g. spec.{}(\"{}{}\", \"{}\", {})",
        tensor, base, bounded ? "modulo" : "folded", bounded ? D::modulus : D::stride,
        bounded ? fmt::format(" (in units of {})", D::stride) : std::string(),
        bounded ? "module" : "fold", base, bounded ? D::modulus : D::stride, base,
        bounded ? D::modulus : D::stride));
  }
}

template <class Layout, class Names, std::size_t... Is>
void add_extents(TensorSpec& t, const Names& names, std::index_sequence<Is...>) {
  // Strides as the resolved type has them: a static value, detail::derived (packed over a
  // run-time size) or dynamic. A static stride equal to the packed one is left packed, so
  // the header's type resolves to the same one.
  constexpr int n = Layout::rank;
  constexpr int sizes[n] = {Layout::template extent_at<int(Is)>::size...};
  constexpr int strides[n] = {Layout::template extent_at<int(Is)>::stride...};
  const std::string dims[n] = {
      dim_name<typename Layout::template dim_at<int(Is)>>(t.name(), names)...};
  for (int i = 0; i < n; ++i) {
    const Size size = sizes[i] == ::kiln::dynamic ? Size(dynamic) : Size(sizes[i]);
    int packed = 1;
    if (i + 1 < n) {
      packed = (strides[i + 1] >= 0 && sizes[i + 1] > 0) ? strides[i + 1] * sizes[i + 1] : -1;
    }
    if (strides[i] == ::kiln::dynamic) {
      t.dim(dims[i], size, Stride{dynamic});
    } else if (strides[i] == ::kiln::detail::derived || strides[i] == packed) {
      t.dim(dims[i], size);
    } else {
      t.dim(dims[i], size, Stride{strides[i]});
    }
  }
}

}  // namespace detail

/// The TensorSpec named `name` of host tensor type `T` (a kiln::Tensor or
/// kiln::SwizzledTensor), its folds named as `names` says (Spec::resolve()'s map; folds
/// need it, plain dimensions do not).
template <class T, class Names = std::map<std::string, detail::NoFoldNames>>
TensorSpec tensor_spec_of(std::string name, const Names& names = {}) {
  using Parts = detail::TensorTypeParts<std::remove_cv_t<T>>;
  static_assert(Parts::is_tensor,
                "Spec::tensor<T>: T must be a kiln::Tensor<...> or kiln::SwizzledTensor<...>");
  using Element = typename Parts::element;
  TensorSpec t(std::move(name), dtype_of<Element>());
  t.read_only(std::is_const_v<Element>);
  using Layout = typename std::remove_cv_t<T>::layout_type;
  detail::add_extents<Layout>(t, names, std::make_index_sequence<std::size_t(Layout::rank)>{});
  detail::apply_swizzle<typename Parts::swizzle>(t);
  return t;
}

}  // namespace kiln::gen
