#pragma once
/// Numbers with SI prefixes for reports and charts ("3.35 TB/s", "989.5 TFLOP/s").

#include <cmath>
#include <iterator>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace kiln::prof::detail {

/// `value` (in `unit`s) scaled to a prefix that leaves 1..999 before it, with four
/// significant digits at most: si(3.35e12, "B/s") is "3.35 TB/s", si(0.5, "B") is "0.5 B".
inline std::string si(double value, std::string_view unit) {
  static constexpr std::string_view prefixes[] = {"", "k", "M", "G", "T", "P", "E"};
  std::size_t i = 0;
  double v = value;
  while (std::fabs(v) >= 999.95 && i + 1 < std::size(prefixes)) {
    v /= 1000;
    ++i;
  }
  return fmt::format("{:.4g} {}{}", v, prefixes[i], unit);
}

}  // namespace kiln::prof::detail
