// kiln profiler example: a few kiln kernels (and a cuBLAS GEMM, where cuBLAS is found)
// under the profiler; prints the top-N table and writes the trace and the roofline.
//
//   ./profile [DIR]     writes DIR/profile.json (open in ui.perfetto.dev), DIR/roofline.svg
//                       (DIR is made if missing)
//   KILN_PROFILE_BACKEND=events ./profile    device events only (no cuBLAS kernels)
//   kiln profile [--counters default] -- ./profile
//                       the whole run profiled by the kiln tool (then no session of its own)
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "kiln/kiln.hpp"

namespace {
// Three kernels with different shapes of work: a copy (memory bound), a polynomial
// (compute bound) and a fused multiply-add over vectors (in between).
const char* source = R"(
#include "kiln/device.hpp"
KILN_DIM(N);
using V = kiln::Tensor<float, kiln::Extent<N, kiln::dynamic>>;
using CV = kiln::Tensor<const float, kiln::Extent<N, kiln::dynamic>>;
KILN_KERNEL void copy(CV in, V out) {
  using namespace kiln;
  for (N i : range(in.size<N>()).split(block_index() * block_size() + thread_index(), grid_size() * block_size()))
    *out[i] = *in[i];
}
KILN_KERNEL void polynomial(CV in, V out, int terms) {
  using namespace kiln;
  for (N i : range(in.size<N>()).split(block_index() * block_size() + thread_index(), grid_size() * block_size())) {
    float x = *in[i], acc = 0.0f;
    for (int t = 0; t < terms; ++t) acc = acc * x + 1.0f;
    *out[i] = acc;
  }
}
KILN_KERNEL void axpy(CV x, V y, float a) {
  using namespace kiln;
  for (N i : range(x.size<N>()).split(block_index() * block_size() + thread_index(), grid_size() * block_size()))
    *y[i] = a * *x[i] + *y[i];
}
)";

struct Cublas {
  kiln::detail::DynamicLibrary lib;
  int (*create)(void**) = nullptr;
  int (*destroy)(void*) = nullptr;
  int (*sgemm)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int,
               const float*, float*, int) = nullptr;
};
}  // namespace

KILN_DIM(N);

int main(int argc, char** argv) try {
  using namespace kiln;
  const std::string dir = argc > 1 ? argv[1] : ".";
  if (rt::device_count() == 0) {
    std::printf("no GPU found: nothing to profile\n");
    return 0;
  }
  rt::Device gpu(0);
  gpu.make_current();
  jit::Options options;
  options.target = gpu.arch();
  auto binary =
      jit::KernelCache::global().get(jit::Program{"profile_example.cu", source, {}, {}}, options);
  rt::Module module = rt::load_module(binary, gpu);

  const int n = 1 << 24;
  rt::DeviceBuffer<float> x(n, gpu), y(n, gpu);
  x.fill(0.5f);
  y.fill(1.0f);
  auto vx = x.tensor<Extent<N, dynamic>>(N(n));
  auto vy = y.tensor<Extent<N, dynamic>>(N(n));
  const unsigned blocks = unsigned(gpu.properties().multiprocessors) * 8;
  const double bytes = 4.0 * n;

  // CUPTI where it loads (KILN_PROFILE_BACKEND=events for events). Under `kiln profile`
  // (KILN_PROFILE or KILN_PROFILE_COUNTERS) the whole run is profiled: no session of its own.
  std::optional<prof::Session> session;
  if (!prof::whole_run_profiled()) session.emplace();
  for (int rep = 0; rep < 10; ++rep) {
    rt::LaunchInfo copy_info{"n=16M", "", 2 * bytes, 0};
    rt::launch_with(&copy_info, module.function("copy"), {{blocks}, {256}}, vx, vy);
    const int terms = 64;
    rt::LaunchInfo poly_info{"n=16M terms=64", "", 2 * bytes, 2.0 * terms * n};
    rt::launch_with(&poly_info, module.function("polynomial"), {{blocks}, {256}}, vx, vy, terms);
    rt::LaunchInfo axpy_info{"n=16M", "", 3 * bytes, 2.0 * n};
    rt::launch_with(&axpy_info, module.function("axpy"), {{blocks}, {256}}, vx, vy, 0.5f);
  }
  Cublas cublas;
  try {
    cublas.lib = detail::DynamicLibrary::open_first(
        "cuBLAS", {"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13", "libcublas.so.12"},
        nullptr);
    cublas.create = cublas.lib.get<decltype(cublas.create)>("cublasCreate_v2");
    cublas.destroy = cublas.lib.get<decltype(cublas.destroy)>("cublasDestroy_v2");
    cublas.sgemm = cublas.lib.get<decltype(cublas.sgemm)>("cublasSgemm_v2");
    void* h = nullptr;
    if (cublas.create(&h) == 0) {
      const int m = 2048;
      rt::DeviceBuffer<float> a(std::size_t(m) * m, gpu), b(std::size_t(m) * m, gpu),
          c(std::size_t(m) * m, gpu);
      a.fill(1.0f);
      b.fill(1.0f);
      const float one = 1, zero = 0;
      for (int rep = 0; rep < 3; ++rep)
        cublas.sgemm(h, 0, 0, m, m, m, &one, a.data(), m, b.data(), m, &zero, c.data(), m);
      gpu.synchronize();
      cublas.destroy(h);
      std::printf("ran 3 cuBLAS SGEMMs (visible under CUPTI)\n");
    }
  } catch (const Error& e) {
    std::printf("no cuBLAS: %s\n", e.what());
  }
  gpu.synchronize();
  if (!session) {
    std::printf("the whole run is profiled (kiln profile): the profile is written at exit\n");
    return 0;
  }
  prof::Profile profile = session->finish();

  std::printf("%s\n", prof::top_table(profile, 10).c_str());
  std::filesystem::create_directories(dir);  // throws, with the reason, if it cannot
  prof::write_chrome_trace(profile, dir + "/profile.json");
  prof::write_file(dir + "/roofline.svg", prof::roofline_svg(profile, 0));
  std::printf("wrote %s/profile.json (open it in ui.perfetto.dev) and %s/roofline.svg\n",
              dir.c_str(), dir.c_str());
  return 0;
} catch (const std::exception& e) {  // kiln::Error, or std::filesystem's for DIR
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
