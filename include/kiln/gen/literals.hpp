#pragma once
/// C++ literals that give back exactly the value they were made from.

#include <fmt/format.h>

#include <limits>
#include <string>
#include <string_view>

namespace kiln::gen {

/// An int literal: "64", "-5", and "(-2147483647 - 1)" for the minimum (whose digits
/// alone would not fit in an int).
inline std::string int_literal(int v) {
  if (v == std::numeric_limits<int>::min()) return fmt::format("({} - 1)", v + 1);
  return fmt::format("{}", v);
}

/// A long long literal with the LL suffix: "1099511627776LL".
inline std::string long_long_literal(long long v) {
  if (v == std::numeric_limits<long long>::min()) return fmt::format("({}LL - 1)", v + 1);
  return fmt::format("{}LL", v);
}

namespace detail {
// The shortest decimal that reads back as the same value (fmt's "{}"), made a
// floating literal: "1" -> "1.0", "1e+20" stays.
inline std::string decimal_floating(std::string s) {
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}
}  // namespace detail

/// A float literal that reads back as exactly `v`: "0.1f", "1.0f", "-0.0f", "1e+20f".
/// `v` must be finite.
inline std::string float_literal(float v) {
  return detail::decimal_floating(fmt::format("{}", v)) + "f";
}

/// A double literal that reads back as exactly `v`: "0.1", "1.0", "1e+300".
/// `v` must be finite.
inline std::string double_literal(double v) {
  return detail::decimal_floating(fmt::format("{}", v));
}

}  // namespace kiln::gen
