#pragma once
/// Turning a compiler's log into a message a user can act on: which kernel, which
/// target and options, and for each error the failing line with a few lines around it,
/// from the user's source, an in-memory header (the generated one) or a file on disk.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "../detail/posix_file.hpp"
#include "program.hpp"
#include "sources.hpp"

namespace kiln::jit {

/// One "file(line): error: message" (NVRTC) or "file:line:col: error: message" (clang,
/// hipRTC) line of a compiler log.
struct Diagnostic {
  std::string file;
  int line = 0;  ///< 0 when the log's line number is not one a file can have (past 2^31 - 2)
  std::string severity;  ///< "error", "warning", "note", ...
  std::string message;
};

namespace detail {

/// The parts of one diagnostic line, as views into it.
struct DiagnosticParts {
  std::string_view file, line, severity, message;
};

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// The end of the run of digits that starts at `from` in `text`.
inline std::size_t digits_end(std::string_view text, std::size_t from) {
  while (from < text.size() && is_digit(text[from])) ++from;
  return from;
}

/// `rest` read as "<severity>: <message>" with a severity from `names` (tried in order).
inline bool read_severity(std::string_view rest, std::initializer_list<std::string_view> names,
                          DiagnosticParts& out) {
  for (std::string_view name : names) {
    if (rest.starts_with(name) && rest.substr(name.size()).starts_with(": ")) {
      out.severity = name;
      out.message = rest.substr(name.size() + 2);
      return true;
    }
  }
  return false;
}

/// `line` read as NVRTC writes a diagnostic, "file(line): severity: message": the last
/// "(digits): severity: " after a non-empty file name, as the pattern
/// ^(.+)\((\d+)\): (catastrophic error|error|warning|remark|note): (.*)$ reads it.
inline bool read_nvrtc_diagnostic(std::string_view line, DiagnosticParts& out) {
  for (std::size_t open = line.rfind('('); open != line.npos && open > 0;
       open = line.rfind('(', open - 1)) {
    const std::size_t end = digits_end(line, open + 1);
    if (end == open + 1 || !line.substr(end).starts_with("): ")) continue;
    if (read_severity(line.substr(end + 3),
                      {"catastrophic error", "error", "warning", "remark", "note"}, out)) {
      out.file = line.substr(0, open);
      out.line = line.substr(open + 1, end - open - 1);
      return true;
    }
  }
  return false;
}

/// `line` read as clang and hipRTC write a diagnostic, "file:line:column: severity:
/// message": the first ":digits:digits: severity: " after a non-empty file name, as the
/// pattern ^(.+?):(\d+):\d+: (fatal error|error|warning|note): (.*)$ reads it.
inline bool read_clang_diagnostic(std::string_view line, DiagnosticParts& out) {
  for (std::size_t colon = line.find(':', 1); colon != line.npos;
       colon = line.find(':', colon + 1)) {
    const std::size_t line_end = digits_end(line, colon + 1);
    if (line_end == colon + 1 || line_end == line.size() || line[line_end] != ':') continue;
    const std::size_t column_end = digits_end(line, line_end + 1);
    if (column_end == line_end + 1 || !line.substr(column_end).starts_with(": ")) continue;
    if (read_severity(line.substr(column_end + 2), {"fatal error", "error", "warning", "note"},
                      out)) {
      out.file = line.substr(0, colon);
      out.line = line.substr(colon + 1, line_end - colon - 1);
      return true;
    }
  }
  return false;
}

}  // namespace detail

/// The diagnostics in a compiler log, in order. Linear in the log's length, whatever its
/// lines hold (std::regex recurses once per character: a line of some ten thousand
/// characters overflowed the stack).
inline std::vector<Diagnostic> parse_compiler_log(const std::string& log) {
  std::vector<Diagnostic> out;
  std::istringstream in(log);
  std::string line;
  detail::DiagnosticParts d;
  while (std::getline(in, line)) {
    // A line holding a carriage return is none of the patterns (their '.' excludes it).
    if (line.find('\r') != line.npos) continue;
    if (detail::read_nvrtc_diagnostic(line, d) || detail::read_clang_diagnostic(line, d)) {
      // Whatever the number (a `#line 4000000000` is legal), the log is never lost: a line
      // past int's range (or too close to its end to show lines after) reads as 0, unknown.
      long long n = 0;
      const auto [end, err] = std::from_chars(d.line.data(), d.line.data() + d.line.size(), n);
      const bool fits = err == std::errc() && end == d.line.data() + d.line.size() && n > 0 &&
                        n < (long long)std::numeric_limits<int>::max() - 16;
      out.push_back({std::string(d.file), fits ? int(n) : 0, std::string(d.severity),
                     std::string(d.message)});
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
  // Only a regular file, and not a huge one: a log may name any path (`#line 1
  // "/dev/zero"` in a source, a FIFO), and describing an error must never hang.
  return kiln::detail::read_regular_file(file, text, max_source_bytes) == 0;
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
