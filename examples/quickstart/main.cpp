// kiln quickstart: describe a kernel's tensors once, as C++ types; compile and launch it in
// one call each; check the result against the CPU. Without a GPU it compiles for sm_90.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kiln/kiln.hpp"

KILN_DIM(ROW);
KILN_DIM(COL);
constexpr int cols = 256;
// The kernel's tensors: the Spec makes the kernel's header (spec.hpp) from these types, and
// the host builds its views of device buffers with the same ones.
using In = kiln::Tensor<const float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL, cols>>;
using Scale = kiln::Tensor<const float, kiln::Extent<COL, cols>>;
using Out = kiln::Tensor<float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL, cols>>;

int main() try {
  const int rows = 1000;
  kiln::gen::Spec spec;
  spec.tensor<In>("In").tensor<Scale>("Scale").tensor<Out>("Out").constant("COLS", cols);

  if (kiln::rt::device_count() == 0) {  // no GPU: compile only (scale_rows.cu is beside this file)
    auto binary = kiln::compile("scale_rows.cu", spec, {.target = "sm_90"});
    std::printf("no GPU found: compiled scale_rows.cu for sm_90 only (%zu-byte binary)\n",
                binary->code.size());
    return 0;
  }
  // Finds scale_rows.cu, compiles it for this GPU (or takes it from the cache), loads it.
  auto kernel = kiln::kernel("scale_rows.cu", spec, "scale_rows");

  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> in(std::size_t(rows) * cols), scale(cols);
  for (auto& v : in) v = dist(rng);
  for (auto& v : scale) v = dist(rng);

  kiln::rt::DeviceBuffer<float> d_in(in.size()), d_scale(scale.size()), d_out(in.size());
  d_in.copy_from(in);
  d_scale.copy_from(scale);
  d_out.fill_bytes(0xff);  // NaN: an element the kernel misses cannot pass the check
  kernel.launch(rows, 128, In(d_in.data(), ROW(rows)), Scale(d_scale.data()),
                Out(d_out.data(), ROW(rows)));
  const std::vector<float> out = d_out.to_vector();

  // Every element against a double-precision CPU reference.
  double worst = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double want = double(in[i]) * double(scale[i % cols]);
    const double err =
        std::isnan(out[i]) ? INFINITY : std::abs(out[i] - want) / std::max(1e-30, std::abs(want));
    worst = std::max(worst, err);
  }
  std::printf("scale_rows on %s (%s): %d x %d elements, worst relative error %.2e: %s\n",
              kernel.device().properties().name.c_str(),
              kiln::jit::KernelCache::global().stats().compiles ? "compiled" : "from the cache",
              rows, cols, worst, worst < 1e-6 ? "correct" : "WRONG");
  return worst < 1e-6 ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
