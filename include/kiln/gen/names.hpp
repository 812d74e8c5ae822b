#pragma once
/// Which names a generated header may declare: C++ identifiers that are not keywords,
/// not reserved, and not kiln's own.

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "spec_error.hpp"

namespace kiln::gen {

/// Whether `name` is a C++20 keyword (including the alternative operator spellings such
/// as `and` and `xor`).
inline bool is_cpp_keyword(std::string_view name) {
  // Sorted, for binary search.
  static constexpr std::array<std::string_view, 92> keywords = {
      "alignas",       "alignof",     "and",
      "and_eq",        "asm",         "auto",
      "bitand",        "bitor",       "bool",
      "break",         "case",        "catch",
      "char",          "char16_t",    "char32_t",
      "char8_t",       "class",       "co_await",
      "co_return",     "co_yield",    "compl",
      "concept",       "const",       "const_cast",
      "consteval",     "constexpr",   "constinit",
      "continue",      "decltype",    "default",
      "delete",        "do",          "double",
      "dynamic_cast",  "else",        "enum",
      "explicit",      "export",      "extern",
      "false",         "float",       "for",
      "friend",        "goto",        "if",
      "inline",        "int",         "long",
      "mutable",       "namespace",   "new",
      "noexcept",      "not",         "not_eq",
      "nullptr",       "operator",    "or",
      "or_eq",         "private",     "protected",
      "public",        "register",    "reinterpret_cast",
      "requires",      "return",      "short",
      "signed",        "sizeof",      "static",
      "static_assert", "static_cast", "struct",
      "switch",        "template",    "this",
      "thread_local",  "throw",       "true",
      "try",           "typedef",     "typeid",
      "typename",      "union",       "unsigned",
      "using",         "virtual",     "void",
      "volatile",      "wchar_t",     "while",
      "xor",           "xor_eq"};
  return std::binary_search(keywords.begin(), keywords.end(), name);
}

/// Whether `name` has the form of a C++ identifier: a letter or underscore, then
/// letters, digits and underscores (ASCII only).
inline bool is_identifier(std::string_view name) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (name.empty() || !letter(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return letter(c) || digit(c); });
}

/// Whether `name` is one that CUDA or HIP device code already declares in the global
/// namespace (built-in variables, vector types, the 16-bit float types, the C library and
/// math functions a kernel sees): a generated declaration of it would fail inside the
/// compiler, or quietly hide a function (`KILN_DIM(exp)` makes `exp(x)` build a dimension).
inline bool is_gpu_predeclared(std::string_view name) {
  static constexpr std::string_view names[] = {
      "threadIdx", "blockIdx",    "blockDim",     "gridDim",   "warpSize",  "dim3",     "half",
      "half2",     "nv_bfloat16", "nv_bfloat162", "size_t",    "ptrdiff_t", "int8_t",   "int16_t",
      "int32_t",   "int64_t",     "uint8_t",      "uint16_t",  "uint32_t",  "uint64_t", "intptr_t",
      "uintptr_t", "printf",      "malloc",       "free",      "memcpy",    "memset",   "assert",
      "min",       "max",         "abs",          "fabs",      "sqrt",      "rsqrt",    "cbrt",
      "exp",       "exp2",        "exp10",        "expm1",     "log",       "log2",     "log10",
      "log1p",     "pow",         "sin",          "cos",       "tan",       "sinh",     "cosh",
      "tanh",      "asin",        "acos",         "atan",      "atan2",     "erf",      "erfc",
      "floor",     "ceil",        "round",        "trunc",     "fmin",      "fmax",     "fma",
      "fmod",      "isnan",       "isinf",        "isfinite",  "signbit",   "clock",    "clock64",
      "atomicAdd", "atomicMax",   "atomicMin",    "atomicCAS", "atomicExch"};
  for (std::string_view n : names) {
    if (n == name) return true;
  }
  // Vector types: char1 .. ulonglong4, float1 .. double4.
  for (std::string_view base : {"char", "uchar", "short", "ushort", "int", "uint", "long", "ulong",
                                "longlong", "ulonglong", "float", "double"}) {
    if (name.size() == base.size() + 1 && name.substr(0, base.size()) == base &&
        name.back() >= '1' && name.back() <= '4') {
      return true;
    }
  }
  return false;
}

/// Whether `name` is reserved to the implementation: it starts with an underscore and
/// an uppercase letter, or contains a double underscore anywhere.
inline bool is_reserved_identifier(std::string_view name) {
  if (name.size() >= 2 && name[0] == '_' && name[1] >= 'A' && name[1] <= 'Z') return true;
  return name.find("__") != std::string_view::npos;
}

/// Throws SpecError unless `name` may name a `what` ("tensor", "dimension", ...) in a
/// generated header: an identifier, not a keyword, not reserved, not a name CUDA or HIP
/// device code already declares, and neither `kiln` nor one of kiln's KILN_ macros.
inline void check_name(std::string_view what, std::string_view name) {
  if (!is_identifier(name)) {
    throw SpecError(fmt::format(
        "kiln::gen: the {} name '{}' is not a C++ identifier; use ASCII letters, digits and "
        "underscores, starting with a letter or underscore",
        what, name));
  }
  if (is_cpp_keyword(name)) {
    throw SpecError(
        fmt::format("kiln::gen: the {} name '{}' is a C++ keyword; pick another name (e.g. '{}_')",
                    what, name, name));
  }
  if (is_reserved_identifier(name)) {
    throw SpecError(fmt::format(
        "kiln::gen: the {} name '{}' is reserved in C++ (a leading underscore and an uppercase "
        "letter, or a double underscore); pick another name",
        what, name));
  }
  if (is_gpu_predeclared(name)) {
    throw SpecError(fmt::format(
        "kiln::gen: the {} name '{}' is already declared in CUDA / HIP device code (a built-in "
        "variable, vector type or library function); pick another name (e.g. '{}_')",
        what, name, name));
  }
  if (name == "kiln" || name.substr(0, 5) == "KILN_") {
    throw SpecError(fmt::format(
        "kiln::gen: the {} name '{}' would clash with kiln's own namespace or macros; pick "
        "another name",
        what, name));
  }
}

}  // namespace kiln::gen
