#pragma once
// What benchmarks/softmax and benchmarks/norm share: f16 / bf16 / f32 rows as bytes on the
// host (random inputs, decoding for spot checks), their --shapes / --dtypes lists, a
// result's GB/s by name, and the copy kernel of --copy-kernel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kiln/gen/dtype.hpp"
#include "kiln/jit.hpp"
#include "kiln/prof.hpp"
#include "kiln/rt.hpp"

namespace bench {

/// The value at `p`, stored as `dt` (f16: normal numbers, as make_input gives).
inline float decode(kiln::gen::DType dt, const unsigned char* p) {
  if (dt == kiln::gen::DType::f32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  std::uint16_t b;
  std::memcpy(&b, p, 2);
  if (dt == kiln::gen::DType::bf16) {
    const std::uint32_t bits = std::uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  const int e = (b >> 10) & 31, m = b & 1023;
  const float v = e == 0 ? std::ldexp(float(m), -24) : std::ldexp(float(m | 1024), e - 25);
  return (b & 0x8000) ? -v : v;
}

/// `n` random values of dtype `dt` as bytes, from `seed`: f32 in [-2, 2), f16 and bf16 in
/// +-[0.5, 2).
inline std::vector<unsigned char> make_input(kiln::gen::DType dt, std::size_t n,
                                             std::uint32_t seed = 12345) {
  const std::size_t esize = std::size_t(kiln::gen::size_of(dt));
  std::vector<unsigned char> out(n * esize);
  std::uint32_t state = seed;
  for (std::size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    const std::uint32_t r = state >> 8;
    if (dt == kiln::gen::DType::f32) {
      const float f = float(r) / float(1u << 24) * 4.0f - 2.0f;
      std::memcpy(&out[i * 4], &f, 4);
    } else {
      // sign, exponent of 1.0 or 0.5, random mantissa: +-[0.5, 2)
      const std::uint16_t b = dt == kiln::gen::DType::f16 ? std::uint16_t(0x3800 | (r & 0x87ff))
                                                          : std::uint16_t(0x3f00 | (r & 0x80ff));
      std::memcpy(&out[i * 2], &b, 2);
    }
  }
  return out;
}

inline std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
  return out;
}

/// GB/s of the result named `name` (0 where there is none).
inline double gbps_of(const std::vector<kiln::prof::Result>& rs, const std::string& name) {
  for (const auto& r : rs) {
    if (r.name == name) return r.gbps();
  }
  return 0;
}

/// Whether a result of a run is one of its peers (the driver's copy, the copy kernel,
/// cuDNN) rather than one of kiln's kernels (a sweep's best is kiln's).
inline bool is_peer(const std::string& name) {
  return name == "copy" || name == "copy kernel" || name == "cudnn";
}

/// The fastest of kiln's kernels in `results` (a sweep's candidates, the peers left out),
/// or `name` at `gbps` (the factory's choice) where none is faster: its name and GB/s.
inline std::pair<std::string, double> best_kernel(const std::vector<kiln::prof::Result>& results,
                                                  std::string name, double gbps) {
  for (const auto& r : results) {
    if (!is_peer(r.name) && r.gbps() > gbps) {
      name = r.name;
      gbps = r.gbps();
    }
  }
  return {name, gbps};
}

/// With --copy-kernel: kiln's GB/s (`kiln_gbps`) as a share of the copy kernel's in
/// `results`, as the last cell of the summary's last row (which ends with its newline) and
/// as `problem`'s copy_kernel_gbps and percent_of_copy_kernel.
inline void add_copy_kernel_share(std::string& summary, nlohmann::json& problem, double kiln_gbps,
                                  const std::vector<kiln::prof::Result>& results) {
  const double copy_kernel_gbps = gbps_of(results, "copy kernel");
  summary.pop_back();  // the row's newline
  summary += fmt::format(" {:.1f}% |\n", 100 * kiln_gbps / copy_kernel_gbps);
  problem["copy_kernel_gbps"] = copy_kernel_gbps;
  problem["percent_of_copy_kernel"] = 100 * kiln_gbps / copy_kernel_gbps;
}

/// A markdown table's first two lines: `columns` ("| a | b |"), with a column "% of copy
/// kernel" after them where `copy_kernel`, and the rule under them.
inline std::string table_header(std::string columns, bool copy_kernel) {
  if (copy_kernel) columns += " % of copy kernel |";
  std::string rule = "|";
  for (std::size_t i = 1; i < columns.size(); ++i) {
    if (columns[i] == '|') rule += " --- |";
  }
  return columns + "\n" + rule + "\n";
}

/// A plain streaming copy, compiled and launched through kiln (`--copy-kernel`): 4 blocks of
/// 256 threads an SM walk the bytes in 16-byte vectors, each thread loading 8 before it
/// stores them. The driver's device-to-device copy ("copy", the peer the "% of copy"
/// columns divide by) may move bytes faster than an ordinary kernel does; this one shows,
/// in the same run, what an ordinary kernel's loads and stores reach on the same bytes.
class CopyKernel {
 public:
  explicit CopyKernel(const kiln::rt::Device& device)
      : kernel_(kiln::kernel(kiln::jit::Program{"kiln_bench_copy.cu", source, {}, {}},
                             "kiln_bench_copy", {}, device)),
        grid_(unsigned(4 * std::max(device.properties().multiprocessors, 1))) {}

  /// Copies `bytes` from `from` to `to` (device pointers, 16-byte aligned) on `stream`.
  void operator()(const void* from, void* to, std::size_t bytes, kiln::rt::StreamRef stream) const {
    kernel_(kiln::rt::Dim3(grid_), kiln::rt::Dim3(threads), stream,
            static_cast<const unsigned char*>(from), static_cast<unsigned char*>(to),
            static_cast<long long>(bytes));
  }

 private:
  static constexpr int threads = 256;  // (at most the kernel's launch bounds)
  static constexpr const char* source = R"(
#include "kiln/device/block.hpp"
#include "kiln/device/thread.hpp"
struct alignas(16) kiln_bench_v16 { unsigned w[4]; };
KILN_KERNEL void KILN_LAUNCH_BOUNDS(256, 1)
    kiln_bench_copy(const unsigned char* from, unsigned char* to, long long bytes) {
  const kiln_bench_v16* x = reinterpret_cast<const kiln_bench_v16*>(from);
  kiln_bench_v16* y = reinterpret_cast<kiln_bench_v16*>(to);
  const long long t = kiln::block_size(), n = bytes / 16, step = kiln::grid_size() * t * 8;
  for (long long i = kiln::block_index() * t * 8 + kiln::thread_index(); i < n; i += step) {
    kiln_bench_v16 v[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (i + j * t < n) v[j] = x[i + j * t];
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (i + j * t < n) y[i + j * t] = v[j];
    }
  }
  if (kiln::block_index() == 0) {  // the bytes after the last whole vector
    for (long long b = n * 16 + kiln::thread_index(); b < bytes; b += t) to[b] = from[b];
  }
}
)";
  kiln::rt::JitKernel kernel_;
  unsigned grid_;
};

}  // namespace bench
