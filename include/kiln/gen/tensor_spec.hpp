#pragma once
/// One tensor of a generated header: element type, constness, dimensions (outermost
/// first) with sizes and strides, and an optional swizzle.
///
///   TensorSpec("A", DType::f16).read_only().dim("I", 64).dim("K", dynamic)
///   // using A = kiln::Tensor<const kiln::f16, kiln::Extent<I, 64>,
///   //                        kiln::Extent<K, kiln::dynamic>>;
///   TensorSpec("S", DType::f32).dim("I", 64, Padding{8}).dim("K", 32).swizzle(2, 2, 3)
///   // using S = kiln::SwizzledTensor<float, kiln::Swizzle<2, 2, 3>,
///   //                                kiln::Extent<I, 64, 40>, kiln::Extent<K, 32>>;

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dtype.hpp"
#include "names.hpp"
#include "size.hpp"
#include "spec_error.hpp"

namespace kiln::gen {

/// kiln::Swizzle<Bits, Base, Shift>: XOR the Bits bits at Base + Shift into those at Base.
struct Swizzle {
  int bits;
  int base;
  int shift;
  friend bool operator==(const Swizzle&, const Swizzle&) = default;
};

/// One dimension of a tensor: a dimension or fold name, its size, and either an explicit
/// stride or a padding added to the packed stride (neither: packed).
struct TensorDim {
  std::string dim;
  Size size;
  std::optional<Size> stride = std::nullopt;
  std::optional<int> padding = std::nullopt;
};

/// A tensor of a Spec, built fluently. Each call checks what it can see (names, sizes,
/// strides, a dimension listed twice, the swizzle) and throws SpecError; which
/// dimensions exist and how their folds combine is checked by the Spec.
class TensorSpec {
 public:
  TensorSpec(std::string name, DType type) : name_(std::move(name)), type_(type) {
    check_name("tensor", name_);
    (void)cpp_type(type_);  // rejects a value outside the enumeration
  }

  /// Makes the elements const (`const float`): a tensor the kernel only reads.
  TensorSpec& read_only(bool yes = true) {
    read_only_ = yes;
    return *this;
  }

  /// Appends a dimension (inside the ones given before) with a packed stride.
  TensorSpec& dim(std::string dim_name, Size size) {
    return add(TensorDim{std::move(dim_name), size, std::nullopt, std::nullopt});
  }
  /// Appends a dimension with an explicit stride in elements (positive, or dynamic: the
  /// kernel then passes kiln::Stride<D>(value) to the tensor's constructor).
  TensorSpec& dim(std::string dim_name, Size size, Stride stride) {
    if (!stride.value.is_dynamic() && stride.value.value() <= 0) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' gives dimension '{}' the stride {}; a stride must be a "
          "positive number of elements or kiln::gen::dynamic",
          name_, dim_name, stride.value.value()));
    }
    return add(TensorDim{std::move(dim_name), size, stride.value, std::nullopt});
  }
  /// Appends a dimension whose stride is the packed stride plus `padding` elements
  /// (rows of 32 with Padding{8}: a stride of 40). The packed stride, i.e. the sizes and
  /// strides of the dimensions inside this one, must be static.
  TensorSpec& dim(std::string dim_name, Size size, Padding padding) {
    if (padding.elements < 0) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' pads dimension '{}' by {} elements; padding must not be "
          "negative (give an explicit Stride for a smaller stride)",
          name_, dim_name, padding.elements));
    }
    return add(TensorDim{std::move(dim_name), size, std::nullopt, padding.elements});
  }

  /// Makes the tensor a kiln::SwizzledTensor with kiln::Swizzle<bits, base, shift>.
  TensorSpec& swizzle(int bits, int base, int shift) {
    if (swizzle_) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' is given a swizzle twice; call swizzle() once", name_));
    }
    if (bits < 0 || base < 0 || shift < 0) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' has the swizzle <{}, {}, {}>; Bits, Base and Shift must not be "
          "negative",
          name_, bits, base, shift));
    }
    if (shift < bits) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' has the swizzle <{}, {}, {}> with Shift {} < Bits {}; the source "
          "and target bits would overlap, so make Shift >= Bits",
          name_, bits, base, shift, shift, bits));
    }
    if (bits + base + shift > 30) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' has the swizzle <{}, {}, {}>, which reaches past bit 30 of a "
          "32-bit offset; make Bits + Base + Shift at most 30",
          name_, bits, base, shift));
    }
    swizzle_ = Swizzle{bits, base, shift};
    return *this;
  }

  const std::string& name() const { return name_; }
  DType type() const { return type_; }
  bool is_read_only() const { return read_only_; }
  /// The dimensions, outermost first.
  const std::vector<TensorDim>& dims() const { return dims_; }
  const std::optional<Swizzle>& swizzle() const { return swizzle_; }

  /// The stride each dimension declares in the header, outermost first: nullopt where
  /// the stride is packed (kiln computes it), else a static value or dynamic. Throws
  /// SpecError for a tensor without dimensions, for padding on a packed stride that is
  /// not static, and for a stride that overflows kiln's 32-bit offsets.
  std::vector<std::optional<Size>> declared_strides() const {
    if (dims_.empty()) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' has no dimensions; add at least one with .dim(name, size)",
          name_));
    }
    std::vector<std::optional<Size>> out(dims_.size());
    std::optional<long long> packed = 1;  // the packed stride of the dimension at hand
    for (std::size_t j = dims_.size(); j-- > 0;) {
      const TensorDim& d = dims_[j];
      std::optional<long long> stride = packed;  // this dimension's stride, if static
      if (d.stride) {
        out[j] = d.stride;
        stride =
            d.stride->is_dynamic() ? std::nullopt : std::optional<long long>(d.stride->value());
      } else if (d.padding) {
        if (!packed) {
          throw SpecError(fmt::format(
              "kiln::gen: tensor '{}' pads dimension '{}', but its packed stride depends on a "
              "run-time size or stride inside it; give it an explicit Stride instead",
              name_, d.dim));
        }
        stride = *packed + *d.padding;
        check_fits(d.dim, *stride);
        out[j] = Size(static_cast<int>(*stride));
      }
      if (stride && !d.size.is_dynamic()) {
        packed = *stride * d.size.value();
        check_fits(d.dim, *packed);
      } else {
        packed = std::nullopt;
      }
    }
    return out;
  }

 private:
  TensorSpec& add(TensorDim d) {
    check_name("dimension", d.dim);
    if (!d.size.is_dynamic() && d.size.value() <= 0) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' gives dimension '{}' the size {}; a size must be positive or "
          "kiln::gen::dynamic",
          name_, d.dim, d.size.value()));
    }
    if (std::any_of(dims_.begin(), dims_.end(),
                    [&](const TensorDim& e) { return e.dim == d.dim; })) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' lists dimension '{}' twice; list each dimension once (use a "
          "fold such as fold(\"{}8\", \"{}\", 8) to split it)",
          name_, d.dim, d.dim, d.dim));
    }
    dims_.push_back(std::move(d));
    return *this;
  }

  void check_fits(const std::string& dim_name, long long elements) const {
    if (elements > std::numeric_limits<int>::max()) {
      throw SpecError(fmt::format(
          "kiln::gen: tensor '{}' spans {} elements at dimension '{}', more than kiln's 32-bit "
          "offsets hold; make it smaller or make a size dynamic",
          name_, elements, dim_name));
    }
  }

  std::string name_;
  DType type_;
  bool read_only_ = false;
  std::vector<TensorDim> dims_;
  std::optional<Swizzle> swizzle_;
};

}  // namespace kiln::gen
