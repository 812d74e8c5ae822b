#pragma once
/// Compile options, the same for every backend; each backend turns them into its own flags.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"

namespace kiln::jit {

/// The GPU targets kiln compiles for.
inline const std::vector<std::string>& supported_targets() {
  static const std::vector<std::string> targets = {"sm_80", "sm_86",  "sm_89",
                                                   "sm_90", "sm_90a", "gfx942"};
  return targets;
}

/// Whether `target` is an AMD target (compiled by hipRTC) rather than an NVIDIA one.
inline bool is_amd_target(const std::string& target) {
  return target.rfind("gfx", 0) == 0;
}

/// How to compile a program.
struct Options {
  /// sm_80, sm_86, sm_89, sm_90, sm_90a or gfx942; empty: the current device's.
  std::string target;
  /// The C++ standard of the kernel source: 17 or 20. The default, 17, is what every
  /// compiler kiln drives accepts (NVRTC 12 and 13, hipRTC, clang's HIP mode) and what
  /// the shipped kernels are written in; kiln's device headers compile under both, so
  /// set 20 to use C++20 in your own kernel sources (host code is C++20 either way).
  int cxx_standard = 17;
  /// Line information for profilers (-lineinfo).
  bool line_info = false;
  /// Device debug information, optimizations off (-G / -O0 -g).
  bool debug = false;
  /// Fast, less exact math (--use_fast_math / -ffast-math).
  bool fast_math = false;
  /// Preprocessor definitions: {name, value}; an empty value defines the name alone.
  std::vector<std::pair<std::string, std::string>> defines{};
  /// Directories searched for #include files (after in-memory headers).
  std::vector<std::string> include_dirs{};
  /// The most registers a thread may use (0: the compiler's choice).
  int max_registers = 0;
  /// Further backend flags, passed as they are.
  std::vector<std::string> extra{};

  /// Throws kiln::Error naming the first option that kiln cannot use.
  void validate() const {
    if (!target.empty() && std::find(supported_targets().begin(), supported_targets().end(),
                                     target) == supported_targets().end()) {
      std::string list;
      for (const auto& t : supported_targets()) list += (list.empty() ? "" : ", ") + t;
      throw Error("kiln: unsupported target '" + target + "'; kiln compiles for " + list);
    }
    if (cxx_standard != 17 && cxx_standard != 20) {
      throw Error("kiln: unsupported C++ standard " + std::to_string(cxx_standard) +
                  "; use 17 or 20");
    }
    if (max_registers < 0 || max_registers > 255) {
      throw Error("kiln: max_registers " + std::to_string(max_registers) +
                  " is out of range; use 0 (no cap) or 1..255");
    }
    for (const auto& [name, value] : defines) {
      bool ok = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
      for (char c : name)
        ok = ok && (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9'));
      if (!ok) throw Error("kiln: define '" + name + "' is not a valid macro name");
      (void)value;
    }
  }

  /// The flags for NVRTC (target must be an NVIDIA one).
  std::vector<std::string> nvrtc_flags() const {
    std::vector<std::string> f = {"--gpu-architecture=" + target,
                                  "-std=c++" + std::to_string(cxx_standard)};
    if (line_info) f.push_back("-lineinfo");
    if (debug) f.push_back("-G");
    if (fast_math) f.push_back("--use_fast_math");
    if (max_registers > 0) f.push_back("--maxrregcount=" + std::to_string(max_registers));
    append_common(f);
    return f;
  }

  /// The flags for hipRTC (target must be an AMD one).
  std::vector<std::string> hiprtc_flags() const {
    std::vector<std::string> f = {"--offload-arch=" + target,
                                  "-std=c++" + std::to_string(cxx_standard)};
    if (debug) f.insert(f.end(), {"-O0", "-g"});
    if (line_info && !debug) f.push_back("-gline-tables-only");
    if (fast_math) f.push_back("-ffast-math");
    if (max_registers > 0) {
      // hipRTC has no per-thread register cap flag; a cap is expressed in the kernel
      // (__launch_bounds__), so refuse it rather than ignore it.
      throw Error("kiln: max_registers is not supported for " + target +
                  " (hipRTC); use __launch_bounds__ in the kernel instead");
    }
    append_common(f);
    return f;
  }

 private:
  void append_common(std::vector<std::string>& f) const {
    for (const auto& [name, value] : defines)
      f.push_back("-D" + name + (value.empty() ? "" : "=" + value));
    for (const auto& dir : include_dirs) f.push_back("-I" + dir);
    f.insert(f.end(), extra.begin(), extra.end());
  }
};

}  // namespace kiln::jit
