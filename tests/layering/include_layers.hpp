#pragma once
// The layering check of include/kiln: reads every header's #include lines and reports each
// edge that goes up the layer order (docs/architecture.md).
//
// Layer order, lowest first: detail/ (and error.hpp), dims/, device/ (its tensor-core
// fragments, shared-memory tiles and asynchronous copies are typed tensors), gen/, jit/,
// rt/, prof/, factory/, ops/. A folder includes its own headers and those of
// lower layers only; it never reaches into another layer's detail/ folder (kiln/detail/
// itself is shared by all). The umbrella headers at the top (kiln/kiln.hpp, kiln/rt.hpp,
// ...) include whatever they gather and are not checked; no layer may include them.

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace kiln_test::layering {

namespace fs = std::filesystem;

/// One include that breaks the order: `from` includes `to` (both relative to kiln/).
struct Violation {
  std::string from;
  std::string to;
  std::string why;
};

/// The rank of layer folder `folder` ("base" for kiln/detail and error.hpp), or -1 where the
/// folder is not in the order.
inline int layer_rank(std::string_view folder) {
  struct Layer {
    std::string_view name;
    int rank;
  };
  static constexpr std::array<Layer, 10> layers{{{"base", 0},
                                                 {"dims", 1},
                                                 {"device", 2},
                                                 {"gen", 3},
                                                 {"jit", 4},
                                                 {"rt", 5},
                                                 {"prof", 6},
                                                 {"factory", 7},
                                                 {"ops", 8},
                                                 {"umbrella", 9}}};
  for (const Layer& l : layers) {
    if (l.name == folder) return l.rank;
  }
  return -1;
}

/// The layer of `relative` (a path under kiln/): its first folder, "base" for detail/ and the
/// top-level error.hpp, "umbrella" for the other top-level headers.
inline std::string layer_of(const fs::path& relative) {
  const std::string first = relative.begin()->string();
  if (std::next(relative.begin()) == relative.end()) {
    return first == "error.hpp" ? "base" : "umbrella";
  }
  return first == "detail" ? "base" : first;
}

/// Whether `relative` lies in the detail/ folder of a layer (jit/detail/...), not kiln/detail/.
inline bool in_layer_detail(const fs::path& relative) {
  auto it = relative.begin();
  if (it == relative.end() || ++it == relative.end()) return false;
  return it->string() == "detail" && std::next(it) != relative.end();
}

/// The kiln headers `file` includes, relative to `kiln_dir`: quoted includes resolved
/// against the file's folder, and "kiln/..." or <kiln/...> against the include root.
inline std::vector<fs::path> kiln_includes(const fs::path& kiln_dir, const fs::path& file) {
  static const std::regex include_line(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  std::vector<fs::path> out;
  std::ifstream in(file);
  std::string line;
  std::smatch m;
  const fs::path root = fs::weakly_canonical(kiln_dir);
  while (std::getline(in, line)) {
    if (!std::regex_search(line, m, include_line)) continue;
    const std::string name = m[2].str();
    std::vector<fs::path> candidates;
    if (m[1].str() == "\"") candidates.push_back(file.parent_path() / name);
    candidates.push_back(root.parent_path() / name);
    for (const fs::path& c : candidates) {
      std::error_code ec;
      if (!fs::is_regular_file(c, ec)) continue;
      const fs::path rel = fs::weakly_canonical(c).lexically_relative(root);
      if (!rel.empty() && rel.begin()->string() != "..") out.push_back(rel);
      break;
    }
  }
  return out;
}

/// Every include under `kiln_dir` (the include/kiln folder) that breaks the layer order.
inline std::vector<Violation> check_include_layers(const fs::path& kiln_dir) {
  std::vector<Violation> out;
  const fs::path root = fs::weakly_canonical(kiln_dir);
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const fs::path from = entry.path().lexically_relative(root);
    const std::string from_layer = layer_of(from);
    if (from_layer == "umbrella") continue;
    const int from_rank = layer_rank(from_layer);
    if (from_rank < 0) {
      out.push_back({from.string(), "", "folder " + from_layer + " is not in the layer order"});
      continue;
    }
    for (const fs::path& to : kiln_includes(root, entry.path())) {
      const std::string to_layer = layer_of(to);
      const int to_rank = layer_rank(to_layer);
      std::string why;
      if (to_rank < 0) {
        why = "folder " + to_layer + " is not in the layer order";
      } else if (to_rank > from_rank) {
        why = "upward: " + from_layer + " is below " + to_layer;
      } else if (to_layer != from_layer && in_layer_detail(to)) {
        why = "into the detail/ of " + to_layer;
      }
      if (!why.empty()) out.push_back({from.string(), to.string(), why});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Violation& a, const Violation& b) { return a.from + a.to < b.from + b.to; });
  return out;
}

}  // namespace kiln_test::layering
