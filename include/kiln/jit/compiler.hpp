#pragma once
/// One interface, two backends: NVRTC for NVIDIA targets, hipRTC for AMD ones.

#include <chrono>
#include <string>
#include <vector>

#include "cuda_paths.hpp"
#include "hiprtc.hpp"
#include "nvrtc.hpp"
#include "options.hpp"
#include "program.hpp"
#include "sources.hpp"

namespace kiln::jit {

/// A run-time compiler backend.
class Compiler {
 public:
  virtual ~Compiler() = default;
  /// "nvrtc" or "hiprtc".
  virtual std::string name() const = 0;
  /// The library's version ("13.0"); loads it (throws LibraryError if missing).
  virtual std::string version() const = 0;
  /// What identifies the compiler exactly, for cache keys; by default its version.
  /// (NVRTC answers without loading the library, so that a disk-cache hit needs no NVRTC.)
  virtual std::string identity() const { return version(); }
  /// Every flag the backend passes for `options` (target resolved), kiln's include
  /// directory and the toolkit's included.
  virtual std::vector<std::string> flags(const Options& options) const = 0;
  /// Compiles; throws CompileError with the failing lines when the program does not compile.
  virtual Binary compile(const Program& program, const Options& options) const = 0;
  /// Whether the compiler takes a program's files as in-memory headers named by their
  /// paths, so that the kernel cache can hand it every file it resolved (resolve_includes)
  /// and nothing is read from disk behind its back.
  virtual bool compiles_in_memory() const { return false; }
};

/// NVRTC: sm_80, sm_86, sm_89, sm_90, sm_90a.
class NvrtcCompiler final : public Compiler {
 public:
  std::string name() const override { return "nvrtc"; }
  std::string version() const override {
    auto [major, minor] = NvrtcApi::get().version_pair();
    return std::to_string(major) + "." + std::to_string(minor);
  }
  std::string identity() const override {
    const std::string& id = nvrtc_library_identity();
    return id.empty() ? version() : id;
  }
  std::vector<std::string> flags(const Options& options) const override {
    auto f = options.nvrtc_flags();
    f.push_back("-I" + kiln_include_dir().string());
    auto cuda = find_cuda_include_dir(nvrtc_library_path());
    if (!cuda.empty()) f.push_back("-I" + cuda.string());
    return f;
  }
  Binary compile(const Program& program, const Options& options) const override {
    auto start = std::chrono::steady_clock::now();
    NvrtcOutput out = nvrtc_compile(program.source, program.name, flags(options), program.headers,
                                    program.name_expressions);
    Binary b;
    b.compiler = name();
    b.compiler_version = version();
    b.target = options.target;
    b.code.assign(out.cubin.begin(), out.cubin.end());
    b.ptx = std::move(out.ptx);
    b.log = std::move(out.log);
    b.lowered_names = std::move(out.lowered_names);
    b.compile_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return b;
  }
  /// NVRTC takes an in-memory header for an #include that spells its name, before it
  /// searches any directory.
  bool compiles_in_memory() const override { return true; }
};

/// hipRTC: gfx942.
class HiprtcCompiler final : public Compiler {
 public:
  std::string name() const override { return "hiprtc"; }
  std::string version() const override {
    auto [major, minor] = HiprtcApi::get().version_pair();
    return std::to_string(major) + "." + std::to_string(minor);
  }
  std::vector<std::string> flags(const Options& options) const override {
    auto f = options.hiprtc_flags();
    f.push_back("-I" + kiln_include_dir().string());
    return f;
  }
  Binary compile(const Program& program, const Options& options) const override {
    auto start = std::chrono::steady_clock::now();
    Binary b = hiprtc_compile(program, flags(options));
    b.target = options.target;
    b.compile_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return b;
  }
};

/// The backend that compiles for `target`.
inline const Compiler& compiler_for(const std::string& target) {
  static const NvrtcCompiler nvrtc;
  static const HiprtcCompiler hiprtc;
  if (is_amd_target(target)) return hiprtc;
  return nvrtc;
}

}  // namespace kiln::jit
