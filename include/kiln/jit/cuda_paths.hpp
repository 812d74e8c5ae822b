#pragma once
/// Finding the CUDA toolkit's include directory (cuda_fp16.h and friends), which NVRTC
/// needs for kernels that use CUDA's own headers.

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::jit {

/// The directories searched, in order: $CUDA_PATH/include, $CUDA_HOME/include,
/// /usr/local/cuda/include, then include/ beside the directory of `loaded_library_symbol`'s
/// library (the libnvrtc kiln loaded: <root>/lib64/libnvrtc.so -> <root>/include).
inline std::vector<std::filesystem::path> cuda_include_candidates(
    const void* loaded_library_symbol = nullptr) {
  namespace fs = std::filesystem;
  std::vector<fs::path> dirs;
  for (const char* var : {"CUDA_PATH", "CUDA_HOME"}) {
    if (const char* v = std::getenv(var); v && *v) dirs.push_back(fs::path(v) / "include");
  }
  dirs.emplace_back("/usr/local/cuda/include");
  Dl_info info{};
  if (loaded_library_symbol && ::dladdr(loaded_library_symbol, &info) && info.dli_fname) {
    std::error_code ec;
    fs::path lib = fs::weakly_canonical(fs::path(info.dli_fname), ec);
    for (fs::path dir = lib.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
      dirs.push_back(dir / "include");
      if (dirs.size() > 8) break;
    }
  }
  return dirs;
}

/// The first candidate directory that holds cuda_fp16.h, or an empty path.
inline std::filesystem::path find_cuda_include_dir(const void* loaded_library_symbol = nullptr) {
  std::error_code ec;
  for (const auto& dir : cuda_include_candidates(loaded_library_symbol)) {
    if (std::filesystem::exists(dir / "cuda_fp16.h", ec)) return dir;
  }
  return {};
}

}  // namespace kiln::jit
