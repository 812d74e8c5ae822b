#pragma once
/// Reading kiln's environment variables (see docs/environment.md): the shared parsing of
/// a value, of an on/off switch, and of the directory kiln keeps its files in.

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "../error.hpp"

namespace kiln::detail {

/// The value of the environment variable `name`, or nullopt where it is unset or empty.
inline std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

/// `value` as a switch: false for 0, off or false, true for 1, on or true (in any letter
/// case), nullopt for anything else.
inline std::optional<bool> parse_switch(const std::string& value) {
  std::string lower;
  for (char c : value) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (lower == "0" || lower == "off" || lower == "false") return false;
  if (lower == "1" || lower == "on" || lower == "true") return true;
  return std::nullopt;
}

/// The environment variable `name` as a switch: true where unset or empty. Throws
/// kiln::Error for a value parse_switch() does not accept; `what` names what the switch
/// turns off ("the kernel disk cache").
inline bool switch_from_environment(const char* name, const std::string& what) {
  const auto v = env_value(name);
  if (!v) return true;
  if (const auto on = parse_switch(*v)) return *on;
  throw Error("kiln: the environment variable " + std::string(name) + " is '" + *v +
              "', which kiln does not understand; it accepts 0, off or false (to turn " + what +
              " off) and 1, on or true (to keep it on, the default), in any letter case. Fix "
              "or unset " +
              name + ".");
}

/// The directory kiln keeps its files in (kernel binaries, the tuning database), as the
/// environment names it: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln (where XDG_CACHE_HOME
/// is an absolute path, as the XDG spec requires; a relative one is ignored), else
/// $HOME/.cache/kiln; nullopt where none of these is set. A relative KILN_CACHE_DIR is
/// made absolute against the current directory.
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

}  // namespace kiln::detail
