// kiln GEMM with an epilogue of your own: a linear layer's output scaled per row and clamped,
// fused into the GEMM as device code that kiln compiles into the kernel. A fixed library
// ships the epilogues its authors chose; with a JIT library the epilogue is yours.
//
//   Y[m][n] = clamp((X W^T)[m][n] + bias[n]) * row_scale[m], -limit, limit)
//
// X is (M, K), W is (N, K) (layout nt), f16; Y is f32. Checked against the CPU. Without a
// GPU it compiles the kernel for sm_90 only.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kiln/kiln.hpp"
#include "kiln/ops/gemm.hpp"

// The epilogue's run-time arguments, as the host holds them...
struct ScaleClamp {
  const float* bias;
  const float* row_scale;
  float limit;
};
// ...and the device struct with the same members in the same order, plus what it does to
// each element v = alpha (X W^T) + beta Y at row m, column n (M and N: the kernel's typed
// dimensions, so mixing up the row and the column index does not compile).
const char* scale_clamp_code = R"(
struct Epilogue {
  const float* bias;
  const float* row_scale;
  float limit;
  KILN_DEVICE float operator()(float v, M m, N n) const {
    const float y = (v + bias[n.get()]) * row_scale[m.get()];
    return y < -limit ? -limit : (y > limit ? limit : y);
  }
};
)";

int main() try {
  const std::int64_t m = 1000, n = 768, k = 512;
  const float limit = 6.0f;

  if (kiln::rt::device_count() == 0) {  // no GPU: compile the kernel for an H100/H200 only
    kiln::ops::GemmParams p{
        kiln::gen::DType::f16, kiln::gen::DType::f32, kiln::ops::GemmLayout::nt, m, n, k};
    p.epilogue_name = "scale_clamp";
    p.epilogue_code = scale_clamp_code;
    p.epilogue_args_bytes = int(sizeof(ScaleClamp));
    kiln::rt::DeviceProperties sm90;
    sm90.arch = "sm_90";
    sm90.compute_major = 9;
    sm90.multiprocessors = 132;
    sm90.shared_per_block_optin = 227 * 1024;
    auto& factory = kiln::ops::gemm_factory();
    const auto configs = factory.candidates(p, sm90);
    const auto request = factory.compile_request(p, factory.heuristic(p, configs, sm90), sm90);
    const auto binary = kiln::jit::compiler_for("sm_90").compile(request.program, request.options);
    std::printf("no GPU found: compiled the GEMM with its epilogue for sm_90 only (%zu bytes)\n",
                binary.code.size());
    return 0;
  }

  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<kiln::f16> x(std::size_t(m * k)), w(std::size_t(n * k));
  std::vector<float> xf(x.size()), wf(w.size()), bias(static_cast<std::size_t>(n)),
      scale(static_cast<std::size_t>(m));
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = kiln::f16(dist(rng));
    xf[i] = float(x[i]);
  }
  for (std::size_t i = 0; i < w.size(); ++i) {
    w[i] = kiln::f16(dist(rng));
    wf[i] = float(w[i]);
  }
  for (auto& v : bias) v = dist(rng);
  for (auto& v : scale) v = 4.0f * dist(rng);

  kiln::rt::DeviceBuffer<kiln::f16> d_x(x.size()), d_w(w.size());
  kiln::rt::DeviceBuffer<float> d_bias(bias.size()), d_scale(scale.size()), d_y(std::size_t(m * n));
  d_x.copy_from(x);
  d_w.copy_from(w);
  d_bias.copy_from(bias);
  d_scale.copy_from(scale);

  const auto epilogue = kiln::ops::GemmEpilogue::make(
      "scale_clamp", scale_clamp_code, ScaleClamp{d_bias.data(), d_scale.data(), limit});
  kiln::ops::gemm(
      d_x, d_w, d_y,
      {.m = m, .n = n, .k = k, .layout = kiln::ops::GemmLayout::nt, .epilogue = epilogue});
  const std::vector<float> y = d_y.to_vector();

  double worst = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (std::int64_t l = 0; l < k; ++l) {
        dot += double(xf[std::size_t(i * k + l)]) * double(wf[std::size_t(j * k + l)]);
      }
      const double want = std::clamp((dot + bias[std::size_t(j)]) * scale[std::size_t(i)],
                                     -double(limit), double(limit));
      worst = std::max(worst, std::fabs(want - double(y[std::size_t(i * n + j)])));
    }
  }
  const auto& kernel = kiln::ops::gemm_kernel(kiln::ops::gemm_params(
      kiln::gen::DType::f16, kiln::gen::DType::f32,
      {.m = m, .n = n, .k = k, .layout = kiln::ops::GemmLayout::nt, .epilogue = epilogue}));
  std::printf("%s: %lld x %lld x %lld, largest difference from the CPU %.2e\n",
              kernel.name().c_str(), (long long)m, (long long)n, (long long)k, worst);
  if (!(worst < 1e-3 * limit)) {
    std::printf("FAILED: the fused epilogue's result differs from the CPU's\n");
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gemm_epilogue: %s\n", e.what());
  return 1;
}
