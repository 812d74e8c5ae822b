#pragma once
/// Turning a compiler's log into a message a user can act on: which kernel, which
/// target and options, and for each error the failing line with a few lines around it,
/// from the user's source, an in-memory header (the generated one) or a file on disk.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "program.hpp"

namespace kiln::jit {

/// One "file(line): error: message" (NVRTC) or "file:line:col: error: message" (clang,
/// hipRTC) line of a compiler log.
struct Diagnostic {
  std::string file;
  int line = 0;  ///< 0 when the log's line number is not one a file can have (past 2^31 - 2)
  std::string severity;  ///< "error", "warning", "note", ...
  std::string message;
};

/// The diagnostics in a compiler log, in order.
inline std::vector<Diagnostic> parse_compiler_log(const std::string& log) {
  static const std::regex nvrtc_style(
      R"(^(.+)\((\d+)\): (catastrophic error|error|warning|remark|note): (.*)$)");
  static const std::regex clang_style(
      R"(^(.+?):(\d+):\d+: (fatal error|error|warning|note): (.*)$)");
  std::vector<Diagnostic> out;
  std::istringstream in(log);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, nvrtc_style) || std::regex_match(line, m, clang_style)) {
      // Whatever the number (a `#line 4000000000` is legal), the log is never lost: a line
      // past int's range (or too close to its end to show lines after) reads as 0, unknown.
      const std::string digits = m[2].str();
      long long n = 0;
      const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      const bool fits = err == std::errc() && end == digits.data() + digits.size() && n > 0 &&
                        n < (long long)std::numeric_limits<int>::max() - 16;
      out.push_back({m[1].str(), fits ? int(n) : 0, m[3].str(), m[4].str()});
    }
  }
  return out;
}

namespace detail {

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

/// The text of `file` as the compiler saw it: the main source, an in-memory header, or a file.
inline bool find_text(const std::string& file, const std::string& name, const std::string& source,
                      const std::vector<NamedSource>& headers, std::string& text) {
  if (file == name) {
    text = source;
    return true;
  }
  for (const auto& h : headers) {
    if (file == h.name) {
      text = h.contents;
      return true;
    }
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  text = s.str();
  return true;
}

}  // namespace detail

/// The message of a CompileError.
///
/// Parameters:
///   compiler  "NVRTC", "hipRTC"
///   name      the program's name; source its text; headers its in-memory headers
///   flags     the flags the compiler got
///   log       the compiler's log; status the compiler's result code as text
inline std::string describe_compile_failure(const std::string& compiler, const std::string& name,
                                            const std::string& source,
                                            const std::vector<NamedSource>& headers,
                                            const std::vector<std::string>& flags,
                                            const std::string& log, const std::string& status) {
  std::string target = "?";
  for (const auto& f : flags) {
    for (const char* prefix : {"--gpu-architecture=", "--offload-arch="}) {
      if (f.rfind(prefix, 0) == 0) target = f.substr(std::string(prefix).size());
    }
  }
  std::string msg = "kiln: " + compiler + " could not compile " + name + " for " + target + " (" +
                    status + ")\n  options:";
  for (const auto& f : flags) msg += " " + f;
  msg += "\n";
  // An option the compiler refused appears in its log: name it on its own line.
  std::string rejected;
  for (const auto& f : flags) {
    if (log.find("option " + f) != std::string::npos ||
        log.find("option '" + f) != std::string::npos ||
        log.find("argument: '" + f) != std::string::npos) {
      rejected += " " + f;
    }
  }
  if (!rejected.empty()) msg += "  rejected option(s):" + rejected + "\n";

  constexpr int context = 2;
  constexpr size_t max_shown = 8;
  size_t shown = 0;
  for (const auto& d : parse_compiler_log(log)) {
    if (d.severity.find("error") == std::string::npos) continue;
    if (shown++ == max_shown) {
      msg += "  (more errors: see the full log below)\n";
      break;
    }
    msg +=
        "\n" + d.file + ":" + std::to_string(d.line) + ": " + d.severity + ": " + d.message + "\n";
    std::string text;
    if (d.line <= 0 || !detail::find_text(d.file, name, source, headers, text)) continue;
    auto lines = detail::split_lines(text);
    int first = std::max(1, d.line - context);
    int last = std::min(int(lines.size()), d.line + context);
    for (int l = first; l <= last; ++l) {
      std::string num = std::to_string(l);
      msg += (l == d.line ? "  > " : "    ") +
             std::string(5 - std::min<size_t>(5, num.size()), ' ') + num + " | " +
             lines[size_t(l - 1)] + "\n";
    }
  }
  msg += "\nfull log:\n" + log;
  return msg;
}

}  // namespace kiln::jit
