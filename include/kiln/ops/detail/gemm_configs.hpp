#pragma once
/// The CPU side of kiln's tensor-core GEMM (kernels/gemm_sm80.cu): its problem (GemmParams),
/// its configs (GemmConfig), which configs exist for a problem on a device, the heuristic
/// choice, kernel names and the generated header. No GPU is touched here;
/// include/kiln/ops/gemm.hpp puts these together as a kernel factory.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../error.hpp"
#include "../../factory/gen_json.hpp"
#include "../../factory/hash.hpp"
#include "../../gen/names.hpp"
#include "../../gen/spec.hpp"
#include "../../rt/device.hpp"

namespace kiln::ops {

/// How A and B are stored, BLAS-style: the first letter is op(A), the second op(B); `n`
/// is as written, `t` transposed. All four are row-major arrays:
///   nn  A (M, K), B (K, N)      nt  A (M, K), B (N, K)
///   tn  A (K, M), B (K, N)      tt  A (K, M), B (N, K)
/// C is always (M, N), row-major.
enum class GemmLayout : std::int32_t { nn, nt, tn, tt };
NLOHMANN_JSON_SERIALIZE_ENUM(GemmLayout, {{GemmLayout::nn, "nn"},
                                          {GemmLayout::nt, "nt"},
                                          {GemmLayout::tn, "tn"},
                                          {GemmLayout::tt, "tt"}})

inline const char* to_string(GemmLayout l) {
  switch (l) {
    case GemmLayout::nn:
      return "nn";
    case GemmLayout::nt:
      return "nt";
    case GemmLayout::tn:
      return "tn";
    default:
      return "tt";
  }
}

/// The tensor-core instructions (and kernel) of a config: mma.sync fed by cp.async
/// (kernels/gemm_sm80.cu, sm_80 and later), or wgmma fed by TMA with warp-specialized
/// producer and consumer warp groups (kernels/gemm_sm90.cu, sm_90 only; compiled for
/// sm_90a).
enum class GemmPath : std::int32_t { mma_sync, wgmma };
NLOHMANN_JSON_SERIALIZE_ENUM(GemmPath,
                             {{GemmPath::mma_sync, "mma_sync"}, {GemmPath::wgmma, "wgmma"}})

/// How one GEMM kernel is shaped: a block computes a block_m x block_n tile of C, walking K
/// block_k at a time through a ring of `stages` shared-memory tiles; blocks walk group_m
/// block rows together (L2 reuse of B's tiles). mma_sync: warps_m x warps_n warps split
/// the tile. wgmma: `consumers` warp groups (1 to 3; three only in tiles of at most 64 x 128
/// each, as 192 x 128) split it by rows and one more warp
/// group copies (block_k is 64; warps_m and warps_n are 0); blocks are persistent, at most
/// one per SM; split_k blocks of a cluster may share a tile along K, or cluster_m blocks of a
/// cluster take tiles adjacent along M and share B's tiles, each copying a part of every
/// stage of B into both blocks (TMA multicast). A zero block_m means "not set"
/// (GemmParams::config).
struct GemmConfig {
  std::int32_t block_m = 0;
  std::int32_t block_n = 0;
  std::int32_t block_k = 0;
  std::int32_t warps_m = 0;
  std::int32_t warps_n = 0;
  std::int32_t stages = 0;
  std::int32_t group_m = 0;
  GemmPath path = GemmPath::mma_sync;
  std::int32_t consumers = 0;
  /// wgmma: blocks (a thread-block cluster) that share each tile, each taking a part of K
  /// (1, 2 or 4); block 0 adds the parts through distributed shared memory.
  std::int32_t split_k = 1;
  /// wgmma: blocks of a cluster (1, 2 or 4) that take tiles adjacent along M, B's tiles
  /// copied once for all by TMA multicast, each block a part (split_k 1, any layout; the
  /// candidates have 2 blocks, 4 are pinned only). Candidates only for problems of at most
  /// one wave of 128 x 128 tiles (measured slower on bigger ones).
  std::int32_t cluster_m = 1;
  bool operator==(const GemmConfig&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GemmConfig, block_m, block_n, block_k, warps_m,
                                                warps_n, stages, group_m, path, consumers, split_k,
                                                cluster_m)

/// C = epilogue(alpha * op(A) op(B) + beta * C), with A and B of `in` (f16 or bf16), C of
/// `out` (f16, bf16 or f32), f32 accumulation. m, n and k are the problem's: the kernel
/// takes them at run time, so one compiled config serves every size; the factory keeps
/// one choice (and one tuning) per exact size.
struct GemmParams {
  gen::DType in = gen::DType::f16;
  gen::DType out = gen::DType::f32;
  GemmLayout layout = GemmLayout::nn;
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  /// The epilogue compiled into the kernel (empty name and code: none); see GemmEpilogue.
  std::string epilogue_name{};
  std::string epilogue_code{};
  std::int32_t epilogue_args_bytes = 0;
  /// A config to use without choosing (block_m == 0: the factory chooses).
  GemmConfig config{};
  bool operator==(const GemmParams&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(GemmParams, in, out, layout, m, n, k, epilogue_name,
                                   epilogue_code, epilogue_args_bytes, config)

namespace detail {

/// Bytes of run-time arguments an epilogue may take (the kernel's argument blob).
inline constexpr int gemm_epilogue_args_capacity = 128;

inline bool gemm_a_transposed(GemmLayout l) {
  return l == GemmLayout::tn || l == GemmLayout::tt;
}
inline bool gemm_b_transposed(GemmLayout l) {
  return l == GemmLayout::nt || l == GemmLayout::tt;
}

/// Elements per row of A's and B's storage (their leading dimensions).
inline std::int64_t gemm_lda(const GemmParams& p) {
  return gemm_a_transposed(p.layout) ? p.m : p.k;
}
inline std::int64_t gemm_ldb(const GemmParams& p) {
  return gemm_b_transposed(p.layout) ? p.k : p.n;
}

/// Elements a copy of an operand's tiles moves, for rows of `ld` 16-bit elements: 8 (a
/// 16-byte cp.async) where every row is whole 16-byte vectors, else 4 or 2 (8- or 4-byte
/// copies: a row of 2500 elements is 5000 bytes, 8-byte aligned), else 1 (rows of an odd
/// length: element by element, correct and slower).
inline int gemm_vector(std::int64_t ld) {
  for (int v : {8, 4, 2}) {
    if (ld % v == 0) return v;
  }
  return 1;
}
inline int gemm_vector_a(const GemmParams& p) {
  return gemm_vector(gemm_lda(p));
}
inline int gemm_vector_b(const GemmParams& p) {
  return gemm_vector(gemm_ldb(p));
}

/// Whether every row of A and B is whole 16-byte vectors (8 elements), as TMA needs and
/// the fastest copies take.
inline bool gemm_aligned(const GemmParams& p) {
  return gemm_vector_a(p) == 8 && gemm_vector_b(p) == 8;
}

inline std::int64_t gemm_ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

/// Throws kiln::Error unless the GEMM supports `p`.
inline void validate_gemm(const GemmParams& p) {
  const std::string what = "kiln: gemm: ";
  if (p.in != gen::DType::f16 && p.in != gen::DType::bf16) {
    throw Error(what + "inputs of " + std::string(gen::to_string(p.in)) +
                " are not supported; A and B must be f16 or bf16");
  }
  if (p.out != gen::DType::f16 && p.out != gen::DType::bf16 && p.out != gen::DType::f32) {
    throw Error(what + "an output of " + std::string(gen::to_string(p.out)) +
                " is not supported; C must be f16, bf16 or f32");
  }
  if (p.layout < GemmLayout::nn || p.layout > GemmLayout::tt) {
    throw Error(what + "the layout " + std::to_string(int(p.layout)) +
                " is not one of nn, nt, tn, tt");
  }
  constexpr std::int64_t int_max = std::numeric_limits<std::int32_t>::max();
  for (auto [name, v] : {std::pair{"m", p.m}, {"n", p.n}, {"k", p.k}}) {
    if (v < 0 || v > int_max) {
      throw Error(what + name + " = " + std::to_string(v) + " is not supported; m, n and k " +
                  "must be 0 to 2147483647");
    }
  }
  // The kernel's tensors address their elements with 32-bit offsets.
  for (auto [name, rows, cols] : {std::tuple{"A", p.m, p.k}, {"B", p.k, p.n}, {"C", p.m, p.n}}) {
    if (rows * cols > int_max) {
      throw Error(what + name + " has " + std::to_string(rows) + " x " + std::to_string(cols) +
                  " elements, more than 2^31 - 1, which the kernel's 32-bit offsets reach; " +
                  "split the problem along M or N");
    }
  }
  if (!p.epilogue_name.empty() && !gen::is_identifier(p.epilogue_name)) {
    throw Error(what + "the epilogue name '" + p.epilogue_name +
                "' is not a C++ identifier (it becomes part of the kernel's name)");
  }
  if (p.epilogue_name.empty() != p.epilogue_code.empty()) {
    throw Error(what + "an epilogue needs both a name and its device code");
  }
  if (p.epilogue_args_bytes < 0 || p.epilogue_args_bytes > gemm_epilogue_args_capacity) {
    throw Error(what + "an epilogue's arguments take 0 to " +
                std::to_string(gemm_epilogue_args_capacity) + " bytes, not " +
                std::to_string(p.epilogue_args_bytes));
  }
}

/// Bytes of dynamic shared memory a config uses: the rings of A's and B's tiles (for
/// wgmma also the stages' barriers, the tiles through which 16-bit C leaves (two of 1 KiB a
/// consumer warp, kept whatever C's type: the config does not know it), and 1 KiB to align
/// the rings to the swizzle's period).
inline std::int64_t gemm_shared_bytes(const GemmConfig& c) {
  const std::int64_t rings = std::int64_t(c.block_m + c.block_n) * c.block_k * 2 * c.stages;
  if (c.path != GemmPath::wgmma) return rings;
  // + the stages' barriers, split K's barriers and sums, C's tiles (1024-byte aligned), 1 KiB
  // of alignment slack
  const std::int64_t sums = c.split_k > 1 ? std::int64_t(c.block_m) * c.block_n * 4 : 4;
  const std::int64_t out_tiles = 1024 + std::int64_t(c.consumers) * 4 * 2 * 1024;
  return rings + 16 * c.stages + 16 * c.consumers + 16 + sums + out_tiles + 1024;
}

inline int gemm_threads(const GemmConfig& c) {
  return c.path == GemmPath::wgmma ? 128 * (c.consumers + 1) : 32 * c.warps_m * c.warps_n;
}

/// Whether the wgmma kernel may serve `p` on `d`: an NVIDIA sm_90 device (wgmma is not in
/// later architectures' sm_90a code) and rows of A and B whose strides TMA takes (whole
/// 16-byte vectors).
inline bool gemm_wgmma_available(const GemmParams& p, const rt::DeviceProperties& d) {
  return d.platform == rt::Platform::cuda && d.compute_major == 9 && d.compute_minor == 0 &&
         gemm_aligned(p);
}

inline void validate_wgmma_config(const GemmConfig& c, const std::string& what) {
  auto one_of = [](std::int64_t v, std::initializer_list<std::int64_t> l) {
    return std::find(l.begin(), l.end(), v) != l.end();
  };
  if (!one_of(c.block_m, {64, 128, 192, 256}) || !one_of(c.block_n, {64, 128, 256})) {
    throw Error(what + "block_m must be 64, 128, 192 or 256 and block_n 64, 128 or 256");
  }
  if (c.block_k != 64) throw Error(what + "block_k must be 64 (one 128-byte swizzled row)");
  if (c.consumers < 1 || c.consumers > 3) {
    throw Error(what + "consumers must be 1, 2 or 3 (the kernel's consumer warp groups)");
  }
  if (c.block_m % (64 * c.consumers) != 0) {
    throw Error(what + "each consumer warp group owns whole 64-row accumulators: block_m must " +
                "be a multiple of 64 x consumers");
  }
  if (c.block_m / c.consumers / 64 * c.block_n > 256) {
    throw Error(what + "a consumer warp group would hold " +
                std::to_string(c.block_m / c.consumers * c.block_n / 128) +
                " accumulators a thread; at most 128 (block_m / consumers x block_n <= 16384)");
  }
  if (c.consumers == 3 && c.block_m / 3 * c.block_n > 64 * 128) {
    throw Error(what + "three consumer warp groups get 152 registers a thread (128 x (40 + 3 x " +
                "152) of the SM's 65536), room for 64 accumulators each, not " +
                std::to_string(c.block_m / 3 * c.block_n / 128) +
                ": block_m / 3 x block_n <= 8192 (192 x 128 tiles)");
  }
  if (c.warps_m != 0 || c.warps_n != 0) {
    throw Error(what + "warps_m and warps_n are 0 for wgmma configs (consumers split the tile)");
  }
  if (c.split_k != 1 && c.split_k != 2 && c.split_k != 4) {
    throw Error(what + "split_k must be 1, 2 or 4 (blocks of a cluster sharing a tile)");
  }
  if (c.cluster_m != 1 && c.cluster_m != 2 && c.cluster_m != 4) {
    throw Error(what + "cluster_m must be 1, 2 or 4 (blocks of a cluster sharing B's tiles)");
  }
  if (c.cluster_m > 1 && c.split_k != 1) {
    throw Error(what + "cluster_m " + std::to_string(c.cluster_m) +
                " takes split_k 1 (each block copies a part of every stage of B)");
  }
}

/// Throws kiln::Error unless the kernel can run config `c` (on a device with `shared_optin`
/// bytes of shared memory per block; 0: unchecked).
inline void validate_gemm_config(const GemmConfig& c, std::int64_t shared_optin = 0) {
  const std::string what = "kiln: gemm config " + nlohmann::json(c).dump() + ": ";
  if (c.path != GemmPath::mma_sync && c.path != GemmPath::wgmma) {
    throw Error(what + "the path must be mma_sync or wgmma");
  }
  if (c.stages < 2 || c.stages > 8) throw Error(what + "stages must be 2 to 8");
  if (c.group_m < 1) throw Error(what + "group_m must be positive");
  if (c.path == GemmPath::wgmma) {
    validate_wgmma_config(c, what);
    if (shared_optin > 0 && gemm_shared_bytes(c) > shared_optin) {
      throw Error(what + std::to_string(gemm_shared_bytes(c)) +
                  " bytes of shared memory exceed the device's " + std::to_string(shared_optin) +
                  " a block");
    }
    return;
  }
  if (c.consumers != 0) throw Error(what + "consumers is 0 for mma_sync configs");
  if (c.split_k != 1) throw Error(what + "split_k is 1 for mma_sync configs");
  if (c.cluster_m != 1) throw Error(what + "cluster_m is 1 for mma_sync configs");
  auto pow2 = [](std::int64_t v) { return v > 0 && (v & (v - 1)) == 0; };
  if (!pow2(c.block_m) || !pow2(c.block_n) || c.block_m < 16 || c.block_n < 32 || c.block_m > 256 ||
      c.block_n > 256) {
    throw Error(what + "block_m (16 to 256) and block_n (32 to 256) must be powers of 2");
  }
  if (c.block_k != 32 && c.block_k != 64) throw Error(what + "block_k must be 32 or 64");
  if (!pow2(c.warps_m) || !pow2(c.warps_n) || c.block_m % (16 * c.warps_m) != 0 ||
      c.block_n % (8 * c.warps_n) != 0) {
    throw Error(what +
                "warps_m and warps_n must be powers of 2 splitting the tile into warp "
                "tiles of whole 16 x 8 fragments");
  }
  if (gemm_threads(c) > 1024) throw Error(what + "at most 32 warps a block");
  // The swizzled tiles need rows of at least 32 elements whichever way they are stored.
  if (c.block_m < 32) throw Error(what + "block_m must be at least 32");
  if (c.stages < 2 || c.stages > 8) throw Error(what + "stages must be 2 to 8");
  if (c.group_m < 1) throw Error(what + "group_m must be positive");
  const int warp_m = c.block_m / c.warps_m, warp_n = c.block_n / c.warps_n;
  if (warp_m * warp_n / 32 > 128) {
    throw Error(what + "a warp tile of " + std::to_string(warp_m) + " x " + std::to_string(warp_n) +
                " holds more than 128 accumulators a thread");
  }
  if (shared_optin > 0 && gemm_shared_bytes(c) > shared_optin) {
    throw Error(what + std::to_string(gemm_shared_bytes(c)) +
                " bytes of shared memory exceed the device's " + std::to_string(shared_optin) +
                " a block");
  }
}

/// Every candidate config for `p` on `d`: block tiles of 64 x 64 up to 128 x 256 and
/// 256 x 128, block_k 32 or 64, 2 to 6 stages that fit the device's shared memory; tiles
/// far larger than the problem are left out (64 x 64 always stays). On sm_90 the wgmma
/// configs join them: 64 x 64 to 128 x 256 and 256 x 128 tiles with 1 or 2 consumer warp
/// groups, 192 x 128 with 3, 3 to 6 stages; clusters and split K where tiles are few. A
/// pinned config is the only candidate.
inline std::vector<GemmConfig> gemm_configs(const GemmParams& p, const rt::DeviceProperties& d) {
  const std::int64_t optin = d.shared_per_block_optin > 0 ? d.shared_per_block_optin : 48 * 1024;
  if (p.config.block_m != 0) {
    validate_gemm_config(p.config, optin);
    return {p.config};
  }
  struct Tile {
    int bm, bn, wm, wn;
  };
  static constexpr Tile tiles[] = {{128, 256, 2, 4}, {256, 128, 4, 2}, {128, 128, 2, 2},
                                   {128, 128, 2, 4}, {64, 128, 2, 2},  {128, 64, 2, 2},
                                   {64, 256, 1, 4},  {64, 64, 2, 2}};
  // A tile more than twice the problem along M or N only wastes work (64 x 64 always stays).
  auto wasteful = [&](int bm, int bn) {
    return !(bm == 64 && bn == 64) &&
           (bm > 2 * std::max<std::int64_t>(p.m, 32) || bn > 2 * std::max<std::int64_t>(p.n, 32));
  };
  std::vector<GemmConfig> out;
  for (const Tile& t : tiles) {
    if (wasteful(t.bm, t.bn)) continue;
    for (int bk : {32, 64}) {
      for (int stages = 2; stages <= 6; ++stages) {
        GemmConfig c{t.bm, t.bn, bk, t.wm, t.wn, stages, 8};
        if (gemm_shared_bytes(c) > optin) continue;
        // Rings deeper than 3 stages only while the stages in flight hold <= 160 KiB.
        if (stages > 3 && gemm_shared_bytes(c) / stages * (stages - 1) > 160 * 1024) continue;
        out.push_back(c);
      }
    }
  }
  if (gemm_wgmma_available(p, d)) {
    struct WgTile {
      int bm, bn, consumers;
    };
    static constexpr WgTile wg_tiles[] = {{128, 256, 2}, {256, 128, 2}, {192, 128, 3},
                                          {128, 128, 2}, {128, 128, 1}, {64, 256, 1},
                                          {128, 64, 2},  {64, 128, 1},  {64, 64, 1}};
    // `c` with each ring of `first` to 6 stages that fits the device.
    auto add_stages = [&](GemmConfig c, int first) {
      for (c.stages = first; c.stages <= 6; ++c.stages) {
        if (gemm_shared_bytes(c) <= optin) out.push_back(c);
      }
    };
    for (const WgTile& t : wg_tiles) {
      if (!wasteful(t.bm, t.bn))
        add_stages({t.bm, t.bn, 64, 0, 0, 0, 8, GemmPath::wgmma, t.consumers}, 3);
    }
    const std::int64_t sms = d.multiprocessors > 0 ? d.multiprocessors : 132;
    // Clusters of 2 block rows sharing B's stages (TMA multicast, any layout) where
    // 128 x 128 tiles make at most one wave: there the SMs wait on L2 for small tiles'
    // stages, and half of B's copies go (1000^3 f16 on an H200: 64 x 128 tiles from 14.4
    // to 12.1 us; nt 0.78x to 0.83x of cuBLAS, tt 0.72x to 0.81x). On bigger problems
    // they were slower (4096^3: 0.219 against 0.202 ms for 128 x 256 tiles), so they are
    // left out there.
    const std::int64_t tiles_128 = gemm_ceil_div(std::max<std::int64_t>(p.m, 1), 128) *
                                   gemm_ceil_div(std::max<std::int64_t>(p.n, 1), 128);
    if (tiles_128 <= sms) {
      for (const WgTile& t : wg_tiles) {
        if (t.bn == 128 && t.bm <= 128 && !wasteful(t.bm, t.bn)) {
          add_stages({t.bm, t.bn, 64, 0, 0, 0, 8, GemmPath::wgmma, t.consumers, 1, 2}, 4);
        }
      }
    }
    // Split K where the tiles leave SMs idle and each part keeps at least 4 K tiles: tiles
    // of up to 128 x 128, clusters of 2 or 4 blocks.
    for (const WgTile& t : wg_tiles) {
      if (t.bm * t.bn > 128 * 128) continue;
      const std::int64_t count = gemm_ceil_div(std::max<std::int64_t>(p.m, 1), t.bm) *
                                 gemm_ceil_div(std::max<std::int64_t>(p.n, 1), t.bn);
      for (int split : {2, 4}) {
        if (count * split > 2 * sms || gemm_ceil_div(p.k, 64) < 4 * split) continue;
        add_stages({t.bm, t.bn, 64, 0, 0, 0, 8, GemmPath::wgmma, t.consumers, split}, 4);
      }
    }
  }
  return out;
}

/// The config taken untimed (KILN_TUNE=off): of a few tile shapes, the one with the least
/// estimated time, (rounds of blocks over the SMs) x (the tile's area x blocks resident
/// per SM) / (split K) / (its relative rate). Resident blocks and rates are fitted to
/// sweeps of every config on an H200 (benchmarks/gemm --sweep). mma_sync (sm_80 to sm_89):
/// at 8192^3, 128 x 14336 x 4096 and 1000^3; big problems take 128 x 256 tiles, problems of
/// about one wave of 128 x 128 tiles take those with a deep ring, small ones 64 x 64.
/// wgmma (sm_90): at 128 x 4096 x {4096, 14336}, 1000^3 and 1024 x 14336 x 4096; 128 x 256
/// tiles where they fill the last wave about as well as 128 x 128 ones, else 128 x 128, and
/// K split over clusters of 2 for few rows and a long K (128 x 64 tiles: on 27 problems
/// tuned on an H200, 128 x 4096 x 4096 and x 14336 ran 11% and 14% faster with them than
/// with 64 x 128, and no other choice changed; the choices averaged 1.4% slower than the
/// best of every candidate, at most 9%); 64 x 128 tiles in clusters of 2 block rows sharing
/// B where they are candidates (at most one wave of 128 x 128 tiles: 1000^3 f16 12.3 us
/// against 13.3 us for 128 x 128 tiles alone).
inline GemmConfig gemm_heuristic(const GemmParams& p, const std::vector<GemmConfig>& candidates,
                                 const rt::DeviceProperties& d) {
  if (candidates.size() == 1) return candidates.front();
  const std::int64_t sms = d.multiprocessors > 0 ? d.multiprocessors : 108;
  struct Choice {
    GemmConfig config;
    int resident;  // blocks an SM holds at once (registers and shared memory)
    double rate;   // relative throughput per SM
  };
  constexpr GemmPath mma = GemmPath::mma_sync, wg = GemmPath::wgmma;
  static const Choice choices[] = {
      {{128, 256, 64, 2, 4, 3, 8, mma, 0}, 1, 1.00},
      {{128, 128, 64, 2, 4, 6, 8, mma, 0}, 1, 0.96},
      {{128, 128, 32, 2, 2, 3, 8, mma, 0}, 2, 0.97},
      {{256, 128, 64, 4, 2, 3, 8, mma, 0}, 1, 0.96},
      {{64, 128, 64, 2, 2, 4, 8, mma, 0}, 2, 0.75},
      {{128, 64, 64, 2, 2, 4, 8, mma, 0}, 2, 0.74},
      {{64, 64, 64, 2, 2, 4, 8, mma, 0}, 2, 0.60},
      // wgmma (persistent: one block an SM, rounds of tiles over the SMs)
      {{128, 256, 64, 0, 0, 4, 8, wg, 2}, 1, 1.90},
      {{128, 128, 64, 0, 0, 6, 8, wg, 2}, 1, 1.85},
      {{64, 128, 64, 0, 0, 6, 8, wg, 1}, 1, 0.85},
      // clusters of 2 block rows sharing B's stages (candidates for about one wave)
      {{64, 128, 64, 0, 0, 6, 8, wg, 1, 1, 2}, 1, 1.00},
      // split K: a cluster of split_k blocks a tile, each with 1 / split_k of K
      {{128, 128, 64, 0, 0, 4, 8, wg, 2, 2}, 1, 0.90},
      {{128, 64, 64, 0, 0, 6, 8, wg, 2, 2}, 1, 0.67},
      {{64, 128, 64, 0, 0, 6, 8, wg, 1, 2}, 1, 0.60},
      {{64, 128, 64, 0, 0, 6, 8, wg, 1, 4}, 1, 0.50}};
  const GemmConfig* best = nullptr;
  double best_cost = 0;
  for (const Choice& ch : choices) {
    const GemmConfig* found = nullptr;
    for (const auto& c : candidates) {
      if (c == ch.config) found = &c;
    }
    if (!found) continue;
    const int bm = ch.config.block_m, bn = ch.config.block_n;
    const int split = ch.config.split_k;
    const std::int64_t blocks =
        std::max<std::int64_t>(1, gemm_ceil_div(p.m, bm) * gemm_ceil_div(p.n, bn)) * split;
    const double rounds = double(gemm_ceil_div(blocks, sms * ch.resident));
    const double cost = rounds * double(bm) * double(bn) * ch.resident / split / ch.rate;
    if (!best || cost < best_cost) {
      best = found;
      best_cost = cost;
    }
  }
  return best ? *best : candidates.front();
}

/// "gemm__f16_f32__nn__128x256x64_w2x4_s3_g8" (wgmma: "gemm__f16_f16__nn__wg128x256x64_c2_s4_g8",
/// "_k2" for split K, "_m2" for clusters of 2 on block rows), with "__vAB" when A's or B's rows
/// are not whole 16-byte vectors (A and B the elements a copy of each moves: "__v44" for
/// 2500^3 in f16) and "__epi_NAME" for an epilogue.
inline std::string gemm_kernel_name(const GemmParams& p, const GemmConfig& c) {
  const std::string shape =
      std::to_string(c.block_m) + "x" + std::to_string(c.block_n) + "x" + std::to_string(c.block_k);
  const std::string split =
      c.path == GemmPath::wgmma
          ? "_c" + std::to_string(c.consumers) +
                (c.split_k > 1 ? "_k" + std::to_string(c.split_k) : std::string()) +
                (c.cluster_m > 1 ? "_m" + std::to_string(c.cluster_m) : std::string())
          : "_w" + std::to_string(c.warps_m) + "x" + std::to_string(c.warps_n);
  std::string name = "gemm__" + std::string(gen::to_string(p.in)) + "_" +
                     std::string(gen::to_string(p.out)) + "__" + to_string(p.layout) + "__" +
                     (c.path == GemmPath::wgmma ? "wg" : "") + shape + split + "_s" +
                     std::to_string(c.stages) + "_g" + std::to_string(c.group_m);
  // Rows not whole 16-byte vectors: the elements each copy of A's and B's tiles moves.
  if (!gemm_aligned(p)) {
    name += "__v" + std::to_string(gemm_vector_a(p)) + std::to_string(gemm_vector_b(p));
  }
  if (!p.epilogue_name.empty()) name += "__epi_" + p.epilogue_name;
  return name;
}

/// The header kernels/gemm_sm80.cu includes as "spec.hpp" (its comment lists what it uses).
inline gen::Spec gemm_spec(const GemmParams& p, const GemmConfig& c) {
  using gen::dynamic;
  gen::Spec s;
  s.dim("M").dim("N").dim("K");
  gen::TensorSpec a("A", p.in), b("B", p.in), cc("C", p.out);
  a.read_only();
  b.read_only();
  if (gemm_a_transposed(p.layout)) {
    a.dim("K", dynamic).dim("M", dynamic);
  } else {
    a.dim("M", dynamic).dim("K", dynamic);
  }
  if (gemm_b_transposed(p.layout)) {
    b.dim("N", dynamic).dim("K", dynamic);
  } else {
    b.dim("K", dynamic).dim("N", dynamic);
  }
  cc.dim("M", dynamic).dim("N", dynamic);
  s.tensor(a).tensor(b).tensor(cc);
  s.constant("kBM", int(c.block_m))
      .constant("kBN", int(c.block_n))
      .constant("kBK", int(c.block_k))
      .constant("kWarpsM", int(c.warps_m))
      .constant("kWarpsN", int(c.warps_n))
      .constant("kStages", int(c.stages))
      .constant("kGroupM", int(c.group_m))
      .constant("kVectorA", gemm_vector_a(p))
      .constant("kVectorB", gemm_vector_b(p))
      .constant("kConsumers", int(c.consumers))
      .constant("kSplitK", int(c.split_k))
      .constant("kClusterM", int(c.cluster_m))
      .constant("kEpilogueArgsBytes", int(p.epilogue_args_bytes));
  s.code(
      "epilogue",
      p.epilogue_code.empty()
          ? "struct Epilogue {\n"
            "  KILN_DEVICE KILN_FORCEINLINE float operator()(float v, M, N) const { return v; }\n"
            "};\n"
          : p.epilogue_code);
  return s;
}

}  // namespace detail
}  // namespace kiln::ops

/// The factory's memo hashes GemmParams field by field (without it, a JSON dump per call).
template <>
struct std::hash<kiln::ops::GemmParams> {
  std::size_t operator()(const kiln::ops::GemmParams& p) const noexcept {
    return kiln::factory::hash_combine(
        std::hash<std::string>{}(p.epilogue_code),
        {std::int64_t(p.in), std::int64_t(p.out), std::int64_t(p.layout), p.m, p.n, p.k,
         std::int64_t(p.epilogue_args_bytes), std::int64_t(p.config.block_m),
         std::int64_t(p.config.block_n), std::int64_t(p.config.block_k),
         std::int64_t(p.config.warps_m), std::int64_t(p.config.warps_n),
         std::int64_t(p.config.stages), std::int64_t(p.config.group_m), std::int64_t(p.config.path),
         std::int64_t(p.config.consumers), std::int64_t(p.config.split_k),
         std::int64_t(p.config.cluster_m),
         std::int64_t(std::hash<std::string>{}(p.epilogue_name))});
  }
};
