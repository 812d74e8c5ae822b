// The shared-memory, async-copy and block headers compiled by NVRTC: the pipelined kernel
// of tests/device/async_kernel.cu for sm_80 and sm_90 (C++17 and C++20) must hold real
// cp.async instructions, and storage_size of a dynamic tensor must not compile.
#include <doctest/doctest.h>

#include "../nvrtc_support.hpp"
#include "kiln/jit/nvrtc.hpp"

namespace {

using kiln_test::read_file;

kiln::jit::NvrtcOutput compile(const std::string& source, const std::string& arch, int std) {
  return kiln_test::nvrtc(source, "async_kernel.cu", arch, std);
}

}  // namespace

TEST_CASE("the pipelined kernel compiles to cp.async on sm_80 and sm_90") {
  const std::string source =
      read_file(std::string(KILN_SOURCE_DIR) + "/tests/device/async_kernel.cu");
  for (std::string arch : {"sm_80", "sm_90"}) {
    for (int std : {17, 20}) {
      CAPTURE(arch);
      CAPTURE(std);
      auto out = compile(source, arch, std);
      CHECK(out.log.find("warning") == std::string::npos);
      const auto begin = out.ptx.find(".entry kiln_async_tile_sum");
      REQUIRE(begin != std::string::npos);
      const std::string body = out.ptx.substr(begin);
      CHECK(body.find("cp.async.cg.shared.global") != std::string::npos);
      CHECK(body.find("cp.async.commit_group") != std::string::npos);
      CHECK(body.find("cp.async.wait_group") != std::string::npos);
      CHECK(body.find(".maxntid 128") != std::string::npos);    // KILN_LAUNCH_BOUNDS
      CHECK(body.find("shfl.sync.bfly") != std::string::npos);  // block_sum's warp step
      CHECK(body.find("bar.sync") != std::string::npos);
    }
  }
}

TEST_CASE("before sm_80 the same kernel compiles to plain copies") {
  const std::string source =
      read_file(std::string(KILN_SOURCE_DIR) + "/tests/device/async_kernel.cu");
  auto out = compile(source, "sm_75", 17);
  CHECK(out.ptx.find(".entry kiln_async_tile_sum") != std::string::npos);
  CHECK(out.ptx.find("cp.async") == std::string::npos);
}

TEST_CASE("each new device header compiles alone under NVRTC") {
  for (std::string header :
       {"kiln/device/shared_memory.hpp", "kiln/device/async_copy.hpp", "kiln/device/block.hpp"}) {
    CAPTURE(header);
    std::string source = "#include \"" + header + "\"\nextern \"C\" __global__ void k() {}\n";
    CHECK_NOTHROW(compile(source, "sm_80", 17));
  }
}

TEST_CASE("storage_size of a tensor with a dynamic size is a compile error") {
  // Paired: the static tile compiles, so the failure below is the dynamic size's.
  const std::string prefix =
      "#include \"kiln/dims/tensor.hpp\"\nKILN_DIM(I);\nKILN_DIM(K);\n"
      "using namespace kiln;\n";
  const std::string good =
      prefix +
      "KILN_KERNEL void k(int* out) {\n"
      "  *out = Tensor<float, Extent<I, 4>, Extent<K, 8>>::storage_size(); }\n";
  const std::string bad =
      prefix +
      "KILN_KERNEL void k(int* out) {\n"
      "  *out = Tensor<float, Extent<I, dynamic>, Extent<K, 8>>::storage_size(); }\n";
  CHECK_NOTHROW(compile(good, "sm_80", 17));
  try {
    compile(bad, "sm_80", 17);
    FAIL("storage_size of a dynamic tensor compiled");
  } catch (const kiln::CompileError& e) {
    CHECK(e.log().find("storage_size needs every size and stride") != std::string::npos);
  }
}
