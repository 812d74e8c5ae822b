// The sm_90 device primitives, each alone on an H100/H200-class GPU: TMA loads and stores
// of ragged boxes with each swizzle (32, 64 and 128 bytes), read back through kiln's typed
// TmaSwizzle tiles, and an mbarrier's transaction count; one warp group's wgmma over K-major
// and M/N-major shared tiles against the CPU; thread-block clusters reaching each other's
// shared memory; a programmatic dependent launch overlapping the kernel before it and
// waiting for its writes. Every output is poisoned first. Skips (exit 77) where there is no GPU,
// and each case says so on GPUs other than sm_90.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kiln/rt.hpp"

namespace {

const char* hopper_source = R"(
#include "kiln/device.hpp"
#include "kiln/device/cluster.hpp"
#include "kiln/device/grid_dependency.hpp"
#include "kiln/device/wgmma.hpp"
KILN_DIM(R);
KILN_DIM(C);
KILN_DIM(M);
KILN_DIM(N);
KILN_DIM(K);
using namespace kiln;
using G = Tensor<f16, Extent<R, dynamic>, Extent<C, dynamic>>;  // only its type is used

// A (R:16, C:Bytes / 2) box of `in` at (r0, c0) through TMA into a swizzled tile, read
// back element by element through the tile's type into `plain`, then stored by TMA into
// `out` at the same place. flags: the barrier's phase 0 before the copy and after it.
template <int Bytes>
__device__ void roundtrip(const TmaDescriptor& in_map, const TmaDescriptor& out_map,
                          f16* plain, int r0, int c0, unsigned* flags) {
  constexpr int W = Bytes / 2;
  using Tile = SwizzledTensor<f16, TmaSwizzle<f16, Bytes>, Extent<R, 16>, Extent<C, W>>;
  __shared__ __align__(1024) f16 data[16 * W];
  __shared__ unsigned long long word;
  const Tile tile(data);
  const Mbarrier bar(&word);
  if (thread_index() == 0) {
    bar.init(1);
    fence_barrier_init();
  }
  __syncthreads();
  if (thread_index() == 0) {
    flags[0] = bar.try_wait(0) ? 1u : 0u;
    bar.arrive_expect_tx(tma_bytes<Tile>());
    tma_load<G>(tile, in_map, R(r0) + C(c0), bar);
  }
  bar.wait_for(0);
  if (thread_index() == 0) flags[1] = bar.try_wait(0) ? 1u : 0u;
  for (int x = thread_index(); x < 16 * W; x += block_size()) plain[x] = *tile[R(x / W) + C(x % W)];
  fence_async_shared();
  __syncthreads();
  if (thread_index() == 0) {
    tma_store<G>(out_map, C(c0) + R(r0), tile);
    tma_store_commit();
    tma_store_wait<0>();
  }
}
extern "C" __global__ void roundtrip128(const __grid_constant__ TmaDescriptor in_map,
                                        const __grid_constant__ TmaDescriptor out_map, f16* plain,
                                        int r0, int c0, unsigned* flags) {
  roundtrip<128>(in_map, out_map, plain, r0, c0, flags);
}
extern "C" __global__ void roundtrip64(const __grid_constant__ TmaDescriptor in_map,
                                       const __grid_constant__ TmaDescriptor out_map, f16* plain,
                                       int r0, int c0, unsigned* flags) {
  roundtrip<64>(in_map, out_map, plain, r0, c0, flags);
}
extern "C" __global__ void roundtrip32(const __grid_constant__ TmaDescriptor in_map,
                                       const __grid_constant__ TmaDescriptor out_map, f16* plain,
                                       int r0, int c0, unsigned* flags) {
  roundtrip<32>(in_map, out_map, plain, r0, c0, flags);
}

// C (M:64, N:128) = A (M:64, K:64) B (K:64, N:128) by one warp group: the tiles written
// through their types, then four wgmma m64n128k16.
using Sw = TmaSwizzle<f16, 128>;
using AK = SwizzledTensor<f16, Sw, Extent<M, 64>, Extent<K, 64>>;
using AM = SwizzledTensor<f16, Sw, Extent<K, 64>, Extent<M, 64>>;
using BK = SwizzledTensor<f16, Sw, Extent<N, 128>, Extent<K, 64>>;
using BN = SwizzledTensor<f16, Sw, Extent<Fold<N, 64>, 2>, Extent<K, 64>, Extent<N, 64>>;
template <class ATile, class BTile>
__device__ void product(const float* a, const float* b, float* c) {
  __shared__ __align__(1024) f16 sa_data[64 * 64];
  __shared__ __align__(1024) f16 sb_data[64 * 128];
  const ATile sa(sa_data);
  const BTile sb(sb_data);
  for (int x = thread_index(); x < 64 * 64; x += 128) *sa[M(x / 64) + K(x % 64)] = f16(a[x]);
  for (int x = thread_index(); x < 64 * 128; x += 128) *sb[K(x / 128) + N(x % 128)] = f16(b[x]);
  fence_async_shared();
  __syncthreads();
  WgmmaAccumulator<M, N, 128> acc{};
  wgmma_fence();
  for (int ks = 0; ks < 4; ++ks) wgmma(acc, sa[K(16 * ks)], sb[K(16 * ks)], ks > 0);
  wgmma_commit_group();
  wgmma_wait_group<0>();
  for (int e = 0; e < acc.size; ++e) {
    const auto at = acc.coords(thread_index(), e);
    c[get<M>(at).get() * 128 + get<N>(at).get()] = acc[e];
  }
}
extern "C" __global__ void product_kk(const float* a, const float* b, float* c) { product<AK, BK>(a, b, c); }
extern "C" __global__ void product_kn(const float* a, const float* b, float* c) { product<AK, BN>(a, b, c); }
extern "C" __global__ void product_mk(const float* a, const float* b, float* c) { product<AM, BK>(a, b, c); }
extern "C" __global__ void product_mn(const float* a, const float* b, float* c) { product<AM, BN>(a, b, c); }

// Clusters of 2: each block writes its rank into its shared memory and reads its
// neighbour's through distributed shared memory.
extern "C" __global__ void cluster_pairs(unsigned* out) {
  __shared__ unsigned mine;
  if (thread_index() == 0) mine = cluster_block_rank() * 10 + 7;
  cluster_sync();
  if (thread_index() == 0) {
    const unsigned* theirs = cluster_shared(&mine, cluster_block_rank() ^ 1);
    out[block_index() * 3] = cluster_block_rank();
    out[block_index() * 3 + 1] = cluster_blocks();
    out[block_index() * 3 + 2] = *theirs;
  }
  cluster_sync();
}

// Programmatic dependent launch: the writer lets its dependent grid be scheduled at once,
// spins for `spin` cycles, then writes out[i] = i + 1; the reader notes what in[0] held as
// it began (0: the writer had not written yet, so the two ran at once), waits for the
// writer, and copies.
extern "C" __global__ void slow_writer(unsigned* out, int n, long long spin) {
  release_dependent_grid();
  const long long t0 = clock64();
  while (clock64() - t0 < spin) {
  }
  for (int i = block_index() * block_size() + thread_index(); i < n; i += grid_size() * block_size())
    out[i] = unsigned(i) + 1u;
}
extern "C" __global__ void dependent_reader(const unsigned* in, unsigned* out, int n,
                                            unsigned* first_seen) {
  if (block_index() == 0 && thread_index() == 0) {
    first_seen[0] = *static_cast<const volatile unsigned*>(in);
  }
  wait_prior_grid();
  for (int i = block_index() * block_size() + thread_index(); i < n; i += grid_size() * block_size())
    out[i] = in[i];
}
)";

bool is_sm90(const kiln::rt::Device& dev) {
  const auto& p = dev.properties();
  if (p.platform == kiln::rt::Platform::cuda && p.compute_major == 9) return true;
  MESSAGE("skipped: TMA, wgmma and clusters are tested on sm_90; this device is " << p.arch);
  return false;
}

kiln::rt::JitKernel hopper_kernel(const std::string& name) {
  kiln::jit::Options o;
  o.target = "sm_90a";
  return kiln::kernel(kiln::jit::Program{"hopper_primitives.cu", hopper_source, {}, {}}, name, o);
}

std::mt19937& rng() {
  static std::mt19937 r(std::random_device{}());
  return r;
}

}  // namespace

TEST_CASE("TMA loads and stores ragged boxes with each swizzle; the barrier counts the bytes") {
  const auto& dev = kiln::rt::Device::current();
  if (!is_sm90(dev)) return;
  constexpr int rows = 40, cols = 104;  // 208-byte rows: a multiple of 16 bytes
  std::vector<std::uint16_t> in(rows * cols);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::uint16_t(0x3c00 + i % 977);
  kiln::rt::DeviceBuffer<std::uint16_t> d_in(in.size()), d_out(in.size());
  d_in.copy_from(in);
  for (auto [bytes, name] :
       {std::pair{128, "roundtrip128"}, {64, "roundtrip64"}, {32, "roundtrip32"}}) {
    CAPTURE(bytes);
    const int w = bytes / 2;
    const auto k = hopper_kernel(name);
    using Dim = kiln::rt::TensorMapDim;
    const auto swizzle = kiln::rt::TmaSwizzle(bytes);
    const std::vector<Dim> dims{{"R", rows, cols, 16}, {"C", cols, 1, w}};
    const auto in_map =
        kiln::rt::make_tensor_map(kiln::gen::DType::f16, d_in.address(), dims, swizzle);
    const auto out_map =
        kiln::rt::make_tensor_map(kiln::gen::DType::f16, d_out.address(), dims, swizzle);
    // A box that runs past the last rows and (for 64 columns) the last columns.
    const int r0 = 30, c0 = bytes == 32 ? 88 : 80;
    kiln::rt::DeviceBuffer<std::uint16_t> plain(std::size_t(16 * w));
    kiln::rt::DeviceBuffer<unsigned> flags(2);
    plain.fill_bytes(0xff);
    flags.fill_bytes(0xff);
    d_out.fill_bytes(0xff);
    k.launch(1, 128, in_map, out_map, plain, r0, c0, flags);
    const auto got = plain.to_vector();
    const auto out = d_out.to_vector();
    const auto f = flags.to_vector();
    CHECK(f[0] == 0u);  // phase 0 incomplete until the bytes land
    CHECK(f[1] == 1u);
    int wrong = 0;
    for (int r = 0; r < 16; ++r) {
      for (int c = 0; c < w; ++c) {
        const int gr = r0 + r, gc = c0 + c;
        const bool inside = gr < rows && gc < cols;
        const std::uint16_t want = inside ? in[std::size_t(gr * cols + gc)] : 0;  // zero fill
        wrong += got[std::size_t(r * w + c)] != want;
      }
    }
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) {
        const bool in_box = r >= r0 && r < r0 + 16 && c >= c0 && c < c0 + w;
        const std::uint16_t want = in_box ? in[std::size_t(r * cols + c)] : 0xffff;
        wrong += out[std::size_t(r * cols + c)] != want;
      }
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("tensor maps refuse what TMA cannot do, naming the dimension") {
  const auto& dev = kiln::rt::Device::current();
  if (!is_sm90(dev)) return;
  kiln::rt::DeviceBuffer<std::uint16_t> buf(4096);
  using Dim = kiln::rt::TensorMapDim;
  auto error_of = [&](std::uint64_t address, std::vector<Dim> dims, kiln::rt::TmaSwizzle s) {
    try {
      kiln::rt::make_tensor_map(kiln::gen::DType::f16, address, dims, s);
    } catch (const kiln::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const auto b128 = kiln::rt::TmaSwizzle::b128;
  CHECK(error_of(buf.address() + 2, {{"R", 8, 64, 8}, {"C", 64, 1, 64}}, b128)
            .find("16-byte aligned") != std::string::npos);
  CHECK(error_of(buf.address(), {{"R", 8, 60, 8}, {"C", 60, 1, 32}}, b128).find("dimension R") !=
        std::string::npos);
  CHECK(error_of(buf.address(), {{"R", 8, 64, 8}, {"C", 64, 1, 128}}, b128)
            .find("at most 128 bytes") != std::string::npos);
  CHECK(error_of(buf.address(), {{"R", 8, 64, 300}, {"C", 64, 1, 64}}, b128).find("1 to 256") !=
        std::string::npos);
  CHECK(error_of(buf.address(), {{"R", 8, 1, 8}, {"C", 64, 8, 8}}, b128).find("contiguous") !=
        std::string::npos);
  CHECK(error_of(buf.address(), {{"R", 8, 64, 8}, {"C", 64, 1, 64}}, b128).empty());
}

TEST_CASE("one warp group's wgmma m64n128k16 over K-major and M/N-major tiles matches the CPU") {
  const auto& dev = kiln::rt::Device::current();
  if (!is_sm90(dev)) return;
  std::uniform_int_distribution<int> dist(-8, 8);
  std::vector<float> a(64 * 64), b(64 * 128);
  for (auto& x : a) x = float(dist(rng())) / 4.0f;
  for (auto& x : b) x = float(dist(rng())) / 4.0f;
  std::vector<double> want(64 * 128, 0.0);
  for (int i = 0; i < 64; ++i) {
    for (int j = 0; j < 128; ++j) {
      for (int kk = 0; kk < 64; ++kk) {
        want[std::size_t(i * 128 + j)] +=
            double(a[std::size_t(i * 64 + kk)]) * double(b[std::size_t(kk * 128 + j)]);
      }
    }
  }
  kiln::rt::DeviceBuffer<float> da(a.size()), db(b.size()), dc(want.size());
  da.copy_from(a);
  db.copy_from(b);
  for (const char* name : {"product_kk", "product_kn", "product_mk", "product_mn"}) {
    CAPTURE(name);
    const auto k = hopper_kernel(name);
    dc.fill_bytes(0xff);
    k.launch(1, 128, da, db, dc);
    const auto c = dc.to_vector();
    int wrong = 0;
    for (std::size_t x = 0; x < c.size(); ++x) wrong += !(double(c[x]) == want[x]);
    CHECK(wrong == 0);
  }
}

TEST_CASE("clusters of two blocks reach each other's shared memory") {
  const auto& dev = kiln::rt::Device::current();
  if (!is_sm90(dev)) return;
  const auto k = hopper_kernel("cluster_pairs");
  kiln::rt::DeviceBuffer<unsigned> out(8 * 3);
  out.fill_bytes(0xff);
  kiln::rt::LaunchConfig lc(8, 32);
  lc.cluster = {2u, 1u, 1u};
  k.launch(lc, out);
  const auto got = out.to_vector();
  for (unsigned b = 0; b < 8; ++b) {
    CAPTURE(b);
    CHECK(got[b * 3] == b % 2);
    CHECK(got[b * 3 + 1] == 2u);
    CHECK(got[b * 3 + 2] == (b % 2 ^ 1u) * 10 + 7);
  }
}

TEST_CASE("a programmatic launch starts before the kernel before it ends, and waits for it") {
  const auto& dev = kiln::rt::Device::current();
  if (!is_sm90(dev)) return;
  const auto writer = hopper_kernel("slow_writer");
  const auto reader = hopper_kernel("dependent_reader");
  const int n = 1 << 16;
  kiln::rt::DeviceBuffer<unsigned> mid(n), out(n), first(1);
  kiln::rt::Stream stream(dev);
  for (const bool programmatic : {false, true}) {
    CAPTURE(programmatic);
    mid.fill_bytes(0, stream);
    out.fill_bytes(0xff, stream);
    first.fill_bytes(0xff, stream);
    kiln::rt::LaunchConfig wc(4, 256);
    wc.stream = stream;
    // About 0.2 ms at 2 GHz: long enough for the reader's blocks to be scheduled meanwhile.
    writer.launch(wc, mid, n, static_cast<long long>(400000));
    kiln::rt::LaunchConfig rc(8, 256);
    rc.stream = stream;
    rc.programmatic = programmatic;
    reader.launch(rc, mid, out, n, first);
    stream.synchronize();
    const auto got = out.to_vector();
    int wrong = 0;
    for (int i = 0; i < n; ++i) wrong += got[std::size_t(i)] != unsigned(i) + 1u;
    CHECK(wrong == 0);  // the reader waited for every write
    // Ordinary: the reader began after the writer ended (in[0] written); programmatic: while
    // it spun (in[0] still 0).
    CHECK(first.to_vector()[0] == (programmatic ? 0u : 1u));
  }
}

TEST_CASE("the driver says how many clusters run at once, and remembers it") {
  const auto& dev = kiln::rt::Device::current();
  if (!is_sm90(dev)) return;
  const auto k = hopper_kernel("cluster_pairs");
  const unsigned block[3] = {32u, 1u, 1u};
  const unsigned pair[3] = {2u, 1u, 1u}, four[3] = {4u, 1u, 1u};
  const int sms = dev.properties().multiprocessors;
  const int pairs = k.function().max_active_clusters(block, pair, 0);
  const int fours = k.function().max_active_clusters(block, four, 0);
  MESSAGE(pairs << " clusters of 2 and " << fours << " of 4 of a small block at once on " << sms
                << " multiprocessors");
  CHECK(pairs >= sms / 2);  // several small blocks fit on each multiprocessor
  CHECK(fours >= 1);
  CHECK(k.function().max_active_clusters(block, pair, 0) == pairs);  // remembered
  // Blocks of most of the shared memory: one a multiprocessor, so at most one pair per two.
  const unsigned wide[3] = {128u, 1u, 1u};
  const auto big = std::size_t(dev.properties().shared_per_block_optin) - 1024;
  kiln::rt::Function f = k.function();
  f.set_max_dynamic_shared(int(big));
  const int big_pairs = f.max_active_clusters(wide, pair, big);
  MESSAGE(big_pairs << " clusters of 2 blocks of " << big << " bytes of shared memory at once");
  CHECK(big_pairs >= 1);
  CHECK(big_pairs <= sms / 2);
}

int main(int argc, char** argv) {
  if (kiln::rt::device_count() == 0) {
    std::printf("no GPU: hopper_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
