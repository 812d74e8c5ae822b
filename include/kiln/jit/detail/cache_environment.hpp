#pragma once
/// Reading the disk cache's own environment variables (see docs/environment.md):
/// KILN_CACHE and KILN_CACHE_MAX_MB. The directory (KILN_CACHE_DIR, XDG_CACHE_HOME, HOME)
/// is kiln's shared one, read by kiln/detail/environment.hpp.

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "../../detail/environment.hpp"
#include "../../error.hpp"

namespace kiln::jit::detail {

using kiln::detail::cache_dir_from_environment;
using kiln::detail::env_value;

/// KILN_CACHE as a switch: true where unset or empty. Throws kiln::Error for a value that
/// is none of 0/1, off/on, false/true (in any letter case).
inline bool cache_switch_from_environment() {
  return kiln::detail::switch_from_environment("KILN_CACHE", "the kernel disk cache");
}

/// KILN_CACHE_MAX_MB in bytes, or `default_mb` MiB where it is unset or empty. Throws
/// kiln::Error for anything but a positive decimal integer whose MiB fit in 64 bits.
inline std::uint64_t cache_max_bytes_from_environment(std::uint64_t default_mb) {
  constexpr std::uint64_t mib = std::uint64_t{1} << 20;
  const auto v = kiln::detail::env_setting("KILN_CACHE_MAX_MB");  // spaces around it allowed
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

}  // namespace kiln::jit::detail
