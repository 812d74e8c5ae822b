// Generated headers compiled by NVRTC for every NVIDIA target kiln supports, with a
// kernel whose static_asserts check the sizes, strides, types and constants it sees.
// NVRTC needs no GPU, so this runs in CI.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "full_spec.hpp"
#include "kiln/gen.hpp"
#include "kiln/jit/cuda_paths.hpp"
#include "kiln/jit/nvrtc.hpp"

namespace {

std::string cuda_include_dir() {
  static const std::string dir =
      kiln::jit::find_cuda_include_dir(kiln::jit::nvrtc_library_path()).string();
  return dir;
}

// Compiles `source` with `header` available as "spec.hpp".
kiln::jit::NvrtcOutput compile(const std::string& source, const std::string& header,
                               const std::string& arch, int std = 17, bool cuda_headers = true) {
  std::vector<std::string> options = {"--gpu-architecture=" + arch,
                                      "-std=c++" + std::to_string(std),
                                      std::string("-I") + KILN_TEST_INCLUDE_DIR};
  if (cuda_headers) {
    REQUIRE_MESSAGE(!cuda_include_dir().empty(),
                    "cuda_fp16.h not found: set CUDA_PATH to the CUDA toolkit");
    options.push_back("-I" + cuda_include_dir());
  }
  return kiln::jit::nvrtc_compile(source, "gen_check.cu", options, {{"spec.hpp", header}});
}

}  // namespace

TEST_CASE("a generated header compiles for every NVIDIA target and means what the spec says") {
  const std::string header = gen_test::full_spec().header();
  const std::string source = gen_test::check_kernel();
  for (std::string arch : {"sm_80", "sm_86", "sm_89", "sm_90"}) {
    CAPTURE(arch);
    auto out = compile(source, header, arch);
    CHECK(out.log.find("warning") == std::string::npos);
    CHECK(out.ptx.find(std::string(".target ") + arch) != std::string::npos);
    CHECK(out.ptx.find("kiln_gen_check") != std::string::npos);
    CHECK_FALSE(out.cubin.empty());
  }
}

TEST_CASE("the generated header also compiles as C++20") {
  CHECK_NOTHROW(compile(gen_test::check_kernel(), gen_test::full_spec().header(), "sm_90", 20));
}

TEST_CASE("a wrong expectation about the generated header fails to compile") {
  // Without this, the static_asserts above could pass for the wrong reason.
  const std::string header = gen_test::full_spec().header();
  for (std::string arch : {"sm_80", "sm_90"}) {
    CAPTURE(arch);
    try {
      compile(gen_test::check_kernel(/*wrong=*/true), header, arch);
      FAIL("a static_assert expecting size 65 for a size-64 extent compiled");
    } catch (const kiln::CompileError& e) {
      CHECK(e.log().find("extent_at<0>::size == 65") != std::string::npos);
    }
  }
}

TEST_CASE("a constant's value is exact: the same decimal as a double differs") {
  kiln::gen::Spec spec;
  spec.constant("kScale", 0.1f).constant("kThird", 1.0 / 3.0);
  const std::string header = spec.header();
  const std::string good =
      "#include \"spec.hpp\"\n"
      "static_assert(kScale == 0x1.99999ap-4f, \"float\");\n"
      "static_assert(kThird == 0x1.5555555555555p-2, \"double\");\n"
      "KILN_KERNEL void k() {}\n";
  CHECK_NOTHROW(compile(good, header, "sm_90", 17, false));
  const std::string bad =
      "#include \"spec.hpp\"\n"
      "static_assert(kScale == 0.1, \"0.1f is not the double 0.1\");\n"
      "KILN_KERNEL void k() {}\n";
  CHECK_THROWS_AS(compile(bad, header, "sm_90", 17, false), kiln::CompileError);
}

TEST_CASE("a header without f16 or bf16 tensors needs no CUDA headers") {
  using namespace kiln::gen;
  Spec spec;
  spec.dim("I").dim("K").tensor(TensorSpec("A", DType::f32).dim("I", 4).dim("K", dynamic));
  const std::string header = spec.header();
  REQUIRE(header.find("half.hpp") == std::string::npos);
  const std::string source =
      "#include \"spec.hpp\"\n"
      "KILN_KERNEL void k(float* p, int n) { A a(p, K(n)); *a[I(1)][K(2)] = 3.0f; }\n";
  CHECK_NOTHROW(compile(source, header, "sm_90", 17, /*cuda_headers=*/false));
}

TEST_CASE("kiln/device/half.hpp compiles alone under NVRTC, as __half and __nv_bfloat16") {
  const std::string source =
      "#include \"kiln/device/half.hpp\"\n"
      "static_assert(sizeof(kiln::f16) == 2 && sizeof(kiln::bf16) == 2, \"16 bits\");\n"
      "KILN_KERNEL void k(kiln::f16* h, kiln::bf16* b) {\n"
      "  __half* hh = h; __nv_bfloat16* bb = b;\n"
      "  hh[0] = __float2half(1.5f); bb[0] = __float2bfloat16(2.5f);\n"
      "}\n";
  for (int std : {17, 20}) {
    CAPTURE(std);
    CHECK_NOTHROW(compile(source, "", "sm_80", std));
  }
}
