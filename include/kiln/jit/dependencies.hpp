#pragma once
/// The files a program #includes, found the way the compiler will find them, so that the
/// cache key covers the bytes of every header used and not only the main source.

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "program.hpp"
#include "sources.hpp"

namespace kiln::jit {

namespace detail {
/// The target of an #include directive on `line` ("a.hpp" or <a.hpp>), or false.
inline bool parse_include(const std::string& line, std::string& target, bool& quoted) {
  size_t i = line.find_first_not_of(" \t");
  if (i == std::string::npos || line[i] != '#') return false;
  i = line.find_first_not_of(" \t", i + 1);
  if (i == std::string::npos || line.compare(i, 7, "include") != 0) return false;
  i = line.find_first_not_of(" \t", i + 7);
  if (i == std::string::npos || (line[i] != '"' && line[i] != '<')) return false;
  quoted = line[i] == '"';
  size_t end = line.find(quoted ? '"' : '>', i + 1);
  if (end == std::string::npos) return false;
  target = line.substr(i + 1, end - i - 1);
  return true;
}
}  // namespace detail

/// One included file: the path (or in-memory name) it resolved to, and its bytes.
struct IncludedFile {
  std::string path;
  std::string contents;
};

/// Every file reachable through #include from `program`, resolved against the including
/// file's directory ("..." only), the program's in-memory headers, then `include_dirs`.
/// An include found nowhere (a toolkit header such as cuda_fp16.h, which the compiler's
/// version covers) is skipped. Conditional includes are followed whatever the condition,
/// which can only add files. Sorted by path, so the order is stable.
inline std::vector<IncludedFile> collect_includes(const Program& program,
                                                  const std::vector<std::string>& include_dirs) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> found;  // path -> contents
  struct Pending {
    std::string text;
    fs::path dir;  // the including file's directory (empty for in-memory files)
  };
  std::vector<Pending> work{{program.source, {}}};
  for (const auto& h : program.headers) work.push_back({h.contents, {}});
  while (!work.empty()) {
    Pending cur = std::move(work.back());
    work.pop_back();
    std::istringstream in(cur.text);
    std::string line, target;
    bool quoted = false;
    while (std::getline(in, line)) {
      if (line.find("include") == std::string::npos || !detail::parse_include(line, target, quoted))
        continue;
      bool resolved = false;
      for (const auto& h : program.headers) {
        if (h.name == target) resolved = true;  // in-memory: hashed with the program
      }
      std::vector<fs::path> candidates;
      if (quoted && !cur.dir.empty()) candidates.push_back(cur.dir / target);
      for (const auto& d : include_dirs) candidates.push_back(fs::path(d) / target);
      for (const auto& c : candidates) {
        if (resolved) break;
        std::error_code ec;
        if (!fs::is_regular_file(c, ec)) continue;
        std::string key = fs::weakly_canonical(c, ec).string();
        resolved = true;
        if (found.count(key)) break;
        std::string text;
        if (!detail::read_file(c, text)) break;
        found.emplace(key, text);
        work.push_back({std::move(text), fs::path(key).parent_path()});
      }
    }
  }
  std::vector<IncludedFile> out;
  for (auto& [path, contents] : found) out.push_back({path, std::move(contents)});
  return out;
}

}  // namespace kiln::jit
