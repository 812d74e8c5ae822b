#pragma once
/// Loading kernel sources: from strings, or from files found on kiln's search path.

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <source_location>
#include <string>
#include <vector>

#include "../detail/posix_file.hpp"
#include "../error.hpp"
#include "embedded.hpp"
#include "paths.hpp"
#include "program.hpp"

namespace kiln::jit {

namespace detail {
/// The largest source or header kiln reads (a generated table of constants can be large;
/// anything past this is a mistake, and reading it would cost its size in memory).
inline constexpr std::uint64_t max_source_bytes = std::uint64_t(256) << 20;

/// Reads the regular file `path` into `out`; returns "" or why not ("not a regular file"
/// for a FIFO or device, which is never read, so it cannot hang or fill memory).
inline std::string read_source_file(const std::filesystem::path& path, std::string& out) {
  const int error = kiln::detail::read_regular_file(path, out, max_source_bytes);
  if (error == 0) return {};
  if (error == EINVAL) return "not a regular file (a FIFO or device?)";
  if (error == EFBIG) {
    return "larger than " + std::to_string(max_source_bytes >> 20) + " MiB, the most kiln reads";
  }
  return kiln::detail::errno_text(error);
}
inline bool read_file(const std::filesystem::path& path, std::string& out) {
  return read_source_file(path, out).empty();
}
}  // namespace detail

/// A kernel source: its name and text, and where it came from.
struct KernelSource {
  std::string name;
  std::string text;
  std::string origin;  ///< the file's path, or "embedded"
};

/// Finds kernel source `name` ("softmax.cu"): in each KILN_KERNEL_PATH directory, then
/// among the embedded sources, then in each of `also` (kiln::kernel passes the directory
/// of the source file that calls it), then in kiln's source-tree kernels/, then in the
/// installed share/kiln/kernels. An absolute or ./-relative path is read as it is. Throws
/// kiln::Error listing every place searched when it is nowhere.
inline KernelSource load_kernel_source(const std::string& name,
                                       const std::vector<std::filesystem::path>& also = {}) {
  namespace fs = std::filesystem;
  KernelSource src{name, {}, {}};
  fs::path p(name);
  if (p.is_absolute() || name.rfind("./", 0) == 0 || name.rfind("../", 0) == 0) {
    if (const std::string why = detail::read_source_file(p, src.text); !why.empty()) {
      throw Error("kiln: cannot read kernel source " + name + ": " + why);
    }
    src.origin = name;
    return src;
  }
  auto dirs = kernel_search_path();
  const size_t user_dirs = detail::split_path_list(std::getenv("KILN_KERNEL_PATH")).size();
  dirs.insert(dirs.begin() + std::ptrdiff_t(user_dirs), also.begin(), also.end());
  std::string searched;
  for (size_t i = 0; i <= dirs.size(); ++i) {
    if (i == user_dirs) {
      if (const auto* e = EmbeddedSources::find(name)) {
        src.text = std::string(*e);
        src.origin = "embedded";
        return src;
      }
      searched += "\n  (embedded sources)";
    }
    if (i == dirs.size()) break;
    fs::path file = dirs[i] / name;
    std::error_code ec;
    if (fs::is_regular_file(file, ec) && detail::read_file(file, src.text)) {
      src.origin = file.string();
      return src;
    }
    searched += "\n  " + dirs[i].string();
  }
  throw Error("kiln: kernel source '" + name + "' not found; searched:" + searched +
              "\nAdd its directory to KILN_KERNEL_PATH (colon-separated), or embed it with "
              "kiln_embed_sources() in CMake.");
}

/// The directory of the source file at `where`, for load_kernel_source's `also`: where
/// kiln::kernel and factory::Factory look for a kernel source beside the C++ file that
/// names it. None when the compiler recorded a relative path (CMake records absolute ones).
inline std::vector<std::filesystem::path> directory_of(const std::source_location& where) {
  std::filesystem::path file(where.file_name());
  if (!file.is_absolute()) return {};
  return {file.parent_path()};
}

/// A Program whose main file is kernel source `name`, found as load_kernel_source does.
inline Program program_from_file(const std::string& name,
                                 const std::vector<std::filesystem::path>& also = {}) {
  KernelSource s = load_kernel_source(name, also);
  return Program{s.name, std::move(s.text), {}, {}};
}

/// kiln's include directory (the one holding kiln/device.hpp) for kernels to #include:
/// $KILN_INCLUDE_DIR, else the tree this header belongs to, else the embedded copy.
/// Throws kiln::Error when there is none.
inline std::filesystem::path kiln_include_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("KILN_INCLUDE_DIR"); env && *env) {
    if (!fs::exists(fs::path(env) / "kiln" / "device.hpp", ec)) {
      throw Error(std::string("kiln: KILN_INCLUDE_DIR=") + env +
                  " does not hold kiln/device.hpp; point it at kiln's include directory");
    }
    return env;
  }
  fs::path here = detail::this_include_dir();
  if (fs::exists(here / "kiln" / "device.hpp", ec)) return here;
  if (EmbeddedSources::find("kiln/device.hpp")) return EmbeddedSources::mirror_dir();
  throw Error("kiln: cannot find kiln's device headers (kiln/device.hpp) at " + here.string() +
              "; set KILN_INCLUDE_DIR, or embed them with kiln_embed_sources(... KILN_HEADERS)");
}

}  // namespace kiln::jit
