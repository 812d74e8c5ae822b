#pragma once
/// NVRTC, loaded at run time: libnvrtc.so.13, then libnvrtc.so.12 (or the library that
/// KILN_NVRTC_LIBRARY names). No link-time dependency on NVRTC.

#include <nvrtc.h>

#include <cstdlib>
#include <filesystem>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../detail/dynamic_library.hpp"
#include "../error.hpp"
#include "compile_error.hpp"
#include "program.hpp"

namespace kiln::jit {

/// The NVRTC library kiln loads, found without loading it: $KILN_NVRTC_LIBRARY; else the
/// first libnvrtc.so.13 or libnvrtc.so.12 in the directories of LD_LIBRARY_PATH,
/// $CUDA_PATH/lib64, $CUDA_HOME/lib64, /usr/local/cuda/lib64; else the bare name, for
/// the system's loader to find.
inline const std::string& nvrtc_library_path() {
  static const std::string path = [] {
    namespace fs = std::filesystem;
    if (const char* forced = std::getenv("KILN_NVRTC_LIBRARY"); forced && *forced)
      return std::string(forced);
    std::vector<fs::path> dirs;
    if (const char* ld = std::getenv("LD_LIBRARY_PATH")) {
      std::string list(ld);
      for (size_t start = 0, end; start <= list.size(); start = end + 1) {
        end = list.find(':', start);
        if (end == std::string::npos) end = list.size();
        if (end > start) dirs.emplace_back(list.substr(start, end - start));
      }
    }
    for (const char* var : {"CUDA_PATH", "CUDA_HOME"}) {
      if (const char* v = std::getenv(var); v && *v) dirs.push_back(fs::path(v) / "lib64");
    }
    dirs.emplace_back("/usr/local/cuda/lib64");
    for (const char* name : {"libnvrtc.so.13", "libnvrtc.so.12"}) {
      for (const auto& d : dirs) {
        std::error_code ec;
        if (fs::exists(d / name, ec)) return (d / name).string();
      }
    }
    return std::string("libnvrtc.so.13");
  }();
  return path;
}

/// What identifies the NVRTC kiln uses, for cache keys, without loading it: the library
/// file's resolved path (which carries the full version, libnvrtc.so.13.0.88), size and
/// modification time. Empty when the library was not found on disk (the key then uses
/// the version NVRTC reports, which needs loading it).
inline const std::string& nvrtc_library_identity() {
  static const std::string id = [] {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p(nvrtc_library_path());
    if (!p.has_parent_path() || !fs::exists(p, ec)) return std::string();
    fs::path real = fs::canonical(p, ec);
    if (ec) return std::string();
    auto size = fs::file_size(real, ec);
    auto time = fs::last_write_time(real, ec).time_since_epoch().count();
    return real.string() + ":" + std::to_string(size) + ":" + std::to_string(time);
  }();
  return id;
}

/// The NVRTC entry points kiln uses, resolved once per process.
class NvrtcApi {
 public:
  /// The process-wide NVRTC; loads it on first use. Throws LibraryError if it is missing.
  static const NvrtcApi& get() {
    static const NvrtcApi api;
    return api;
  }

  decltype(&::nvrtcGetErrorString) get_error_string;
  decltype(&::nvrtcVersion) version;
  decltype(&::nvrtcCreateProgram) create_program;
  decltype(&::nvrtcDestroyProgram) destroy_program;
  decltype(&::nvrtcCompileProgram) compile_program;
  decltype(&::nvrtcGetProgramLogSize) get_program_log_size;
  decltype(&::nvrtcGetProgramLog) get_program_log;
  decltype(&::nvrtcGetPTXSize) get_ptx_size;
  decltype(&::nvrtcGetPTX) get_ptx;
  decltype(&::nvrtcGetCUBINSize) get_cubin_size;
  decltype(&::nvrtcGetCUBIN) get_cubin;
  decltype(&::nvrtcAddNameExpression) add_name_expression;
  decltype(&::nvrtcGetLoweredName) get_lowered_name;

  /// NVRTC's version, as {major, minor}.
  std::pair<int, int> version_pair() const { return {major_, minor_}; }
  /// The path (or name) the library was loaded from.
  const std::string& path() const { return lib_.path(); }

  /// Throws kiln::Error naming `what` when `result` is not NVRTC_SUCCESS.
  void check(nvrtcResult result, const char* what) const {
    if (result != NVRTC_SUCCESS) {
      throw Error(std::string("kiln: NVRTC ") + what + " failed: " + get_error_string(result));
    }
  }

 private:
  NvrtcApi()
      : lib_(::kiln::detail::DynamicLibrary::open_first(
            "NVRTC (libnvrtc.so.13 or libnvrtc.so.12, from the CUDA toolkit)",
            {nvrtc_library_path(), "libnvrtc.so.12"}, "KILN_NVRTC_LIBRARY")) {
    get_error_string = lib_.get<decltype(get_error_string)>("nvrtcGetErrorString");
    version = lib_.get<decltype(version)>("nvrtcVersion");
    create_program = lib_.get<decltype(create_program)>("nvrtcCreateProgram");
    destroy_program = lib_.get<decltype(destroy_program)>("nvrtcDestroyProgram");
    compile_program = lib_.get<decltype(compile_program)>("nvrtcCompileProgram");
    get_program_log_size = lib_.get<decltype(get_program_log_size)>("nvrtcGetProgramLogSize");
    get_program_log = lib_.get<decltype(get_program_log)>("nvrtcGetProgramLog");
    get_ptx_size = lib_.get<decltype(get_ptx_size)>("nvrtcGetPTXSize");
    get_ptx = lib_.get<decltype(get_ptx)>("nvrtcGetPTX");
    get_cubin_size = lib_.get<decltype(get_cubin_size)>("nvrtcGetCUBINSize");
    get_cubin = lib_.get<decltype(get_cubin)>("nvrtcGetCUBIN");
    add_name_expression = lib_.get<decltype(add_name_expression)>("nvrtcAddNameExpression");
    get_lowered_name = lib_.get<decltype(get_lowered_name)>("nvrtcGetLoweredName");
    check(version(&major_, &minor_), "nvrtcVersion");
  }

  ::kiln::detail::DynamicLibrary lib_;
  int major_ = 0;
  int minor_ = 0;
};

/// What one NVRTC compile produced.
struct NvrtcOutput {
  std::vector<char> cubin;  ///< the binary for a real architecture (sm_XX)
  std::string ptx;          ///< the PTX it was assembled from
  std::string log;          ///< warnings (empty when there were none)
  /// {name expression, lowered (mangled) name} for each requested expression.
  std::vector<std::pair<std::string, std::string>> lowered_names;
};

/// Compiles `source` (named `name` in messages) with NVRTC.
///
/// Parameters:
///   options           NVRTC options, e.g. "--gpu-architecture=sm_90", "-std=c++17", "-I..."
///   headers           in-memory headers the source may #include by name
///   name_expressions  expressions whose lowered names to report ("&kernel<float>")
///
/// Throws CompileError, with the log, when the source does not compile.
inline NvrtcOutput nvrtc_compile(const std::string& source, const std::string& name,
                                 const std::vector<std::string>& options,
                                 const std::vector<NamedSource>& headers = {},
                                 const std::vector<std::string>& name_expressions = {}) {
  const NvrtcApi& api = NvrtcApi::get();
  std::vector<const char*> header_texts, header_names, option_ptrs;
  for (const auto& h : headers) {
    header_texts.push_back(h.contents.c_str());
    header_names.push_back(h.name.c_str());
  }
  for (const auto& o : options) option_ptrs.push_back(o.c_str());

  nvrtcProgram prog = nullptr;
  api.check(api.create_program(&prog, source.c_str(), name.c_str(), int(headers.size()),
                               header_texts.data(), header_names.data()),
            "nvrtcCreateProgram");
  struct Destroy {
    const NvrtcApi& api;
    nvrtcProgram& prog;
    ~Destroy() { api.destroy_program(&prog); }
  } destroy{api, prog};

  for (const auto& e : name_expressions)
    api.check(api.add_name_expression(prog, e.c_str()), "nvrtcAddNameExpression");
  nvrtcResult compiled = api.compile_program(prog, int(option_ptrs.size()), option_ptrs.data());

  NvrtcOutput out;
  size_t log_size = 0;
  api.check(api.get_program_log_size(prog, &log_size), "nvrtcGetProgramLogSize");
  out.log.resize(log_size);
  if (log_size > 0) api.check(api.get_program_log(prog, out.log.data()), "nvrtcGetProgramLog");
  while (!out.log.empty() && (out.log.back() == '\0' || out.log.back() == '\n')) out.log.pop_back();

  if (compiled != NVRTC_SUCCESS) {
    throw CompileError(describe_compile_failure("NVRTC", name, source, headers, options, out.log,
                                                api.get_error_string(compiled)),
                       out.log);
  }

  size_t ptx_size = 0;
  api.check(api.get_ptx_size(prog, &ptx_size), "nvrtcGetPTXSize");
  out.ptx.resize(ptx_size);
  api.check(api.get_ptx(prog, out.ptx.data()), "nvrtcGetPTX");
  while (!out.ptx.empty() && out.ptx.back() == '\0') out.ptx.pop_back();

  size_t cubin_size = 0;
  // A virtual target (compute_XX) has PTX only; NVRTC then reports no CUBIN.
  if (api.get_cubin_size(prog, &cubin_size) == NVRTC_SUCCESS && cubin_size > 0) {
    out.cubin.resize(cubin_size);
    api.check(api.get_cubin(prog, out.cubin.data()), "nvrtcGetCUBIN");
  }
  for (const auto& e : name_expressions) {
    const char* lowered = nullptr;
    api.check(api.get_lowered_name(prog, e.c_str(), &lowered), "nvrtcGetLoweredName");
    out.lowered_names.emplace_back(e, lowered);
  }
  return out;
}

}  // namespace kiln::jit
