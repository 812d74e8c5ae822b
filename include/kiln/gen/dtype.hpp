#pragma once
/// Element types of generated tensors, and how a header spells them.

#include <fmt/format.h>

#include <array>
#include <string_view>

#include "spec_error.hpp"

namespace kiln::gen {

/// A tensor's element type. f16 and bf16 are kiln::f16 and kiln::bf16
/// (kiln/device/half.hpp); the integers are exact-width on every target kiln supports.
enum class DType { f16, bf16, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64 };

/// Every DType, in declaration order.
inline constexpr std::array<DType, 12> all_dtypes = {
    DType::f16, DType::bf16, DType::f32, DType::f64, DType::i8,  DType::i16,
    DType::i32, DType::i64,  DType::u8,  DType::u16, DType::u32, DType::u64};

namespace detail {
struct DTypeInfo {
  std::string_view name;  // "f16"
  std::string_view cpp;   // "kiln::f16"
  int bytes;
};
inline const DTypeInfo& dtype_info(DType t) {
  static constexpr std::array<DTypeInfo, 12> infos = {{
      {"f16", "kiln::f16", 2},
      {"bf16", "kiln::bf16", 2},
      {"f32", "float", 4},
      {"f64", "double", 8},
      {"i8", "signed char", 1},
      {"i16", "short", 2},
      {"i32", "int", 4},
      {"i64", "long long", 8},
      {"u8", "unsigned char", 1},
      {"u16", "unsigned short", 2},
      {"u32", "unsigned int", 4},
      {"u64", "unsigned long long", 8},
  }};
  auto i = static_cast<std::size_t>(t);
  if (i >= infos.size()) {
    throw SpecError(fmt::format(
        "kiln::gen: {} is not a kiln::gen::DType; use one of the enumerators (f16 ... u64)",
        static_cast<int>(t)));
  }
  return infos[i];
}
}  // namespace detail

/// The DType's short name: "f16", "bf16", "f32", ..., "u64".
inline std::string_view to_string(DType t) {
  return detail::dtype_info(t).name;
}
/// How a generated header spells the type: "kiln::f16", "float", "signed char", ...
inline std::string_view cpp_type(DType t) {
  return detail::dtype_info(t).cpp;
}
/// The size of one element in bytes.
inline int size_of(DType t) {
  return detail::dtype_info(t).bytes;
}
/// Whether the type needs kiln/device/half.hpp (f16 or bf16).
inline bool is_half(DType t) {
  return t == DType::f16 || t == DType::bf16;
}

}  // namespace kiln::gen
