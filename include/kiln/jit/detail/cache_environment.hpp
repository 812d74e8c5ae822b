#pragma once
/// Reading the disk cache's environment variables (see docs/environment.md):
/// KILN_CACHE, KILN_CACHE_DIR, XDG_CACHE_HOME, HOME and KILN_CACHE_MAX_MB.

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "../../error.hpp"

namespace kiln::jit::detail {

/// The value of the environment variable `name`, or nullopt where it is unset or empty.
inline std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

/// KILN_CACHE as a switch: true where unset or empty. Throws kiln::Error for a value that
/// is none of 0/1, off/on, false/true (in any letter case).
inline bool cache_switch_from_environment() {
  const auto v = env_value("KILN_CACHE");
  if (!v) return true;
  std::string lower;
  for (char c : *v) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (lower == "0" || lower == "off" || lower == "false") return false;
  if (lower == "1" || lower == "on" || lower == "true") return true;
  throw Error("kiln: the environment variable KILN_CACHE is '" + *v +
              "', which kiln does not understand; it accepts 0, off or false (to turn the "
              "kernel disk cache off) and 1, on or true (to keep it on, the default), in any "
              "letter case. Fix or unset KILN_CACHE.");
}

/// KILN_CACHE_MAX_MB in bytes, or `default_mb` MiB where it is unset or empty. Throws
/// kiln::Error for anything but a positive decimal integer whose MiB fit in 64 bits.
inline std::uint64_t cache_max_bytes_from_environment(std::uint64_t default_mb) {
  constexpr std::uint64_t mib = std::uint64_t{1} << 20;
  const auto v = env_value("KILN_CACHE_MAX_MB");
  if (!v) return default_mb * mib;
  constexpr std::uint64_t max_mb = std::numeric_limits<std::uint64_t>::max() / mib;
  std::uint64_t mb = 0;
  bool ok = true;
  for (char c : *v) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    mb = mb * 10 + static_cast<std::uint64_t>(c - '0');
    if (mb > max_mb) {
      ok = false;
      break;
    }
  }
  if (!ok || mb == 0) {
    throw Error("kiln: the environment variable KILN_CACHE_MAX_MB is '" + *v +
                "', but it must be the kernel disk cache's size limit in MiB: a positive "
                "whole number from 1 to " +
                std::to_string(max_mb) + " (digits only, no unit; the default is " +
                std::to_string(default_mb) + "). Fix or unset KILN_CACHE_MAX_MB.");
  }
  return mb * mib;
}

/// The cache directory the environment names: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln
/// (where XDG_CACHE_HOME is an absolute path, as the XDG spec requires; a relative one is
/// ignored), else $HOME/.cache/kiln; nullopt where none of these is set. A relative
/// KILN_CACHE_DIR is made absolute against the current directory.
inline std::optional<std::filesystem::path> cache_dir_from_environment() {
  namespace fs = std::filesystem;
  if (auto v = env_value("KILN_CACHE_DIR")) {
    std::error_code ec;
    fs::path p = fs::absolute(fs::path(*v), ec);
    return ec ? fs::path(*v) : p;
  }
  if (auto v = env_value("XDG_CACHE_HOME"); v && fs::path(*v).is_absolute()) {
    return fs::path(*v) / "kiln";
  }
  if (auto v = env_value("HOME")) return fs::path(*v) / ".cache" / "kiln";
  return std::nullopt;
}

}  // namespace kiln::jit::detail
