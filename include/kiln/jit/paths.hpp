#pragma once
/// Where kiln finds its own device headers and the kernel sources it compiles.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::jit {

namespace detail {
/// include/ of the kiln tree this header belongs to (source tree or install prefix).
/// __FILE__ is the path the compiler followed, which may hold ".." (include/kiln/factory/
/// ../jit/paths.hpp when reached through "../jit/..."): normalize it before walking up.
inline std::filesystem::path this_include_dir() {
  return std::filesystem::path(__FILE__)
      .lexically_normal()
      .parent_path()
      .parent_path()
      .parent_path();
}
inline std::vector<std::filesystem::path> split_path_list(const char* value) {
  std::vector<std::filesystem::path> out;
  if (!value) return out;
  std::string s(value);
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}
}  // namespace detail

/// The directories searched for kernel source files, in order: each entry of
/// KILN_KERNEL_PATH (colon-separated), the kernels/ directory of kiln's source tree
/// (when kiln is used from one), and the installed share/kiln/kernels.
/// (Embedded sources, see embedded.hpp, are searched after KILN_KERNEL_PATH.)
inline std::vector<std::filesystem::path> kernel_search_path() {
  auto dirs = detail::split_path_list(std::getenv("KILN_KERNEL_PATH"));
  const auto root = detail::this_include_dir().parent_path();
  dirs.push_back(root / "kernels");
  dirs.push_back(root / "share" / "kiln" / "kernels");
  return dirs;
}

}  // namespace kiln::jit
