#pragma once
/// Small helpers of KernelFactory: default kernel names and time stamps.

#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

namespace kiln::factory::detail {

/// The values of `j` joined by '_' as identifier characters: {"dtype":"f16","cols":4096}
/// -> "4096_f16" (object members in key order; anything but [A-Za-z0-9] becomes 'x',
/// a minus sign 'm').
inline std::string name_part(const nlohmann::json& j) {
  std::string out;
  auto add = [&](const std::string& text) {
    if (!out.empty()) out += '_';
    for (char c : text) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      out += ok ? c : (c == '-' ? 'm' : 'x');
    }
  };
  auto walk = [&](const auto& self, const nlohmann::json& v) -> void {
    if (v.is_object() || v.is_array()) {
      for (const auto& item : v) self(self, item);
    } else if (v.is_string()) {
      add(v.get<std::string>());
    } else if (v.is_boolean()) {
      add(v.get<bool>() ? "1" : "0");
    } else if (!v.is_null()) {
      add(v.dump());
    }
  };
  walk(walk, j);
  return out;
}

/// The current UTC time as ISO 8601 ("2026-11-29T05:01:02Z").
inline std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace kiln::factory::detail
