#pragma once
/// Finding the CUDA toolkit's include directory (cuda_fp16.h and friends), which NVRTC
/// needs for kernels that use CUDA's own headers.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::jit {

/// The directories searched, in order: $CUDA_PATH/include, $CUDA_HOME/include,
/// /usr/local/cuda/include, then include/ in the directories above `library` (the libnvrtc
/// kiln uses: <root>/lib64/libnvrtc.so -> <root>/include).
inline std::vector<std::filesystem::path> cuda_include_candidates(
    const std::filesystem::path& library = {}) {
  namespace fs = std::filesystem;
  std::vector<fs::path> dirs;
  for (const char* var : {"CUDA_PATH", "CUDA_HOME"}) {
    if (const char* v = std::getenv(var); v && *v) dirs.push_back(fs::path(v) / "include");
  }
  dirs.emplace_back("/usr/local/cuda/include");
  if (library.has_parent_path()) {
    std::error_code ec;
    fs::path lib = fs::weakly_canonical(library, ec);
    for (fs::path dir = lib.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
      dirs.push_back(dir / "include");
      if (dirs.size() > 8) break;
    }
  }
  return dirs;
}

/// The first candidate directory that holds cuda_fp16.h, or an empty path.
inline std::filesystem::path find_cuda_include_dir(const std::filesystem::path& library = {}) {
  std::error_code ec;
  for (const auto& dir : cuda_include_candidates(library)) {
    if (std::filesystem::exists(dir / "cuda_fp16.h", ec)) return dir;
  }
  return {};
}

}  // namespace kiln::jit
