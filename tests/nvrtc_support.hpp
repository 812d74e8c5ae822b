#pragma once
// What the NVRTC tests share: reading a test's kernel source, compiling a source with
// NVRTC against kiln's include directory, and compiling a program for every NVIDIA target
// kiln supports with the usual checks (no GPU needed).

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/jit/compiler.hpp"
#include "kiln/jit/kernel_cache.hpp"

#include "kiln/jit/nvrtc.hpp"
#include "kiln/jit/resources.hpp"
#include "support.hpp"

namespace kiln_test {

/// The bytes of `path`; fails the test when it cannot be read.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// `source`, named `name` in messages, compiled for `arch` ("sm_90") in C++`std`.
inline kiln::jit::NvrtcOutput nvrtc(const std::string& source, const std::string& name,
                                    const std::string& arch, int std) {
  return kiln::jit::nvrtc_compile(source, name,
                                  {"--gpu-architecture=" + arch, "-std=c++" + std::to_string(std),
                                   std::string("-I") + KILN_TEST_INCLUDE_DIR});
}

/// `program` compiled by kiln's NVRTC backend for sm_80, sm_86, sm_89 and sm_90, each
/// checked: a binary, the entry point `entry` in its PTX, no warning in the log, and no
/// local memory (none in the PTX, and no register spills where ptxas allocates the
/// registers under the kernel's launch bounds; with `spills` Spills::report, spills are
/// reported as warnings instead); and, with `through_cache`, for sm_90 the same PTX where the
/// kernel cache compiles it (every file handed to NVRTC in memory; a test of many kinds of config
/// of one kernel needs it once). The PTX of each, for checks of the caller's own.
enum class Spills { fail, report };
inline std::vector<std::string> compile_for_nvidia_targets(const kiln::jit::Program& program,
                                                           const std::string& entry,
                                                           bool through_cache = true,
                                                           Spills spills = Spills::fail) {
  const auto& compiler = kiln::jit::compiler_for("sm_90");
  std::vector<std::string> ptx;
  for (std::string arch : {"sm_80", "sm_86", "sm_89", "sm_90"}) {
    CAPTURE(arch);
    kiln::jit::Options o;
    o.target = arch;
    o.extra.push_back(kiln::jit::resource_usage_flag);
    const kiln::jit::Binary b = compiler.compile(program, o);
    CHECK_FALSE(b.code.empty());
    CHECK(b.ptx.find(".entry " + entry) != std::string::npos);
    CHECK_MESSAGE(b.log.find("warning") == std::string::npos, b.log);
    CHECK(b.ptx.find(".local") == std::string::npos);
    const auto resources = kiln::jit::kernel_resources(b);
    CHECK_FALSE(resources.empty());
    for (const auto& k : resources) {
      CAPTURE(k.name);
      if (spills == Spills::fail) {
        CHECK(k.spill_store_bytes == 0);
        CHECK(k.stack_bytes == 0);
      } else {
        WARN_MESSAGE(k.spill_store_bytes == 0,
                     (arch + " " + k.name + " spills " + std::to_string(k.spill_store_bytes) +
                      " bytes a thread"));
      }
    }
    ptx.push_back(b.ptx);
  }
  if (!through_cache) {
    return ptx;
  }
  // The kernel cache hands NVRTC every file in memory (resolve_includes): the same PTX.
  kiln::jit::Options o;
  o.target = "sm_90";
  kiln::jit::DiskCacheConfig memory_only;
  memory_only.enabled = false;
  kiln::jit::KernelCache cache(memory_only);
  CHECK(cache.get(program, o)->ptx == ptx.back());
  return ptx;
}

#ifdef KILN_TEST_HIP_CLANG
/// `program` (its source written as `file`, its last header as spec.hpp, in dir/`entry`)
/// compiled for gfx942 by clang's HIP mode, the front end of hipRTC: it compiles with no
/// warning (-Werror) and the object holds the kernel `entry` (its `entry.kd` descriptor).
inline void compile_for_gfx942(const kiln::jit::Program& program, const std::string& file,
                               const std::string& entry, const TempDir& dir) {
  dir.write(entry + "/spec.hpp", program.headers.back().contents);
  dir.write(entry + "/" + file, program.source);
  const auto base = dir.path() / entry;
  const std::string cmd = std::string(KILN_TEST_HIP_CLANG) +
                          " -x hip --offload-arch=gfx942 -nogpulib -nogpuinc --cuda-device-only"
                          " --no-gpu-bundle-output -O2 -std=c++17 -Wall -Wextra -Werror -I" +
                          KILN_TEST_INCLUDE_DIR + " -c " + (base / file).string() + " -o " +
                          (base / "k.o").string() + " > " + (base / "log.txt").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string log = read_file((base / "log.txt").string());
  CAPTURE(log);
  CHECK(rc == 0);
  CHECK(read_file((base / "k.o").string()).find(entry + ".kd") != std::string::npos);
}
#endif

}  // namespace kiln_test
