// Runs the typed kernels of tests/device/typed_kernel.cu on a GPU and checks every
// element against the CPU. Exits 77 (ctest: skipped) where no GPU is present.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../device/typed_kernel.cu"

#define CHECK_CUDA(call)                                                      \
  do {                                                                        \
    cudaError_t e_ = (call);                                                  \
    if (e_ != cudaSuccess) {                                                  \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                           \
    }                                                                         \
  } while (0)

static int failures = 0;

static void expect_equal(const char* what, const std::vector<float>& got,
                         const std::vector<float>& want) {
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!(got[i] == want[i])) {  // NaN (the poison) never passes
      if (bad++ < 5)
        std::fprintf(stderr, "%s: element %zu is %g, expected %g\n", what, i, got[i], want[i]);
    }
  }
  std::printf("%s: %zu elements, %d wrong\n", what, want.size(), bad);
  failures += bad != 0;
}

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device found: GPU test skipped\n");
    return 77;
  }
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);

  for (int rows : {1, 31, 1000, 4096}) {
    // transpose: in is (K:32, I:rows), out is (I:rows, K:32)
    std::vector<float> in(size_t(32) * rows), want(in.size()), got(in.size());
    for (auto& v : in) v = dist(rng);
    const float scale = dist(rng);
    for (int k = 0; k < 32; ++k)
      for (int i = 0; i < rows; ++i) want[size_t(i) * 32 + k] = in[size_t(k) * rows + i] * scale;

    float *d_in, *d_out;
    CHECK_CUDA(cudaMalloc(&d_in, in.size() * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_out, in.size() * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(d_in, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemset(d_out, 0xff, in.size() * sizeof(float)));  // NaN poison
    kiln_typed_transpose<<<(rows + 31) / 32, 128>>>(d_in, d_out, rows, scale);
    CHECK_CUDA(cudaGetLastError());
    CHECK_CUDA(cudaMemcpy(got.data(), d_out, in.size() * sizeof(float), cudaMemcpyDeviceToHost));
    char what[64];
    std::snprintf(what, sizeof what, "typed transpose, rows=%d", rows);
    expect_equal(what, got, want);

    // vector copy over (I:rows, K8:4, K:8)
    CHECK_CUDA(cudaMemset(d_out, 0xff, in.size() * sizeof(float)));
    kiln_typed_vector_copy<<<64, 256>>>(d_in, d_out, rows);
    CHECK_CUDA(cudaGetLastError());
    CHECK_CUDA(cudaMemcpy(got.data(), d_out, in.size() * sizeof(float), cudaMemcpyDeviceToHost));
    std::snprintf(what, sizeof what, "typed vector copy, rows=%d", rows);
    expect_equal(what, got, in);
    CHECK_CUDA(cudaFree(d_in));
    CHECK_CUDA(cudaFree(d_out));
  }
  {
    // tile helpers: zero, copy into a transposed shared tile, for_each scaling back out
    std::vector<float> in(8 * 32), want(in.size()), got(in.size());
    for (auto& v : in) v = dist(rng);
    const float scale = dist(rng);
    for (size_t i = 0; i < in.size(); ++i) want[i] = in[i] * scale;
    float *d_in, *d_out;
    CHECK_CUDA(cudaMalloc(&d_in, in.size() * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_out, in.size() * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(d_in, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemset(d_out, 0xff, in.size() * sizeof(float)));
    kiln_typed_tile_helpers<<<1, 96>>>(d_in, d_out, scale);
    CHECK_CUDA(cudaGetLastError());
    CHECK_CUDA(cudaMemcpy(got.data(), d_out, in.size() * sizeof(float), cudaMemcpyDeviceToHost));
    expect_equal("typed tile helpers (zero, copy, for_each)", got, want);
    CHECK_CUDA(cudaFree(d_in));
    CHECK_CUDA(cudaFree(d_out));
  }
  std::printf(failures ? "FAILED\n" : "all typed-kernel checks passed\n");
  return failures ? 1 : 0;
}
