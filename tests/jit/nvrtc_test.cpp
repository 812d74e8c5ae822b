// The device headers and a typed kernel compiled by NVRTC for every NVIDIA target kiln
// supports. NVRTC needs no GPU, so this runs in CI.
#include <doctest/doctest.h>

#include <cstring>

#include "../nvrtc_support.hpp"
#include "kiln/jit/nvrtc.hpp"

namespace {

using kiln_test::read_file;

kiln::jit::NvrtcOutput compile(const std::string& source, const std::string& arch, int std) {
  return kiln_test::nvrtc(source, "typed_kernel.cu", arch, std);
}

// A cubin is an ELF file for machine EM_CUDA (190); kernels appear in its symbol names.
void check_cubin(const std::vector<char>& cubin, const std::vector<std::string>& kernels) {
  REQUIRE(cubin.size() > 64);
  CHECK(std::memcmp(cubin.data(),
                    "\x7f"
                    "ELF",
                    4) == 0);
  unsigned short machine = 0;
  std::memcpy(&machine, cubin.data() + 18, 2);
  CHECK(machine == 190);
  std::string bytes(cubin.begin(), cubin.end());
  for (const auto& k : kernels) CHECK_MESSAGE(bytes.find(k) != std::string::npos, k);
}

}  // namespace

TEST_CASE("NVRTC is found and reports its version") {
  auto [major, minor] = kiln::jit::NvrtcApi::get().version_pair();
  CHECK(major >= 12);
  CHECK(minor >= 0);
}

TEST_CASE("the typed kernel compiles for every NVIDIA target, C++17 and C++20") {
  const std::string source =
      read_file(std::string(KILN_SOURCE_DIR) + "/tests/device/typed_kernel.cu");
  for (std::string arch : {"sm_80", "sm_86", "sm_89", "sm_90"}) {
    for (int std : {17, 20}) {
      CAPTURE(arch);
      CAPTURE(std);
      auto out = compile(source, arch, std);
      CHECK(out.log.find("warning") == std::string::npos);
      CHECK(out.ptx.find(std::string(".target ") + arch) != std::string::npos);
      check_cubin(out.cubin,
                  {"kiln_typed_transpose", "kiln_typed_vector_copy", "kiln_typed_tile_helpers"});
    }
  }
}

TEST_CASE("the wide copy compiles to 16-byte loads and stores") {
  const std::string source =
      read_file(std::string(KILN_SOURCE_DIR) + "/tests/device/typed_kernel.cu");
  auto out = compile(source, "sm_90", 17);
  auto begin = out.ptx.find(".entry kiln_typed_vector_copy");
  REQUIRE(begin != std::string::npos);
  std::string body = out.ptx.substr(begin);
  CHECK(body.find("ld.global.v4.f32") != std::string::npos);
  CHECK(body.find("st.global.v4.f32") != std::string::npos);
}

// (half.hpp, mma.hpp and ldmatrix.hpp need CUDA's own headers on the include path, which
// this bare compile does not give; tests/device/mma_nvrtc_test.cpp compiles them.)
TEST_CASE("every device header compiles alone under NVRTC") {
  for (std::string header :
       {"kiln/device.hpp", "kiln/dims.hpp", "kiln/detail/portability.hpp", "kiln/device/thread.hpp",
        "kiln/device/warp.hpp", "kiln/dims/meta.hpp", "kiln/dims/dim.hpp", "kiln/dims/coords.hpp",
        "kiln/dims/layout.hpp", "kiln/dims/tensor.hpp", "kiln/dims/swizzle.hpp",
        "kiln/dims/compound_index.hpp", "kiln/dims/range.hpp", "kiln/dims/vector.hpp",
        "kiln/dims/algorithms.hpp", "kiln/dims/fold_rules.hpp", "kiln/device/block.hpp",
        "kiln/device/shared_memory.hpp", "kiln/device/async_copy.hpp"}) {
    CAPTURE(header);
    std::string source = "#include \"" + header + "\"\nextern \"C\" __global__ void k() {}\n";
    CHECK_NOTHROW(compile(source, "sm_90", 17));
  }
}

TEST_CASE("a dimension mix-up is a compile error under NVRTC too") {
  const std::string good =
      "#include \"kiln/device.hpp\"\nKILN_DIM(I);\nKILN_DIM(K);\n"
      "KILN_KERNEL void k(int* out) { *out = (I(1) + I(2)).get(); }\n";
  const std::string bad =
      "#include \"kiln/device.hpp\"\nKILN_DIM(I);\nKILN_DIM(K);\n"
      "KILN_KERNEL void k(int* out) { I i = I(1) + K(2); *out = i.get(); }\n";
  CHECK_NOTHROW(compile(good, "sm_90", 17));
  try {
    compile(bad, "sm_90", 17);
    FAIL("mixing I and K compiled");
  } catch (const kiln::CompileError& e) {
    CHECK(std::string(e.what()).find("typed_kernel.cu") != std::string::npos);
    CHECK(std::string(e.what()).find("sm_90") != std::string::npos);
    CHECK(e.log().find("error") != std::string::npos);
  }
}
