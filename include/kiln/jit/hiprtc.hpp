#pragma once
/// hipRTC, loaded at run time: libhiprtc.so.7, .6 (ROCm 6 and later, which know gfx942),
/// or the library KILN_HIPRTC_LIBRARY names. kiln declares the few entry points
/// it uses itself, so building needs no ROCm headers.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "../detail/dynamic_library.hpp"
#include "../error.hpp"
#include "compile_error.hpp"
#include "program.hpp"

namespace kiln::jit {

namespace hiprtc {
// The hipRTC C API (hiprtc.h), as kiln uses it.
using Result = int;
using Program = struct HiprtcProgramOpaque*;
inline constexpr Result success = 0;
using VersionFn = Result (*)(int*, int*);
using ErrorStringFn = const char* (*)(Result);
using CreateFn = Result (*)(Program*, const char*, const char*, int, const char**, const char**);
using DestroyFn = Result (*)(Program*);
using CompileFn = Result (*)(Program, int, const char**);
using SizeFn = Result (*)(Program, std::size_t*);
using GetFn = Result (*)(Program, char*);
using AddNameFn = Result (*)(Program, const char*);
using LoweredFn = Result (*)(Program, const char*, const char**);
}  // namespace hiprtc

/// The hipRTC entry points kiln uses, resolved once per process.
class HiprtcApi {
 public:
  /// The library names tried, in order, when KILN_HIPRTC_LIBRARY is not set.
  static std::vector<std::string> candidates() {
    // ROCm 6 and later ship hipRTC as its own library. (ROCm 5's libamdhip64 held it, but
    // predates gfx942, so kiln does not look there.)
    return {"libhiprtc.so.7",
            "libhiprtc.so.6",
            "libhiprtc.so",
            "/opt/rocm/lib/libhiprtc.so.7",
            "/opt/rocm/lib/libhiprtc.so.6",
            "/opt/rocm/lib/libhiprtc.so"};
  }
  /// The process-wide hipRTC; loads it on first use. Throws LibraryError if it is missing.
  static const HiprtcApi& get() {
    static const HiprtcApi api;
    return api;
  }

  hiprtc::VersionFn version;
  hiprtc::ErrorStringFn get_error_string;
  hiprtc::CreateFn create_program;
  hiprtc::DestroyFn destroy_program;
  hiprtc::CompileFn compile_program;
  hiprtc::SizeFn get_program_log_size;
  hiprtc::GetFn get_program_log;
  hiprtc::SizeFn get_code_size;
  hiprtc::GetFn get_code;
  hiprtc::AddNameFn add_name_expression;
  hiprtc::LoweredFn get_lowered_name;

  std::pair<int, int> version_pair() const { return {major_, minor_}; }
  const std::string& path() const { return lib_.path(); }

  void check(hiprtc::Result result, const char* what) const {
    if (result != hiprtc::success) {
      throw Error(std::string("kiln: hipRTC ") + what + " failed: " + get_error_string(result));
    }
  }

 private:
  HiprtcApi()
      : lib_(::kiln::detail::DynamicLibrary::open_first("hipRTC (libhiprtc.so, from ROCm)",
                                                        candidates(), "KILN_HIPRTC_LIBRARY")) {
    version = lib_.get<hiprtc::VersionFn>("hiprtcVersion");
    get_error_string = lib_.get<hiprtc::ErrorStringFn>("hiprtcGetErrorString");
    create_program = lib_.get<hiprtc::CreateFn>("hiprtcCreateProgram");
    destroy_program = lib_.get<hiprtc::DestroyFn>("hiprtcDestroyProgram");
    compile_program = lib_.get<hiprtc::CompileFn>("hiprtcCompileProgram");
    get_program_log_size = lib_.get<hiprtc::SizeFn>("hiprtcGetProgramLogSize");
    get_program_log = lib_.get<hiprtc::GetFn>("hiprtcGetProgramLog");
    get_code_size = lib_.get<hiprtc::SizeFn>("hiprtcGetCodeSize");
    get_code = lib_.get<hiprtc::GetFn>("hiprtcGetCode");
    add_name_expression = lib_.get<hiprtc::AddNameFn>("hiprtcAddNameExpression");
    get_lowered_name = lib_.get<hiprtc::LoweredFn>("hiprtcGetLoweredName");
    check(version(&major_, &minor_), "hiprtcVersion");
  }

  ::kiln::detail::DynamicLibrary lib_;
  int major_ = 0;
  int minor_ = 0;
};

/// Compiles `program` with hipRTC; `flags` as Options::hiprtc_flags() makes them.
/// Throws CompileError, with the log and the failing lines, when it does not compile.
inline Binary hiprtc_compile(const Program& program, const std::vector<std::string>& flags) {
  const HiprtcApi& api = HiprtcApi::get();
  std::vector<const char*> texts, names, argv;
  for (const auto& h : program.headers) {
    texts.push_back(h.contents.c_str());
    names.push_back(h.name.c_str());
  }
  for (const auto& f : flags) argv.push_back(f.c_str());

  hiprtc::Program prog = nullptr;
  api.check(api.create_program(&prog, program.source.c_str(), program.name.c_str(),
                               int(texts.size()), texts.data(), names.data()),
            "hiprtcCreateProgram");
  struct Destroy {
    const HiprtcApi& api;
    hiprtc::Program& prog;
    ~Destroy() { api.destroy_program(&prog); }
  } destroy{api, prog};
  for (const auto& e : program.name_expressions) {
    api.check(api.add_name_expression(prog, e.c_str()), "hiprtcAddNameExpression");
  }
  hiprtc::Result compiled = api.compile_program(prog, int(argv.size()), argv.data());

  Binary out;
  std::size_t log_size = 0;
  api.check(api.get_program_log_size(prog, &log_size), "hiprtcGetProgramLogSize");
  out.log.resize(log_size);
  if (log_size > 0) api.check(api.get_program_log(prog, out.log.data()), "hiprtcGetProgramLog");
  while (!out.log.empty() && (out.log.back() == '\0' || out.log.back() == '\n')) out.log.pop_back();
  if (compiled != hiprtc::success) {
    throw CompileError(
        describe_compile_failure("hipRTC", program.name, program.source, program.headers, flags,
                                 out.log, api.get_error_string(compiled)),
        out.log);
  }
  std::size_t code_size = 0;
  api.check(api.get_code_size(prog, &code_size), "hiprtcGetCodeSize");
  out.code.resize(code_size);
  api.check(api.get_code(prog, out.code.data()), "hiprtcGetCode");
  for (const auto& e : program.name_expressions) {
    const char* lowered = nullptr;
    api.check(api.get_lowered_name(prog, e.c_str(), &lowered), "hiprtcGetLoweredName");
    out.lowered_names.emplace_back(e, lowered);
  }
  auto [major, minor] = api.version_pair();
  out.compiler = "hiprtc";
  out.compiler_version = std::to_string(major) + "." + std::to_string(minor);
  return out;
}

}  // namespace kiln::jit
