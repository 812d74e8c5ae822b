// Hardware counters on a GPU (kiln/prof/counters.hpp): a kiln copy kernel and a memcpy-like
// kernel (float4 loads and stores) each move 2 x 256 MB, far more than the L2 holds, so the
// DRAM bytes CUPTI's range profiler counts must be within 10% of the bytes moved; the two
// kernels' counters go to the right records. Skips (exit 77) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "kiln/jit.hpp"
#include "kiln/prof.hpp"
#include "kiln/prof/counters.hpp"
#include "kiln/rt.hpp"

using namespace kiln;

namespace {

const char* source = R"(
extern "C" __global__ void copy(const float* in, float* out, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    out[i] = in[i];
  }
}
extern "C" __global__ void memcpy4(const float4* in, float4* out, long long n4) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4;
       i += (long long)gridDim.x * blockDim.x) {
    out[i] = in[i];
  }
}
)";

rt::Module module(const rt::Device& d) {
  static jit::KernelCache cache(jit::DiskCacheConfig::from_environment());
  jit::Options o;
  o.target = d.arch();
  return rt::load_module(cache.get(jit::Program{"counters_test.cu", source, {}, {}}, o), d);
}

double dram_bytes(const prof::KernelRecord& k) {
  return k.counters.at(prof::metric::dram_read) + k.counters.at(prof::metric::dram_write);
}

}  // namespace

TEST_CASE("DRAM bytes of a copy kernel and a memcpy-like kernel within 10% of the bytes moved") {
  rt::Device d(0);
  rt::Module m = module(d);
  rt::Function copy = m.function("copy"), memcpy4 = m.function("memcpy4");
  const long long n = 64ll << 20;  // 64 Mi floats: 256 MB each way
  const double moved = 2.0 * double(n) * sizeof(float);
  rt::DeviceBuffer<float> in(std::size_t(n), d), out(std::size_t(n), d);
  rt::Stream stream(d);
  const unsigned blocks = unsigned(d.properties().multiprocessors) * 8;
  rt::LaunchInfo info{"n=64Mi", "", moved, 0};

  prof::ProfileOptions options;
  options.metrics = prof::default_metrics();
  const prof::Profile p = prof::profile_with_counters(
      [&] {
        rt::launch_with(&info, copy, {{blocks}, {256}, 0, stream}, in, out, n);
        rt::launch_with(&info, memcpy4, {{blocks}, {256}, 0, stream}, in, out, n / 4);
        stream.synchronize();
      },
      options);
  MESSAGE("counters note: " << (p.counters_note.empty() ? "(none)" : p.counters_note));
  std::printf("%s\n", prof::top_table(p).c_str());
  REQUIRE(p.kernels.size() == 2);
  for (const prof::KernelRecord& k : p.kernels) {
    INFO(k.name);
    REQUIRE_MESSAGE(!k.counters.empty(), "no counters: " << p.counters_note);
    for (const std::string& metric : prof::default_metrics()) CHECK(k.counters.contains(metric));
    const double bytes = dram_bytes(k);
    MESSAGE(k.name << ": " << bytes / 1e6 << " MB of DRAM traffic for " << moved / 1e6
                   << " MB moved; gpu__time_duration " << k.counters.at(prof::metric::duration)
                   << " ns (timing pass " << k.duration_us() * 1e3 << " ns)");
    CHECK(std::abs(bytes / moved - 1) < 0.10);
    // Each pass moves the same bytes in about the same time (within a factor of two).
    const double ns = k.counters.at(prof::metric::duration);
    CHECK(ns > 0.5 * k.duration_us() * 1e3);
    CHECK(ns < 2.0 * k.duration_us() * 1e3);
    // A copy is memory-bound.
    CHECK(k.counters.at(prof::metric::dram_throughput) >
          k.counters.at(prof::metric::sm_throughput));
  }
  CHECK(p.kernels[0].name == "copy");
  CHECK(p.kernels[1].name == "memcpy4");
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: counters_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
