#pragma once
/// Every file a program #includes, resolved by kiln itself and handed to the compiler in
/// memory, so that the cache key covers exactly the bytes that are compiled and nothing is
/// read from disk behind kiln's back (jitify's approach: NVRTC has no dependency output).
///
///   ResolvedProgram r = resolve_includes(program, {"/opt/app/include"}, {cuda_include});
///   if (r.unresolved.empty()) key_of(r.program);   // compile r.program: same bytes
///
/// Search order, as NVRTC's: an in-memory header of that exact name; for "file" the
/// directory of the including file (for the main source and in-memory headers, the
/// directory of their name, relative to the current directory); then each include
/// directory in order. Each file found on disk becomes an in-memory header named by its
/// absolute path (symlinks resolved), and the directive that found it is rewritten to
/// that path, so the compiler can only take the file kiln read. A directory in `toolkit`
/// stops the search and leaves the directive to the compiler: the toolkit's headers are
/// covered by the compiler's identity in the key. `__has_include("file")` is resolved the
/// same way. Conditional includes are followed whatever the condition (which can only add
/// files), as are includes in comments.

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "program.hpp"
#include "sources.hpp"

namespace kiln::jit {

/// A program whose includes kiln has resolved.
struct ResolvedProgram {
  /// What to compile: the source and in-memory headers with every include kiln found on
  /// disk spelled as that file's absolute path, and one in-memory header per such file
  /// (named by the path), sorted by name after the program's own headers.
  Program program;
  /// "" where every include was resolved; else the first one that kiln cannot resolve
  /// without preprocessing, where it is and why ("line 2 of k.cu, `#include HEADER`,
  /// names its file through a macro"). The compiler then has to search for files itself,
  /// and the program's key cannot cover them.
  std::string unresolved;
};

namespace detail {

/// One file name read from an #include or __has_include: its position in the text.
struct IncludeReference {
  std::size_t begin = 0, end = 0;  // the name, without its delimiters
  bool quoted = false;             // "file" rather than <file>
};

/// The include references of `text` (the file `name`), line by line; where a line holds
/// an include kiln cannot read (a macro, #include_next, a directive continued on the next
/// line), sets `problem` to "line N of <name>, `...`, <why>" (the first such line) and
/// goes on.
class IncludeScanner {
 public:
  IncludeScanner(std::string_view text, std::string_view name, std::string& problem)
      : text_(text), name_(name), problem_(problem) {}

  std::vector<IncludeReference> scan() {
    for (std::size_t start = 0, line = 1; start < text_.size(); ++line) {
      std::size_t end = text_.find('\n', start);
      if (end == std::string_view::npos) end = text_.size();
      scan_line(start, end, line);
      start = end + 1;
    }
    return std::move(out_);
  }

 private:
  static bool identifier_char(char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  }

  /// Skips spaces, tabs and /* comments */ from `i` within [.., end).
  std::size_t skip_blank(std::size_t i, std::size_t end) const {
    while (i < end) {
      if (text_[i] == ' ' || text_[i] == '\t' || text_[i] == '\r') {
        ++i;
      } else if (text_.compare(i, 2, "/*") == 0) {
        const std::size_t close = text_.substr(0, end).find("*/", i + 2);
        if (close == std::string_view::npos) return end;
        i = close + 2;
      } else {
        break;
      }
    }
    return i;
  }

  void fail(std::size_t line, std::size_t start, std::size_t end, const char* why) {
    if (!problem_.empty()) return;
    std::string_view shown = text_.substr(start, end - start);
    while (!shown.empty() && (shown.front() == ' ' || shown.front() == '\t'))
      shown.remove_prefix(1);
    while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\r')) shown.remove_suffix(1);
    problem_ = "line " + std::to_string(line) + " of " + std::string(name_) + ", `" +
               std::string(shown) + "`, " + why;
  }

  /// Reads a "name" or <name> at `i`; false where there is none on this line.
  bool literal(std::size_t i, std::size_t end) {
    if (i >= end || (text_[i] != '"' && text_[i] != '<')) return false;
    const char close = text_[i] == '"' ? '"' : '>';
    const std::size_t stop = text_.substr(0, end).find(close, i + 1);
    if (stop == std::string_view::npos || stop == i + 1) return false;
    out_.push_back({i + 1, stop, close == '"'});
    return true;
  }

  void scan_line(std::size_t start, std::size_t end, std::size_t line) {
    std::size_t i = skip_blank(start, end);
    if (i < end && text_[i] == '#') {
      i = skip_blank(i + 1, end);
      std::size_t word_end = i;
      while (word_end < end && identifier_char(text_[word_end])) ++word_end;
      const std::string_view word = text_.substr(i, word_end - i);
      if (word == "include") {
        if (!literal(skip_blank(word_end, end), end)) {
          fail(line, start, end,
               skip_blank(word_end, end) < end && text_[skip_blank(word_end, end)] == '\\'
                   ? "is continued on the next line"
                   : "names its file through a macro");
        }
        return;
      }
      if (word == "include_next" || word == "import") {
        return fail(line, start, end, "searches for its file in a way kiln does not follow");
      }
    }
    // __has_include may appear in any #if or #elif, or in a macro defined for one (not in
    // a // comment, where prose may name it).
    // (Every search is bounded by the line's end, so a scan stays linear in the text.)
    end = std::min(end, text_.substr(0, end).find("//", start));
    const std::string_view line_text = text_.substr(0, end);
    for (std::size_t at = line_text.find("__has_include", start); at != std::string_view::npos;
         at = line_text.find("__has_include", at + 1)) {
      std::size_t j = at + 13;
      if (j < end && identifier_char(text_[j])) {  // __has_include_next
        fail(line, start, end, "searches for its file in a way kiln does not follow");
        continue;
      }
      j = skip_blank(j, end);
      if (j < end && text_[j] == '(' && literal(skip_blank(j + 1, end), end)) continue;
      fail(line, start, end, "names its file through a macro");
    }
  }

  std::string_view text_;
  std::string_view name_;
  std::string& problem_;
  std::vector<IncludeReference> out_;
};

}  // namespace detail

/// `program` with its includes resolved against `include_dirs` (in order); see the top of
/// this file. Directories in `toolkit` end the search and are left to the compiler.
inline ResolvedProgram resolve_includes(const Program& program,
                                        const std::vector<std::string>& include_dirs,
                                        const std::vector<std::string>& toolkit = {}) {
  namespace fs = std::filesystem;
  ResolvedProgram out;
  out.program = program;
  std::map<std::string, std::string> found;  // absolute path -> text, rewritten
  std::set<std::string> in_memory;
  for (const auto& h : program.headers) in_memory.insert(h.name);

  // Resolves the references of `text` (the file `name`) in place, reading new files.
  // Returns the files it found for the first time, to be resolved in turn.
  auto resolve_text = [&](std::string& text, const std::string& name) {
    std::string problem;
    const auto refs = detail::IncludeScanner(text, name, problem).scan();
    if (!problem.empty() && out.unresolved.empty()) out.unresolved = problem;
    std::vector<std::string> fresh;
    const fs::path dir = fs::path(name).parent_path();
    std::string rewritten;
    std::size_t copied = 0;
    for (const auto& ref : refs) {
      const std::string target = text.substr(ref.begin, ref.end - ref.begin);
      if (in_memory.count(target)) continue;              // a program header: the compiler takes it
      std::vector<std::pair<fs::path, bool>> candidates;  // {file, in the toolkit}
      if (fs::path(target).is_absolute()) {
        candidates.emplace_back(target, false);
      } else {
        if (ref.quoted) candidates.emplace_back(dir / target, false);
        for (const auto& d : include_dirs) {
          const bool tk = std::find(toolkit.begin(), toolkit.end(), d) != toolkit.end();
          candidates.emplace_back(fs::path(d) / target, tk);
        }
      }
      std::string path;
      for (const auto& [candidate, in_toolkit] : candidates) {
        std::error_code ec;
        if (!fs::is_regular_file(candidate, ec)) continue;
        if (in_toolkit) break;  // covered by the compiler's identity
        path = fs::canonical(fs::absolute(candidate, ec), ec).string();
        if (ec) path.clear();
        break;
      }
      if (path.empty()) continue;  // not found: the toolkit's, built in, or an error
      if (path.find(ref.quoted ? '"' : '>') != std::string::npos ||
          path.find('\n') != std::string::npos || in_memory.count(path)) {
        if (out.unresolved.empty()) {
          out.unresolved = "the include of " + target + " in " + name +
                           " finds a file whose path cannot be passed in memory (" + path + ")";
        }
        continue;
      }
      if (!found.count(path)) {
        std::string contents;
        if (!detail::read_file(path, contents)) {
          if (out.unresolved.empty()) out.unresolved = "the file " + path + " cannot be read";
          continue;
        }
        found.emplace(path, std::move(contents));
        fresh.push_back(path);
      }
      rewritten.append(text, copied, ref.begin - copied);
      rewritten += path;
      copied = ref.end;
    }
    if (copied != 0) text = rewritten + text.substr(copied);
    return fresh;
  };

  std::vector<std::string> work = resolve_text(out.program.source, program.name);
  for (auto& h : out.program.headers) {
    for (auto& f : resolve_text(h.contents, h.name)) work.push_back(std::move(f));
  }
  while (!work.empty()) {
    const std::string path = std::move(work.back());
    work.pop_back();
    std::string text = found[path];
    for (auto& f : resolve_text(text, path)) work.push_back(std::move(f));
    found[path] = std::move(text);
  }
  for (auto& [path, text] : found) out.program.headers.push_back({path, std::move(text)});
  return out;
}

}  // namespace kiln::jit
