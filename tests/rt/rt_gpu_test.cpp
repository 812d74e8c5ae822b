// kiln/rt on a GPU: devices, buffers, streams, events, modules, launches and their errors.
// Skips (exit 77) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "kiln/jit.hpp"
#include "kiln/rt.hpp"

using namespace kiln;
using namespace kiln::rt;

KILN_DIM(ROW);
KILN_DIM(COL);

namespace {

std::mt19937& rng() {
  static std::mt19937 r(std::random_device{}());
  return r;
}

// Typed tensors as parameters: y[row][col] = x[row][col] * s + b[col], (ROW: run-time, COL: 64).
const char* kernel_source = R"(
#include "kiln/device.hpp"
KILN_DIM(ROW);
KILN_DIM(COL);
using X = kiln::Tensor<const float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL, 64>>;
using B = kiln::Tensor<const float, kiln::Extent<COL, 64>>;
using Y = kiln::Tensor<float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL, 64>>;
KILN_KERNEL void affine(X x, B b, Y y, float s) {
  using namespace kiln;
  ROW r(block_index());
  for (COL c : range(COL(64)).split(thread_index(), block_size())) *y[r][c] = *x[c][r] * s + *b[c];
}
template <int N>
__global__ void iota(int* out) {
  out[threadIdx.x] = N + int(threadIdx.x);
}
// Spins for about `cycles` clock cycles, for timing.
KILN_KERNEL void spin(long long cycles, int* out) {
  long long start = clock64();
  while (clock64() - start < cycles) {}
  *out = 1;
}
// Each block writes its rank in its thread-block cluster (sm_90); elsewhere ~0u.
KILN_KERNEL void cluster_rank(unsigned* out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  if (threadIdx.x == 0) out[blockIdx.x] = r;
#else
  if (threadIdx.x == 0) out[blockIdx.x] = ~0u;
#endif
}
KILN_KERNEL void uses_shared(float* out) {
  extern __shared__ float buf[];
  buf[threadIdx.x] = float(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}
)";

std::shared_ptr<const jit::Binary> binary(const Device& d) {
  static jit::KernelCache cache(jit::DiskCacheConfig::from_environment());
  jit::Program p{"rt_gpu_test.cu", kernel_source, {}, {"&iota<7>"}};
  jit::Options o;
  o.target = d.arch();
  return cache.get(p, o);
}

}  // namespace

TEST_CASE("devices: enumeration and properties") {
  REQUIRE(device_count() >= 1);
  Device d(0);
  const auto& p = d.properties();
  MESSAGE(p.name << ": " << p.arch << ", " << p.multiprocessors << " SMs, L2 "
                 << p.l2_bytes / 1024 / 1024 << " MiB, peak " << p.peak_bandwidth() / 1e12
                 << " TB/s");
  CHECK_FALSE(p.name.empty());
  CHECK(p.arch.rfind(p.platform == Platform::cuda ? "sm_" : "gfx", 0) == 0);
  CHECK(p.multiprocessors > 0);
  CHECK(p.warp_size == (p.platform == Platform::cuda ? 32 : 64));
  CHECK(p.max_threads_per_block >= 256);
  CHECK(p.shared_per_block_optin >= p.shared_per_block);
  CHECK(p.l2_bytes > 0);
  CHECK(p.peak_bandwidth() > 1e11);
  CHECK(p.total_memory > (std::size_t(1) << 30));
  CHECK_THROWS_WITH_AS(Device{device_count()}, doctest::Contains("there is no device"), Error);
  CHECK(Device(0) == d);
  d.make_current();
  CHECK(Device::current() == d);
  auto [free, total] = d.memory_info();
  CHECK(free > 0);
  CHECK(free <= total);
}

TEST_CASE("buffers: copies round trip, fills, views, and allocation failures say how much") {
  Device d(0);
  std::uniform_real_distribution<float> dist(-1e3f, 1e3f);
  std::vector<float> host(100003);
  for (auto& v : host) v = dist(rng());
  DeviceBuffer<float> a(host.size(), d), b(host.size(), d);
  a.copy_from(host);
  b.fill_bytes(0xff);
  b.copy_from(a);
  CHECK(b.to_vector() == host);
  b.fill(2.5f);
  for (float v : b.to_vector()) REQUIRE(v == 2.5f);
  PinnedBuffer<float> pinned(host.size());
  Stream s(d);
  a.copy_to(pinned, s);
  s.synchronize();
  CHECK(std::equal(host.begin(), host.end(), pinned.data()));
  CHECK_THROWS_WITH_AS(a.copy_from(std::vector<float>(7)), doctest::Contains("got 7 elements"),
                       Error);
  auto too_big = [&] { return a.tensor<Extent<ROW, dynamic>>(ROW(200000)); };
  CHECK_THROWS_WITH_AS(too_big(), doctest::Contains("needs 200000"), Error);
  try {
    DeviceBuffer<char> huge(std::size_t(1) << 52, d);  // 4 PiB
    FAIL("allocated 4 PiB");
  } catch (const DriverError& e) {
    std::string m = e.what();
    MESSAGE(m);
    CHECK(m.find("allocating 4294967296.0 MiB on device 0") != std::string::npos);
    CHECK(m.find("free") != std::string::npos);
  }
}

TEST_CASE("launch: typed views as parameters, on a stream, every element checked") {
  Device d(0);
  Function fn = load_module(binary(d), d).function("affine");
  for (int rows : {1, 77, 4096}) {
    std::uniform_real_distribution<float> dist(-4.f, 4.f);
    std::vector<float> x(std::size_t(rows) * 64), b(64);
    for (auto& v : x) v = dist(rng());
    for (auto& v : b) v = dist(rng());
    const float s = dist(rng());
    DeviceBuffer<float> dx(x.size(), d), db(b.size(), d), dy(x.size(), d);
    dx.copy_from(x);
    db.copy_from(b);
    dy.fill_bytes(0xff);
    Stream stream(d);
    launch(fn, {{unsigned(rows)}, {64}, 0, stream},
           dx.tensor<Extent<ROW, dynamic>, Extent<COL, 64>>(ROW(rows)),
           db.tensor<Extent<COL, 64>>(),
           dy.tensor<Extent<ROW, dynamic>, Extent<COL, 64>>(ROW(rows)), s);
    stream.synchronize();
    auto y = dy.to_vector();
    int bad = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      double want = double(x[i]) * s + b[i % 64];
      if (!(std::abs(y[i] - want) <= 1e-5 * (1 + std::abs(want)))) ++bad;
    }
    CHECK_MESSAGE(bad == 0, rows << " rows: " << bad << " wrong elements");
  }
}

TEST_CASE("modules: template kernels by name expression, attributes, occupancy, shared memory") {
  Device d(0);
  rt::Module m = load_module(binary(d), d);
  Function iota = m.function_for("&iota<7>");
  DeviceBuffer<int> out(32, d);
  out.fill_bytes(0xff);
  launch(iota, {{1}, {32}}, out);
  auto v = out.to_vector();
  for (int i = 0; i < 32; ++i) CHECK(v[std::size_t(i)] == 7 + i);

  Function f = m.function("affine");
  CHECK(f.attributes().registers > 0);
  CHECK(f.attributes().max_threads_per_block > 0);
  CHECK(f.occupancy(64) > 0);
  CHECK(f.knows_parameters());
  CHECK(f.parameter_sizes().size() == 4);
  CHECK_THROWS_WITH_AS(m.function("no_such_kernel"), doctest::Contains("no_such_kernel"),
                       DriverError);

  Function sh = m.function("uses_shared");
  const int big = 96 * 1024;
  CHECK_THROWS_WITH_AS(launch(sh, {{1}, {32}, unsigned(big)}, out),
                       doctest::Contains("set_max_dynamic_shared"), Error);
  sh.set_max_dynamic_shared(big);
  DeviceBuffer<float> fo(256, d);
  launch(sh, {{1}, {256}, unsigned(big)}, fo);
  auto fv = fo.to_vector();
  for (int i = 0; i < 256; ++i) CHECK(fv[std::size_t(i)] == float(255 - i));
  CHECK_THROWS_WITH_AS(sh.set_max_dynamic_shared(int(d.properties().shared_per_block_optin) + 1),
                       doctest::Contains("the limit is"), Error);
}

TEST_CASE("launch errors: limits and arguments are checked before the launch") {
  Device d(0);
  rt::Module m = load_module(binary(d), d);
  Function f = m.function("affine");
  DeviceBuffer<float> buf(64 * 4, d);
  auto x = buf.tensor<Extent<ROW, dynamic>, Extent<COL, 64>>(ROW(4));
  auto b = buf.tensor<Extent<COL, 64>>();
  CHECK_THROWS_WITH_AS(launch(f, {{4}, {4096}}, x, b, x, 1.0f),
                       doctest::Contains("exceeds the device's limit"), Error);
  CHECK_THROWS_WITH_AS(launch(f, {{4}, {0}}, x, b, x, 1.0f), doctest::Contains("is 0"), Error);
  CHECK_THROWS_WITH_AS(launch(f, {{4}, {64}}, x, b, x), doctest::Contains("takes 4 parameters"),
                       Error);
  CHECK_THROWS_WITH_AS(launch(f, {{4}, {64}}, x, b, x, 1.0), doctest::Contains("argument 3"),
                       Error);
  CHECK_THROWS_WITH_AS(launch(f, {{4}, {64}}, x, x, x, 1.0f), doctest::Contains("argument 1"),
                       Error);
  CHECK_NOTHROW(launch(f, {{4}, {64}}, x, b, x, 1.0f));
}

TEST_CASE("events time work on a stream") {
  Device d(0);
  Function spin = load_module(binary(d), d).function("spin");
  DeviceBuffer<int> flag(1, d);
  Stream s(d);
  Event start(d), stop(d);
  start.record(s);
  const long long cycles = (long long)(d.properties().sm_clock_khz) * 2;  // about 2 ms
  launch(spin, {{1}, {1}, 0, s}, cycles, flag);
  stop.record(s);
  stop.synchronize();
  float ms = stop.elapsed_ms_since(start);
  MESSAGE("spin of " << cycles << " cycles took " << ms << " ms");
  CHECK(ms > 1.0f);
  CHECK(ms < 50.0f);
  CHECK(flag.to_vector()[0] == 1);
}

TEST_CASE("cluster launches: each block's rank in its cluster, and clear errors") {
  Device d(0);
  Function f = load_module(binary(d), d).function("cluster_rank");
  DeviceBuffer<unsigned> out(8, d);
  LaunchConfig lc({8}, {32});
  lc.cluster = {2};
  if (d.properties().compute_major < 9) {
    CHECK_THROWS_WITH_AS(launch(f, lc, out), doctest::Contains("need sm_90"), Error);
    return;
  }
  for (unsigned size : {1u, 2u, 4u, 8u}) {
    CAPTURE(size);
    out.fill_bytes(0xff);
    lc.cluster = {size};
    launch(f, lc, out);
    const auto got = out.to_vector();
    for (unsigned b = 0; b < 8; ++b) CHECK(got[b] == (size == 1 ? 0u : b % size));
  }
  lc.grid = {6};
  lc.cluster = {4};
  CHECK_THROWS_WITH_AS(launch(f, lc, out), doctest::Contains("not a multiple of the cluster"),
                       Error);
  // More than 8 blocks (not portable): as many as the device holds for these blocks (16 on
  // sm_90 for small ones), each block's rank in its cluster; past that, a clear error.
  const unsigned block[3] = {32u, 1u, 1u};
  const int most = f.max_cluster_blocks(block, 0);
  MESSAGE("the device holds clusters of up to " << most << " blocks of 32 threads");
  CHECK(most >= 8);
  CHECK(f.max_cluster_blocks(block, 0) == most);  // remembered
  DeviceBuffer<unsigned> wide(std::size_t(4 * std::max(most, 8)), d);
  if (most > 8) {
    const unsigned size = unsigned(most);
    lc.grid = {4 * size};
    lc.cluster = {size};
    wide.fill_bytes(0xff);
    launch(f, lc, wide);
    const auto got = wide.to_vector();
    for (unsigned b = 0; b < 4 * size; ++b) CHECK(got[b] == b % size);
  }
  lc.grid = {unsigned(2 * most)};
  lc.cluster = {unsigned(2 * most)};
  CHECK_THROWS_WITH_AS(launch(f, lc, wide), doctest::Contains("more than the"), Error);
}

TEST_CASE("buffer operations without a stream wait for work queued on other streams") {
  Device d(0);
  Function spin = load_module(binary(d), d).function("spin");
  const long long cycles = (long long)(d.properties().sm_clock_khz) * 20;  // about 20 ms
  for (int round = 0; round < 3; ++round) {
    DeviceBuffer<int> flag(1, d);
    flag.fill_bytes(0);
    Stream s(d);  // non-blocking with the default stream
    launch(spin, {{1}, {1}, 0, s}, cycles, flag);
    // No synchronize: to_vector() must itself wait for the spin to write its flag.
    CHECK(flag.to_vector()[0] == 1);
    std::vector<int> host(1, 0);
    launch(spin, {{1}, {1}, 0, s}, cycles, flag);
    flag.fill_bytes(0);  // queued after the spin: the spin's 1 must not land after it
    flag.copy_to(host);
    CHECK(host[0] == 0);
  }
}

TEST_CASE("a binary for another architecture is refused with both named") {
  Device d(0);
  jit::Binary other = *binary(d);
  other.target = d.arch() == "sm_80" ? "sm_90" : "sm_80";
  CHECK_THROWS_WITH_AS(rt::Module(std::make_shared<const jit::Binary>(other), d),
                       doctest::Contains("compile it for"), Error);
}

int main(int argc, char** argv) {
  if (device_count() == 0) {
    std::printf("no GPU: rt_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
