// The sm_80 device primitives, each alone on a GPU: cp.async tile copies through a
// multi-stage ring with zero-fill at ragged edges (tests/device/async_kernel.cu); ldmatrix
// against a plain element-wise fragment load; one mma.sync m16n8k16 (f16 and bf16) against
// the CPU, its accumulator stored through typed coordinates; kiln/device/half.hpp's pair
// conversions against its element-by-element ones. Every result is checked against a
// double-precision CPU reference on fresh random data (or bit for bit), the output poisoned
// first.
// Skips (exit 77) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/rt.hpp"

namespace {

std::string read_source(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  REQUIRE_MESSAGE(!s.str().empty(), "cannot read " << path);
  return s.str();
}

std::vector<float> random_floats(std::size_t n) {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace

TEST_CASE("cp.async through a 3-stage ring, zero-filled at ragged edges, sums every tile") {
  const kiln::jit::Program program{
      "async_kernel.cu", read_source(KILN_SOURCE_DIR "/tests/device/async_kernel.cu"), {}, {}};
  const auto k = kiln::kernel(program, "kiln_async_tile_sum");
  constexpr unsigned shared = 3 * 64 * 32 * 4 + 8 * 32 * 4;  // shared_bytes<Staged, Swizzled>()
  // Rows ragged against the 64-row tiles, columns against the 32-column tiles; a row stays
  // a multiple of 16 bytes, as cp.async's 16-byte copies need.
  for (auto [rows, cols] : {std::pair{64, 32}, {100, 68}, {1, 4}, {200, 132}}) {
    CAPTURE(rows);
    CAPTURE(cols);
    const auto in = random_floats(std::size_t(rows) * std::size_t(cols));
    kiln::rt::DeviceBuffer<float> d_in(in.size());
    d_in.copy_from(in);
    const int blocks = (rows + 63) / 64;
    kiln::rt::DeviceBuffer<float> d_out{std::size_t(blocks)};
    d_out.fill_bytes(0xff);
    k.launch(kiln::rt::LaunchConfig(blocks, 128, shared), d_in, d_out, rows, cols);
    const auto out = d_out.to_vector();
    auto at = [&](int r, int c) -> double {
      return r < rows && c < cols ? double(in[std::size_t(r) * std::size_t(cols) + std::size_t(c)])
                                  : 0.0;
    };
    for (int b = 0; b < blocks; ++b) {
      double want = 0;
      for (int r = 64 * b; r < 64 * b + 64; ++r) {
        for (int c = 0; c < cols; ++c) want += at(r, c);
      }
      // The swizzled (I:8, K:32) extra tile: thread t adds element (t % 8, t / 8 % 32).
      for (int t = 0; t < 128; ++t) want += at(64 * b + t % 8, t / 8 % 32);
      CHECK_MESSAGE(std::abs(double(out[std::size_t(b)]) - want) <= 1e-4 * (1 + std::abs(want)),
                    "block " << b << ": " << out[std::size_t(b)] << ", want " << want);
    }
  }
}

namespace {

// One warp: A (I:16, K:16) and B (K:16, J:8) from global f32 into shared f16 or bf16 tiles;
// A's fragment by ldmatrix and by a plain load, both written back through their coordinates;
// B's by ldmatrix (.trans: J is contiguous); C = A B by one mma.sync, stored typed.
const char* mma_source = R"(
#include "kiln/device.hpp"
#include "kiln/device/half.hpp"
#include "kiln/device/ldmatrix.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
using namespace kiln;
using GA = Tensor<const float, Extent<I, 16>, Extent<K, 16>>;
using GB = Tensor<const float, Extent<K, 16>, Extent<J, 8>>;
using GC = Tensor<float, Extent<I, 16>, Extent<J, 8>>;
using OA = Tensor<float, Extent<I, 16>, Extent<K, 16>>;

template <class T>
__device__ void run(const float* a_in, const float* b_in, float* c_out, float* a_ld,
                    float* a_plain) {
  alignas(16) __shared__ T sa_data[16 * 16];
  alignas(16) __shared__ T sb_data[16 * 8];
  const Tensor<T, Extent<I, 16>, Extent<K, 16>> sa(sa_data);
  const Tensor<T, Extent<K, 16>, Extent<J, 8>> sb(sb_data);
  const GA ga(a_in);
  const GB gb(b_in);
  for (int x = thread_index(); x < 256; x += 32) *sa[I(x / 16) + K(x % 16)] = T(*ga[I(x / 16) + K(x % 16)]);
  for (int x = thread_index(); x < 128; x += 32) *sb[K(x / 8) + J(x % 8)] = T(*gb[K(x / 8) + J(x % 8)]);
  __syncwarp();
  MmaA<T, I, K> a, a2;
  MmaB<T, K, J> b;
  MmaC<float, I, J> acc{};
  ldmatrix_fragment(a, sa);
  load_fragment(a2, sa);
  ldmatrix_fragment(b, sb);
  mma(acc, a, b, acc);
  store_fragment(acc, GC(c_out));
  store_fragment(a, OA(a_ld));
  store_fragment(a2, OA(a_plain));
}
extern "C" __global__ void mma_f16(const float* a, const float* b, float* c, float* l, float* p) {
  run<kiln::f16>(a, b, c, l, p);
}
extern "C" __global__ void mma_bf16(const float* a, const float* b, float* c, float* l, float* p) {
  run<kiln::bf16>(a, b, c, l, p);
}
)";

// Values k / 4 with |k| <= 8: exact in f16 and bf16, and their 16-term dot products exact
// in f32, so the check is exact.
std::vector<float> exact_values(std::size_t n) {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> dist(-8, 8);
  std::vector<float> v(n);
  for (auto& x : v) x = float(dist(rng)) / 4.0f;
  return v;
}

}  // namespace

TEST_CASE("ldmatrix matches a plain fragment load, and mma.sync m16n8k16 matches the CPU") {
  const auto& dev = kiln::rt::Device::current();
  if (dev.properties().compute_major < 8) {
    MESSAGE("mma.sync and ldmatrix need sm_80; this device is " << dev.arch());
    return;
  }
  const kiln::jit::Program program{"mma_primitives.cu", mma_source, {}, {}};
  for (const char* kernel : {"mma_f16", "mma_bf16"}) {
    CAPTURE(kernel);
    const auto k = kiln::kernel(program, kernel);
    for (int round = 0; round < 4; ++round) {
      const auto a = exact_values(16 * 16), b = exact_values(16 * 8);
      kiln::rt::DeviceBuffer<float> d_a(a.size()), d_b(b.size()), d_c(16 * 8), d_ld(256),
          d_plain(256);
      d_a.copy_from(a);
      d_b.copy_from(b);
      for (auto* out : {&d_c, &d_ld, &d_plain}) out->fill_bytes(0xff);
      k.launch(1, 32, d_a, d_b, d_c, d_ld, d_plain);
      const auto c = d_c.to_vector(), ld = d_ld.to_vector(), plain = d_plain.to_vector();
      int wrong = 0;
      for (std::size_t x = 0; x < 256; ++x) {
        wrong += !(ld[x] == a[x]) + !(plain[x] == a[x]);  // NaN (unwritten) never passes
      }
      for (int i = 0; i < 16; ++i) {
        for (int j = 0; j < 8; ++j) {
          double want = 0;
          for (int kk = 0; kk < 16; ++kk) {
            want += double(a[std::size_t(i * 16 + kk)]) * double(b[std::size_t(kk * 8 + j)]);
          }
          wrong += !(double(c[std::size_t(i * 8 + j)]) == want);
        }
      }
      CHECK(wrong == 0);
    }
  }
}

namespace {

// kiln/device/half.hpp's pair conversions against its element-by-element ones: every
// 16-bit pattern of f16 and bf16 to float (words[i] holds patterns 2i and 2i + 1), and
// floats of every kind (random bit patterns, zeros, infinities, NaNs, subnormals, halfway
// cases) rounded back.
const char* conversion_source = R"(
#include "kiln/device.hpp"
#include "kiln/device/half.hpp"
template <class T>
__device__ void run(const kiln::Vec<T, 2>* words, const float* floats, unsigned* to_pair,
                    unsigned* to_elem, kiln::Vec<T, 2>* from_pair, kiln::Vec<T, 2>* from_elem,
                    int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  const kiln::Vec<T, 2> v = words[i];
  float lo, hi;
  kiln::to_float_pair(v.v, 0, lo, hi);
  to_pair[2 * i] = __float_as_uint(lo);
  to_pair[2 * i + 1] = __float_as_uint(hi);
  to_elem[2 * i] = __float_as_uint(kiln::to_float(v[0]));
  to_elem[2 * i + 1] = __float_as_uint(kiln::to_float(v[1]));
  kiln::Vec<T, 2> p, e;
  kiln::from_float_pair(floats[2 * i], floats[2 * i + 1], p.v, 0);
  kiln::from_float(floats[2 * i], e[0]);
  kiln::from_float(floats[2 * i + 1], e[1]);
  from_pair[i] = p;
  from_elem[i] = e;
}
extern "C" __global__ void convert_f16(const kiln::Vec<kiln::f16, 2>* w, const float* f,
                                       unsigned* tp, unsigned* te, kiln::Vec<kiln::f16, 2>* fp,
                                       kiln::Vec<kiln::f16, 2>* fe, int n) {
  run<kiln::f16>(w, f, tp, te, fp, fe, n);
}
extern "C" __global__ void convert_bf16(const kiln::Vec<kiln::bf16, 2>* w, const float* f,
                                        unsigned* tp, unsigned* te, kiln::Vec<kiln::bf16, 2>* fp,
                                        kiln::Vec<kiln::bf16, 2>* fe, int n) {
  run<kiln::bf16>(w, f, tp, te, fp, fe, n);
}
)";

}  // namespace

TEST_CASE("16-bit pairs convert as their elements do: every pattern, every kind of float") {
  constexpr int n = 32768;  // words: 65536 patterns
  std::vector<std::uint32_t> words(n);
  for (std::uint32_t i = 0; i < std::uint32_t(n); ++i) words[i] = (2 * i) | ((2 * i + 1) << 16);
  std::vector<std::uint32_t> bits(2 * std::size_t(n));
  std::mt19937 rng(std::random_device{}());
  for (auto& b : bits) b = std::uint32_t(rng());
  const std::uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                   0xffc00001u, 0x7f800001u, 0x7fbfffffu, 0x00000001u, 0x807fffffu,
                                   0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f80ffffu, 0x477ff000u,
                                   0x477fefffu, 0x47800000u, 0x33000000u, 0x33000001u, 0xb3800000u,
                                   0x387fc000u, 0x7f7fffffu, 0xff7f8000u, 0x3f801000u};
  for (std::size_t s = 0; s < std::size(special); ++s) {
    bits[s] = special[s];  // each also beside a random one, in both halves of a pair
    bits[2 * std::size(special) + 2 * s + 1] = special[s];
  }
  std::vector<float> floats(bits.size());
  std::memcpy(floats.data(), bits.data(), bits.size() * 4);
  const kiln::jit::Program program{"conversions.cu", conversion_source, {}, {}};
  for (const char* kernel : {"convert_f16", "convert_bf16"}) {
    CAPTURE(kernel);
    const bool bf16 = std::string(kernel) == "convert_bf16";
    const auto k = kiln::kernel(program, kernel);
    kiln::rt::DeviceBuffer<std::uint32_t> d_words(words.size()), d_to_pair(bits.size()),
        d_to_elem(bits.size()), d_from_pair(words.size()), d_from_elem(words.size());
    kiln::rt::DeviceBuffer<float> d_floats(floats.size());
    d_words.copy_from(words);
    d_floats.copy_from(floats);
    for (auto* out : {&d_to_pair, &d_to_elem, &d_from_pair, &d_from_elem}) out->fill_bytes(0xa5);
    k.launch((n + 255) / 256, 256, d_words, d_floats, d_to_pair, d_to_elem, d_from_pair,
             d_from_elem, n);
    const auto to_pair = d_to_pair.to_vector(), to_elem = d_to_elem.to_vector();
    const auto from_pair = d_from_pair.to_vector(), from_elem = d_from_elem.to_vector();
    int wrong_to = 0, wrong_from = 0;
    for (std::size_t x = 0; x < to_pair.size(); ++x) wrong_to += to_pair[x] != to_elem[x];
    // Rounded back: the same 16 bits, or both NaN (a NaN's payload may differ).
    auto is_nan = [&](std::uint32_t h) {
      return bf16 ? (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0
                  : (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
    };
    for (std::size_t x = 0; x < from_pair.size(); ++x) {
      for (int half : {0, 16}) {
        const std::uint32_t p = (from_pair[x] >> half) & 0xffffu,
                            e = (from_elem[x] >> half) & 0xffffu;
        wrong_from += !(p == e || (is_nan(p) && is_nan(e)));
      }
    }
    CHECK(wrong_to == 0);
    CHECK(wrong_from == 0);
    // The element-by-element conversion is what the host expects: patterns 1.0 and -2.0.
    CHECK(to_elem[bf16 ? 0x3f80 : 0x3c00] == 0x3f800000u);
    CHECK(to_elem[0xc000] == 0xc0000000u);  // -2.0 in both
  }
}

int main(int argc, char** argv) {
  if (kiln::rt::device_count() == 0) {
    std::printf("no GPU: primitives_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
