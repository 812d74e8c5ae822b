// Tensor-core fragments, ldmatrix and fragment stores (kiln/device/mma.hpp, ldmatrix.hpp)
// compiled by NVRTC for sm_80 and sm_90, C++17 and C++20: the PTX must hold the
// instructions the typed calls stand for. NVRTC needs no GPU, so this runs in CI.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "kiln/jit/cuda_paths.hpp"
#include "kiln/jit/nvrtc.hpp"

namespace {

// One warp: an f16 m16n8k16 product through ldmatrix (.x4 for A, .x2.trans for a
// row-major B in a swizzled tile), stored to global floats and to a shared f16 tile; and
// a bf16 m16n8k8 product whose operands are loaded element by element.
const char* const kernel_source = R"(
#include "kiln/device/ldmatrix.hpp"
#include "kiln/device/warp.hpp"
#include "kiln/dims/algorithms.hpp"

KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
using namespace kiln;

KILN_KERNEL void kiln_mma_f16(const f16* a, const f16* b, float* c, f16* c_half) {
  __shared__ alignas(16) f16 a_smem[16 * 16];
  __shared__ alignas(16) f16 b_smem[16 * 64];
  __shared__ alignas(16) f16 c_smem[16 * 8];
  Tensor<const f16, Extent<I, 16>, Extent<K, 16>> ga(a);
  Tensor<const f16, Extent<K, 16>, Extent<J, 8>> gb(b);
  Tensor<f16, Extent<I, 16>, Extent<K, 16>> sa(a_smem);
  SwizzledTensor<f16, Swizzle<3, 3, 3>, Extent<K, 16>, Extent<J, 64>> sb(b_smem);
  copy(sa, ga, lane_index(), warp_size);
  copy(sb.slice<8>(J(8)), gb, lane_index(), warp_size);
  sync_warp();

  MmaA<f16, I, K> fa;
  MmaB<f16, K, J> fb;
  MmaC<float, I, J> acc{};
  ldmatrix_fragment(fa, sa);
  ldmatrix_fragment(fb, sb.slice<8>(J(8)));
  mma(acc, fa, fb, acc);
  store_fragment(acc, Tensor<float, Extent<I, 16>, Extent<J, 8>>(c));
  Tensor<f16, Extent<I, 16>, Extent<J, 8>> sc(c_smem);
  store_fragment(acc, sc);
  sync_warp();
  copy(Tensor<f16, Extent<I, 16>, Extent<J, 8>>(c_half), sc, lane_index(), warp_size);
}

KILN_KERNEL void kiln_mma_bf16_k8(const bf16* a, const bf16* b, float* c) {
  MmaA<bf16, I, K, 8> fa;
  MmaB<bf16, K, J, 8> fb;
  MmaC<float, I, J> acc;
  load_fragment(fa, Tensor<const bf16, Extent<I, 16>, Extent<K, 8>>(a));
  load_fragment(fb, Tensor<const bf16, Extent<J, 8>, Extent<K, 8>>(b));
  Tensor<float, Extent<I, 16>, Extent<J, 8>> tc(c);
  load_fragment(acc, tc);
  mma(acc, fa, fb, acc);
  for (int e = 0; e < acc.size; ++e) *tc[acc.coords(e)] = acc[e] * 2.0f;
}
)";

std::string cuda_include_dir() {
  static const std::string dir =
      kiln::jit::find_cuda_include_dir(kiln::jit::nvrtc_library_path()).string();
  return dir;
}

kiln::jit::NvrtcOutput compile(const std::string& arch, int std) {
  REQUIRE_MESSAGE(!cuda_include_dir().empty(),
                  "cuda_fp16.h not found: set CUDA_PATH to the CUDA toolkit");
  return kiln::jit::nvrtc_compile(
      kernel_source, "mma_kernel.cu",
      {"--gpu-architecture=" + arch, "-std=c++" + std::to_string(std),
       std::string("-I") + KILN_TEST_INCLUDE_DIR, "-I" + cuda_include_dir()});
}

// The PTX of one entry point (up to the next one).
std::string entry(const std::string& ptx, const std::string& name) {
  auto begin = ptx.find(".entry " + name);
  REQUIRE_MESSAGE(begin != std::string::npos, name);
  auto end = ptx.find(".entry ", begin + 1);
  return ptx.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("mma, ldmatrix and fragment stores compile to their instructions on sm_80 and sm_90") {
  for (std::string arch : {"sm_80", "sm_90"}) {
    for (int std : {17, 20}) {
      CAPTURE(arch);
      CAPTURE(std);
      auto out = compile(arch, std);
      CHECK_MESSAGE(!has(out.log, "warning"), out.log);
      const std::string f16 = entry(out.ptx, "kiln_mma_f16");
      CHECK(has(f16, "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"));
      CHECK(has(f16, "ldmatrix.sync.aligned.m8n8.x4.shared.b16"));
      CHECK(has(f16, "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16"));
      CHECK(has(f16, "st.global.v2.f32"));  // the accumulator's pairs, one store each
      const std::string bf16 = entry(out.ptx, "kiln_mma_bf16_k8");
      CHECK(has(bf16, "mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32"));
      CHECK(!has(bf16, "ldmatrix"));
    }
  }
}

TEST_CASE("below sm_80 the same source compiles, issues no tensor-core instruction, traps") {
  auto out = compile("sm_75", 17);
  CHECK(!has(out.ptx, "mma.sync"));
  CHECK(!has(out.ptx, "ldmatrix"));
  CHECK(has(entry(out.ptx, "kiln_mma_bf16_k8"), "trap;"));
  CHECK(has(out.ptx, ".entry kiln_mma_f16"));
}
