#pragma once
/// Reading kiln's environment variables (see docs/environment.md): the shared parsing of
/// a value, of an on/off switch, of a number and of a name, and of the directory kiln keeps
/// its files in. Switches, numbers and names are all read the same way: spaces around the
/// value are ignored, and letter case does not matter.

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "../error.hpp"

namespace kiln::detail {

/// The value of the environment variable `name`, or nullopt where it is unset or empty.
inline std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

/// `value` without the spaces and tabs around it.
inline std::string trimmed(std::string_view value) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!value.empty() && space(value.front())) value.remove_prefix(1);
  while (!value.empty() && space(value.back())) value.remove_suffix(1);
  return std::string(value);
}

/// `value` trimmed and in lower case: how every switch, number and name kiln reads from
/// the environment is compared (" Full " reads as "full").
inline std::string normalized(std::string_view value) {
  std::string out = trimmed(value);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

/// The environment variable `name` trimmed(), or nullopt where it is unset, empty or only
/// spaces: the value of a switch, a number or a name (compare names normalized()).
inline std::optional<std::string> env_setting(const char* name) {
  const auto v = env_value(name);
  if (!v) return std::nullopt;
  std::string out = trimmed(*v);
  if (out.empty()) return std::nullopt;
  return out;
}

/// The environment variable `name` as a whole number from `min` to `max` (spaces around it
/// allowed), or nullopt where it is unset or empty. Throws kiln::Error for anything else;
/// `what` says what the number is ("the number of compile threads").
inline std::optional<std::uint64_t> env_count(const char* name, std::uint64_t min,
                                              std::uint64_t max, const std::string& what) {
  const auto v = env_setting(name);
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  bool ok = true;
  for (char c : *v) {
    if (c < '0' || c > '9' || n > (max - static_cast<std::uint64_t>(c - '0')) / 10) {
      ok = false;
      break;
    }
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!ok || n < min || n > max) {
    throw Error("kiln: the environment variable " + std::string(name) + " is '" + *env_value(name) +
                "', but it must be " + what + ": a whole number from " + std::to_string(min) +
                " to " + std::to_string(max) + " (digits only). Fix or unset " + name + ".");
  }
  return n;
}

/// The environment variable `name` as one of the names in `table` (a kiln::detail::EnumNames,
/// compared normalized()), or nullopt where it is unset or empty. Throws kiln::Error for
/// another value; `what` says what it picks ("a tuning policy").
template <class Table>
auto env_choice(const char* name, const Table& table, const std::string& what)
    -> std::optional<decltype(table.entries[0].value)> {
  const auto v = env_setting(name);
  if (!v) return std::nullopt;
  for (const auto& e : table.entries) {
    if (normalized(*v) == normalized(e.name)) return e.value;
  }
  throw Error("kiln: the environment variable " + std::string(name) + " is '" + *env_value(name) +
              "', which is not " + what + "; use " + table.choices() +
              " (any letter case). Fix or unset " + name + ".");
}

/// `value` as a switch: false for 0, off or false, true for 1, on or true (in any letter
/// case, spaces around it allowed), nullopt for anything else.
inline std::optional<bool> parse_switch(const std::string& value) {
  const std::string lower = normalized(value);
  if (lower == "0" || lower == "off" || lower == "false") return false;
  if (lower == "1" || lower == "on" || lower == "true") return true;
  return std::nullopt;
}

/// The environment variable `name` as a switch: true where unset or empty. Throws
/// kiln::Error for a value parse_switch() does not accept; `what` names what the switch
/// turns off ("the kernel disk cache").
inline bool switch_from_environment(const char* name, const std::string& what) {
  const auto v = env_value(name);
  if (!v || !env_setting(name)) return true;
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
