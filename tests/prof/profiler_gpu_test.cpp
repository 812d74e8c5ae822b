// The profiler on a GPU: every launch recorded with its facts; events and CUPTI agree on
// a kernel of known duration; kernels kiln did not launch (cuBLAS) appear under CUPTI.
// Skips (exit 77) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "cublas.hpp"
#include "kiln/jit.hpp"
#include "kiln/prof.hpp"
#include "kiln/rt.hpp"

using namespace kiln;

namespace {

const char* source = R"(
extern "C" __global__ void spin(long long cycles, int* out) {
  long long start = clock64();
  while (clock64() - start < cycles) {}
  if (threadIdx.x == 0) out[blockIdx.x] = 1;
}
extern "C" __global__ void fill(float* out, float v, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = v;
}
)";

rt::Module module(const rt::Device& d) {
  static jit::KernelCache cache(jit::DiskCacheConfig::from_environment());
  jit::Options o;
  o.target = d.arch();
  return rt::load_module(cache.get(jit::Program{"prof_test.cu", source, {}, {}}, o), d);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<double> durations(const prof::Profile& p, const std::string& name) {
  std::vector<double> out;
  for (const auto& k : p.kernels) {
    if (k.name == name) out.push_back(k.duration_us());
  }
  return out;
}

// About 1 ms of spinning on one SM, five times, plus a fill with declared bytes.
prof::Profile run_workload(prof::Backend backend, std::string* used = nullptr) {
  rt::Device d(0);
  rt::Module m = module(d);
  rt::Function spin = m.function("spin"), fill = m.function("fill");
  rt::DeviceBuffer<int> flags(4, d);
  rt::DeviceBuffer<float> buf(1 << 20, d);
  rt::Stream stream(d);
  const long long cycles = (long long)(d.properties().sm_clock_khz);  // ~1 ms
  prof::Session session(backend);
  if (used) *used = session.backend() == prof::Backend::cupti ? "cupti" : "events";
  for (int i = 0; i < 5; ++i) rt::launch(spin, {{1}, {32}, 0, stream}, cycles, flags);
  rt::LaunchInfo info{"n=1048576", "block=256", 4.0 * (1 << 20), 0};
  rt::launch_with(&info, fill, {{(1u << 20) / 256}, {256}, 0, stream}, buf, 2.0f, 1 << 20);
  stream.synchronize();
  return session.finish();
}

}  // namespace

TEST_CASE("events: every launch is recorded with its facts") {
  prof::Profile p = run_workload(prof::Backend::events);
  CHECK(p.backend == "events");
  REQUIRE(p.kernels.size() == 6);
  auto spins = durations(p, "spin");
  REQUIRE(spins.size() == 5);
  MESSAGE("events: spin median " << median(spins) << " us");
  CHECK(median(spins) > 500);
  CHECK(median(spins) < 5000);
  const auto& f = p.kernels.back();
  CHECK(f.name == "fill");
  CHECK(f.params == "n=1048576");
  CHECK(f.config == "block=256");
  CHECK(f.bytes == 4.0 * (1 << 20));
  CHECK(f.grid[0] == 4096);
  CHECK(f.block[0] == 256);
  CHECK(f.registers > 0);
  CHECK(f.occupancy > 0);
  CHECK(f.occupancy <= 1.0);
  CHECK(f.host_launch_us > 0);
  for (std::size_t i = 1; i < p.kernels.size(); ++i) {
    CHECK(p.kernels[i].start_us >= p.kernels[i - 1].end_us - 1.0);  // one stream: in order
  }
  REQUIRE(p.devices.size() == 1);
  CHECK(p.devices[0].peaks.bandwidth > 1e11);
  CHECK(prof::top_table(p).find("spin") != std::string::npos);
}

TEST_CASE("CUPTI and events agree within a few percent on a kernel of known duration") {
  std::string used;
  prof::Profile events = run_workload(prof::Backend::events);
  prof::Profile cupti = run_workload(prof::Backend::cupti, &used);
  if (used != "cupti") {
    MESSAGE("CUPTI could not be used here: only events were checked");
    return;
  }
  CHECK(cupti.backend == "cupti");
  REQUIRE(durations(cupti, "spin").size() == 5);
  const double e = median(durations(events, "spin")), c = median(durations(cupti, "spin"));
  MESSAGE("spin median: events " << e << " us, CUPTI " << c << " us");
  CHECK(std::abs(e - c) / c < 0.05);
  for (const auto& k : cupti.kernels) {
    CHECK_FALSE(k.external);
    CHECK(k.correlation != 0);
  }
  CHECK(cupti.kernels.back().params == "n=1048576");  // kiln's facts joined to CUPTI's times
}

TEST_CASE("kernels kiln did not launch (cuBLAS) appear under CUPTI") {
  std::string why;
  std::optional<test::Cublas> cublas = test::Cublas::open(why);
  if (!cublas) {
    MESSAGE("no cuBLAS here, not checked: " << why);
    return;
  }
  test::Cublas& b = *cublas;
  rt::Device d(0);
  d.make_current();
  const int n = 512;
  rt::DeviceBuffer<float> a(std::size_t(n) * n, d), bb(std::size_t(n) * n, d),
      c(std::size_t(n) * n, d);
  a.fill(1.0f);
  bb.fill(2.0f);
  void* handle = nullptr;
  REQUIRE(b.create(&handle) == 0);
  prof::Session session(prof::Backend::cupti);
  if (session.backend() != prof::Backend::cupti) {
    MESSAGE("CUPTI could not be used here: not checked");
    b.destroy(handle);
    return;
  }
  const float alpha = 1, beta = 0;
  REQUIRE(b.sgemm(handle, 0, 0, n, n, n, &alpha, a.data(), n, bb.data(), n, &beta, c.data(), n) ==
          0);
  d.synchronize();
  prof::Profile p = session.finish();
  b.destroy(handle);
  bool found = false;
  for (const auto& k : p.kernels) {
    std::string lower = k.name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return char(std::tolower(ch)); });
    if (k.external && lower.find("gemm") != std::string::npos) {
      found = true;
      MESSAGE("cuBLAS kernel: " << k.name << ", " << k.duration_us() << " us");
      CHECK(k.duration_us() > 0);
    }
  }
  CHECK(found);
  CHECK(c.to_vector()[0] == float(2 * n));
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: profiler_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
