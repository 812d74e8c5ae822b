#pragma once
/// The CPU side of kiln's LayerNorm and RMSNorm (kernels/norm.cu): their problem
/// (NormParams), their configs (NormConfig), which configs exist for a problem, the
/// heuristic choice, kernel names and the generated header. No GPU is touched here;
/// include/kiln/ops/norm.hpp puts these together as a kernel factory.
///
/// A row is traversed as softmax traverses it (detail/softmax_configs.hpp): held in
/// registers for rows up to 16 KiB, streamed twice for longer ones. The configs, their
/// rules and the heuristic are softmax's; only what they are computed for differs.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../error.hpp"
#include "../../factory/gen_json.hpp"
#include "../../factory/hash.hpp"
#include "../../gen/spec.hpp"
#include "softmax_configs.hpp"

namespace kiln::ops {

/// Which normalization: y = (h - mean) · rstd · weight + bias (LayerNorm), or
/// y = h · rstd · weight with rstd = 1 / sqrt(mean(h²) + epsilon) (RMSNorm).
enum class NormKind : std::int32_t { layer_norm, rms_norm };
NLOHMANN_JSON_SERIALIZE_ENUM(NormKind, {{NormKind::layer_norm, "layer_norm"},
                                        {NormKind::rms_norm, "rms_norm"}})

/// How a row is traversed: once with the row held in registers, twice (the row's sums,
/// then the write) for rows too long for that, or once with the row (x, and the
/// residual) staged in shared memory (the forward, rows of 32 KiB and more); or `split`
/// (the forward, and the backward, NVIDIA GPUs): each row cut into slices of
/// threads_per_row x vectors_per_thread vectors, shared by a persistent grid whose blocks
/// exchange the slices' sums through global memory (kernels/norm.cu says how).
enum class NormStrategy : std::int32_t { one_pass, multi_pass, staged, split };
NLOHMANN_JSON_SERIALIZE_ENUM(NormStrategy, {{NormStrategy::one_pass, "one_pass"},
                                            {NormStrategy::multi_pass, "multi_pass"},
                                            {NormStrategy::staged, "staged"},
                                            {NormStrategy::split, "split"}})

/// A LayerNorm or RMSNorm over the last dimension of a row-major (rows, cols) matrix.
/// Weight, bias, epsilon and the statistics written are run-time arguments; `residual`
/// compiles the fused variant h = x + residual (h written), y = norm(h).
struct NormParams {
  NormKind kind = NormKind::layer_norm;
  gen::DType dtype = gen::DType::f32;  ///< f16, bf16 or f32 (math is f32 for all three)
  std::int32_t cols = 1;               ///< 1 to 1,048,576; compiled into the kernel
  bool residual = false;               ///< the fused residual variant
  std::int64_t rows = 0;               ///< 0 to 2^31 - 1; a run-time argument of the kernel
  bool operator==(const NormParams&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NormParams, kind, dtype, cols, residual, rows)

/// How one kernel is shaped: SoftmaxConfig's fields and rules (threads_per_row x
/// rows_per_block threads a block, vector_width elements a load, at most 16 bytes).
struct NormConfig {
  NormStrategy strategy = NormStrategy::one_pass;
  std::int32_t threads_per_row = 1;  ///< a power of 2 up to 1024
  std::int32_t vector_width = 1;     ///< a power of 2 that divides cols
  std::int32_t rows_per_block = 1;   ///< 1 for multi_pass
  /// one_pass: the vectors each thread holds, ceil(cols / vector_width / threads_per_row);
  /// multi_pass: the vectors each thread loads per step of its loop.
  std::int32_t vectors_per_thread = 1;
  /// Blocks of a thread-block cluster (sm_90) that share each row, each taking an equal
  /// slice of its vectors (vectors_per_thread counts over the slice): 1 (a row per block
  /// or slot), 2, 4 or 8. The backward's one pass only.
  std::int32_t cluster_blocks = 1;
  /// split only (else 0): the blocks an SM the kernel is compiled for (its launch
  /// bounds), and the persistent grid, the device's SMs times that (the backward's: the
  /// most whole multiples of a row's slices within that), every block resident at once (a
  /// cooperative launch).
  std::int32_t blocks_per_sm = 0;
  std::int32_t grid_blocks = 0;
  /// The forward's split only (else 0): the slices a block's ring in shared memory holds
  /// (3 to split_ring_max), each thread copying its vectors of the slices it reads next
  /// into it by cp.async, split_ring - 2 rounds ahead, and reading them back there, for
  /// the sums and again for the write, where 0 loads each slice into registers and
  /// again from L2.
  std::int32_t split_ring = 0;
  /// The forward's staged only (else 0): the vectors of its block's next row each thread
  /// copies into shared memory while it still works on the current row (1 to
  /// vectors_per_thread, which is then at most 8), its copies going round a ring of
  /// vectors_per_thread + staged_ahead vectors; the grid is then persistent, blocks_per_sm
  /// an SM and grid_blocks in all (fewer where there are fewer rows), block b taking rows
  /// b, b + grid, ... Where an SM holds one staged block (rows of 64 KiB and more), the
  /// next row's reads go on while the block reduces and writes.
  std::int32_t staged_ahead = 0;
  /// The forward's staged only, without the residual or staged_ahead (else 0):
  /// SoftmaxConfig::staged_held, the last vectors of a thread's vectors_per_thread it holds
  /// in registers rather than in shared memory (rows of up to 256 KiB).
  std::int32_t staged_held = 0;
  bool operator==(const NormConfig&) const = default;
};
// (Tuning records written before cluster_blocks, blocks_per_sm, grid_blocks, split_ring,
// staged_ahead and staged_held existed read as 1, 0, 0, 0, 0 and 0.)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NormConfig, strategy, threads_per_row, vector_width,
                                                rows_per_block, vectors_per_thread, cluster_blocks,
                                                blocks_per_sm, grid_blocks, split_ring,
                                                staged_ahead, staged_held)

namespace detail {

inline const char* norm_name(NormKind k) {
  return k == NormKind::rms_norm ? "rms_norm" : "layer_norm";
}

/// The softmax problem with the same row: the configs' rules depend on dtype and cols.
inline SoftmaxParams norm_row(const NormParams& p) {
  return {p.dtype, p.cols, p.rows};
}
/// A config of type To with strategy `s` and c's other fields (SoftmaxConfig and
/// NormConfig share them).
template <class To, class From>
To with_strategy(decltype(To::strategy) s, const From& c) {
  return {s,
          c.threads_per_row,
          c.vector_width,
          c.rows_per_block,
          c.vectors_per_thread,
          c.cluster_blocks};
}
/// (A split config's row is streamed a slice at a time as multi pass streams a step: it
/// maps to multi_pass, whose spec constants it shares.)
inline SoftmaxConfig to_softmax(const NormConfig& c) {
  const SoftmaxStrategy s =
      c.strategy == NormStrategy::multi_pass || c.strategy == NormStrategy::split
          ? SoftmaxStrategy::multi_pass
      : c.strategy == NormStrategy::staged ? SoftmaxStrategy::staged
                                           : SoftmaxStrategy::one_pass;
  SoftmaxConfig out = with_strategy<SoftmaxConfig>(s, c);
  out.staged_held = c.staged_held;
  return out;
}
inline NormConfig to_norm(const SoftmaxConfig& c) {
  const NormStrategy s = c.strategy == SoftmaxStrategy::multi_pass ? NormStrategy::multi_pass
                         : c.strategy == SoftmaxStrategy::staged   ? NormStrategy::staged
                                                                   : NormStrategy::one_pass;
  NormConfig out = with_strategy<NormConfig>(s, c);
  out.staged_held = c.staged_held;
  return out;
}

/// The dynamic shared memory of a block of config `c` for `p`: a staged block's row of x,
/// and of the residual, with staged_ahead vectors a thread more of each, less the
/// staged_held vectors a thread holds in registers (0 for the other strategies).
inline std::int64_t norm_shared_bytes(const NormParams& p, const NormConfig& c) {
  SoftmaxConfig row = to_softmax(c);
  if (c.strategy == NormStrategy::staged) row.vectors_per_thread += c.staged_ahead;
  return softmax_shared_bytes(norm_row(p), row) * (p.residual ? 2 : 1);
}

/// Throws kiln::Error unless kiln's norms support `p`.
inline void validate_norm(const NormParams& p) {
  const std::string what = std::string("kiln: ") + norm_name(p.kind) + ": ";
  if (p.kind != NormKind::layer_norm && p.kind != NormKind::rms_norm) {
    throw Error("kiln: norm: kind " + std::to_string(int(p.kind)) +
                " is not supported; use layer_norm or rms_norm");
  }
  if (p.dtype != gen::DType::f16 && p.dtype != gen::DType::bf16 && p.dtype != gen::DType::f32) {
    throw Error(what + "dtype " + std::string(gen::to_string(p.dtype)) +
                " is not supported; use f16, bf16 or f32");
  }
  if (p.cols < 1 || p.cols > softmax_max_cols) {
    throw Error(what + "cols = " + std::to_string(p.cols) +
                " is not supported; rows may have 1 to 1048576 (2^20) columns");
  }
  if (p.rows < 0 || p.rows > std::numeric_limits<std::int32_t>::max()) {
    throw Error(what + "rows = " + std::to_string(p.rows) +
                " is not supported; the row count must be 0 to 2147483647 (2^31 - 1)");
  }
}

/// Throws kiln::Error unless `c` is a config the kernel can run `p` with on a device
/// whose warps have `warp_size` threads (softmax's rules, named for the norm).
inline void validate_norm_split_config(const NormParams& p, const NormConfig& c, int warp_size);

inline void validate_norm_config(const NormParams& p, const NormConfig& c, int warp_size) {
  if (c.strategy == NormStrategy::split) {
    validate_norm_split_config(p, c, warp_size);
    return;
  }
  const std::string what = std::string("kiln: ") + norm_name(p.kind) + " config " +
                           nlohmann::json(c).dump() + " for " + nlohmann::json(p).dump() + ": ";
  if (c.split_ring != 0 || (c.staged_ahead == 0 && (c.blocks_per_sm != 0 || c.grid_blocks != 0))) {
    throw Error(what +
                "blocks_per_sm, grid_blocks and split_ring are split configs' (0 for the "
                "others; blocks_per_sm and grid_blocks staged_ahead configs' too)");
  }
  if (c.staged_held != 0 && (c.staged_ahead != 0 || p.residual)) {
    throw Error(what +
                "staged_held (vectors held in registers) takes neither staged_ahead nor the "
                "residual");
  }
  if (c.staged_ahead != 0) {
    if (c.strategy != NormStrategy::staged) {
      throw Error(what + "staged_ahead is staged configs' (0 for the others)");
    }
    if (c.vectors_per_thread > 8) {
      throw Error(what + "staged_ahead takes rows of at most 8 vectors a thread (" +
                  std::to_string(c.vectors_per_thread) + " here); use more threads or 0");
    }
    if (c.staged_ahead < 0 || c.staged_ahead > c.vectors_per_thread) {
      throw Error(what + "staged_ahead is 0 to vectors_per_thread (" +
                  std::to_string(c.vectors_per_thread) + ")");
    }
    if (c.blocks_per_sm < 1 || c.grid_blocks < c.blocks_per_sm) {
      throw Error(what +
                  "a staged_ahead config's grid is persistent: blocks_per_sm 1 or more, and "
                  "grid_blocks (the SMs times blocks_per_sm) at least blocks_per_sm");
    }
  }
  try {
    validate_softmax_config(norm_row(p), to_softmax(c), warp_size);
  } catch (const Error& e) {
    // "kiln: softmax config {...} for {...}: rule" -> "kiln: rms_norm config {...} ...: rule"
    const std::string text = e.what();
    const std::size_t rule = text.find("}: ");
    throw Error(std::string("kiln: ") + norm_name(p.kind) + " config " + nlohmann::json(c).dump() +
                " for " + nlohmann::json(p).dump() +
                (rule == std::string::npos ? ": " + text : text.substr(rule + 1)));
  }
  if (c.cluster_blocks != 1) {
    throw Error(std::string("kiln: ") + norm_name(p.kind) + " config " + nlohmann::json(c).dump() +
                " for " + nlohmann::json(p).dump() +
                ": the forward runs a row per block or slot (cluster_blocks = 1); clusters "
                "share rows in the backward pass only");
  }
  if (norm_shared_bytes(p, c) > softmax_max_staged_bytes) {
    throw Error(std::string("kiln: ") + norm_name(p.kind) + " config " + nlohmann::json(c).dump() +
                " for " + nlohmann::json(p).dump() + ": a staged block holds at most " +
                std::to_string(softmax_max_staged_bytes) + " bytes of x and the residual (" +
                std::to_string(norm_shared_bytes(p, c)) + " here); use multi_pass");
  }
}

/// Every candidate config for `p`: softmax's for the same row (softmax_configs).
inline std::vector<NormConfig> norm_configs(const NormParams& p, int warp_size) {
  std::vector<NormConfig> out;
  for (const SoftmaxConfig& c : softmax_configs(norm_row(p), warp_size)) out.push_back(to_norm(c));
  return out;
}

/// The slices a row of `p` is cut into by split config `c` (split_slices).
inline std::int64_t norm_split_slices(const NormParams& p, const NormConfig& c) {
  return split_slices(p.cols, c);
}
/// The 64-bit slots a split launch exchanges its slices' sums through: one a slice
/// (RMSNorm: the sum of h^2), two (LayerNorm: the slice's mean and squared deviations).
inline std::int64_t norm_split_slot_words(const NormParams& p) {
  return p.kind == NormKind::rms_norm ? 1 : 2;
}

/// The most slot words a lane of the warp that adds a row's slices up holds: 8. (LayerNorm's
/// had been 4 while its threads held the slice's weight and bias with h: with 8 they spilled
/// 48 to 168 bytes under the split launch bounds. They are now loaded after the slots'
/// merge.)
inline std::int64_t norm_split_lane_words(const NormParams&) {
  return 8;
}

/// The dynamic shared memory a split block of `c` takes for `p`: its slice's weight (and
/// LayerNorm's bias), and a ringed config's ring of split_ring slices of x (with the
/// residual, and split_ring - 1 of the residual's), 16 bytes a vector.
inline std::int64_t norm_split_shared_bytes(const NormParams& p, const NormConfig& c) {
  const std::int64_t ring =
      c.split_ring > 0 ? c.split_ring + (p.residual ? c.split_ring - 1 : 0) : 0;
  return ((p.kind == NormKind::layer_norm ? 2 : 1) + ring) * 16 * std::int64_t(c.threads_per_row) *
         c.vectors_per_thread;
}

/// Throws kiln::Error unless split config `c` can run `p` (see NormStrategy::split):
/// split_rule_broken's rules with norm_split_slot_words and norm_split_lane_words.
inline void validate_norm_split_config(const NormParams& p, const NormConfig& c, int warp_size) {
  auto fail = [&](const std::string& rule) {
    throw Error(std::string("kiln: ") + norm_name(p.kind) + " config " + nlohmann::json(c).dump() +
                " for " + nlohmann::json(p).dump() + ": " + rule);
  };
  if (c.staged_ahead != 0) fail("staged_ahead is staged configs' (0 for split ones)");
  if (c.staged_held != 0) fail("staged_held is staged configs' (0 for split ones)");
  const std::string rule = split_rule_broken(p.cols, p.dtype, c, warp_size,
                                             norm_split_slot_words(p), norm_split_lane_words(p));
  if (!rule.empty()) fail(rule);
}

/// The split candidates for `p` on a device of `multiprocessors` SMs (the forward, with or
/// without the residual, on NVIDIA GPUs: norm_description adds them where rows are 64 KiB
/// or more): split_candidates, the shapes of split_shapes that the rules allow.
inline std::vector<NormConfig> norm_split_configs(const NormParams& p, int warp_size,
                                                  int multiprocessors) {
  return split_candidates<NormConfig>(NormStrategy::split, p.cols, p.dtype, warp_size,
                                      multiprocessors, norm_split_slot_words(p),
                                      norm_split_lane_words(p), true);
}

/// The staged candidates for `p` (the forward on NVIDIA GPUs: norm_description adds them):
/// softmax's for the same row (softmax_staged_configs) whose rows of x and the residual
/// fit softmax_max_staged_bytes and the device's `shared_optin` less 4 KiB.
inline std::vector<NormConfig> norm_staged_configs(const NormParams& p, int warp_size,
                                                   std::int64_t shared_optin) {
  std::vector<NormConfig> out;
  for (const SoftmaxConfig& c : softmax_staged_configs(norm_row(p), warp_size, shared_optin)) {
    if (c.staged_held != 0 && p.residual) continue;  // (x's row held in part: no residual)
    const NormConfig n = to_norm(c);
    const std::int64_t bytes = norm_shared_bytes(p, n);
    if (bytes <= softmax_max_staged_bytes && bytes <= shared_optin - 4 * 1024) out.push_back(n);
  }
  return out;
}

/// The staged candidates with rows ahead for `p` on a device of `multiprocessors` SMs of
/// `shared_per_sm` bytes of shared memory whose blocks may have `shared_optin` (the
/// forward on NVIDIA GPUs: norm_description adds them): each staged candidate
/// (norm_staged_configs) of at most 8 vectors a thread whose block the SM holds alone, with
/// staged_ahead 2, 4 and 8 where the vectors ahead fit what a staged block holds
/// (softmax_max_staged_bytes, and `shared_optin` less 4 KiB); a block an SM, the grid one
/// an SM. (A block an SM that waits for its row before it sums, then writes, and only then
/// makes way for the next block, leaves the SM's reads idle while it reduces and writes.)
inline std::vector<NormConfig> norm_staged_ahead_configs(const NormParams& p, int warp_size,
                                                         std::int64_t shared_optin,
                                                         std::int64_t shared_per_sm,
                                                         int multiprocessors) {
  std::vector<NormConfig> out;
  if (multiprocessors < 1) return out;
  for (NormConfig c : norm_staged_configs(p, warp_size, shared_optin)) {
    // (Whether the SM holds two such blocks: the split blocks' rule, split_blocks_fit.)
    if (c.vectors_per_thread > 8 || c.staged_held != 0 ||
        split_blocks_fit(norm_shared_bytes(p, c), 2, shared_optin, shared_per_sm)) {
      continue;
    }
    c.blocks_per_sm = 1;
    c.grid_blocks = multiprocessors;
    for (int ahead : {2, 4, 8}) {
      c.staged_ahead = ahead;
      const std::int64_t bytes = norm_shared_bytes(p, c);
      if (ahead <= c.vectors_per_thread && bytes <= softmax_max_staged_bytes &&
          bytes <= shared_optin - 4 * 1024) {
        out.push_back(c);
      }
    }
  }
  return out;
}

/// Softmax's heuristic for p's row among `candidates`.
inline NormConfig norm_row_heuristic(const NormParams& p,
                                     const std::vector<NormConfig>& candidates) {
  std::vector<SoftmaxConfig> row;
  for (const NormConfig& c : candidates) row.push_back(to_softmax(c));
  return to_norm(softmax_heuristic(norm_row(p), row));
}

/// The memory bandwidth an SM (bytes a second: the device's peak over its SMs) from which
/// the untuned heuristic takes staged rows ahead for f16 rows where they are offered. On
/// the H200 (about 37 GB/s an SM) they won, LayerNorm 1024 x 65536 f16 by 7% and RMSNorm
/// by 3%; on the H100 (about 25 GB/s an SM) they tie or lose, up to 4% (bf16, f32): the
/// faster memory drains a block's copies sooner, so a block a row leaves its SM idle for
/// a larger share of the row while it reduces and writes. (bf16 and f32 rows are yet to be
/// timed on an H200: tuning times them.)
inline constexpr double norm_staged_ahead_bandwidth_per_sm = 30e9;

/// The config taken without timing (KILN_TUNE=off): staged where a staged candidate
/// holds rows of x of 32 KiB and more (64 KiB and more with the residual), by 512 threads
/// where it stages under 64 KiB and 1024 from 64 KiB; split (norm_split_configs) where no
/// staged candidate holds such a row (with the residual, ringed by 256 x 8 alone on an SM:
/// 64 x 1M f16 on the H200, % of a copy of the op's bytes, LayerNorm 86% and RMSNorm 90%
/// where multi pass ran at 65% and 72%, the unringed 256 x 8 by two at 52% and 79%); else
/// softmax's heuristic for the same row. On the H200
/// (benchmarks/norm --sweep), % of a copy, staged against the best config without it: RMSNorm 1024
/// x 65536 f16 and bf16 92-94% (two passes 80-82%), LayerNorm 83% (82%); 4096 x 16384 f16 LayerNorm
/// 94% (91%), f32 LayerNorm and RMSNorm 97% (94%); with the residual, 2048 x 32768 f16 98-99%
/// (96-98%), where at 4096 x 16384 LayerNorm's staged rows lost (94% against 99%). LayerNorm's
/// 16-bit rows of 16 KiB (the shortest with two-pass candidates) take two passes over 256 threads,
/// 2 vectors a step: on 8192 x 8192, 94% (f16) and 91% (bf16) where softmax's one pass over 512
/// threads ran at 87% and 83% (its launch bounds leave LayerNorm two or three blocks an SM; more
/// vectors a thread spilled in bf16). Rows of 192 to 256 KiB without the residual are staged
/// too, each thread's last vectors held in registers (staged_held; on an H100, 1024 x 65536
/// f32 LayerNorm 189.9 us and RMSNorm 188.4 against the split rows' 194.4 and 194.2, 512 x
/// 131072 f16 100.1 and 98.1 against 102.0 and 101.5; by 512 threads 1-10% slower than by
/// 1024). (The staged candidates exist on NVIDIA GPUs only. The
/// backward takes norm_row_heuristic.) f16 rows are staged ahead by 4 vectors where those
/// candidates exist and the device's memory moves `bandwidth_per_sm` bytes a second an SM
/// (0: unknown) of at least norm_staged_ahead_bandwidth_per_sm.
inline NormConfig norm_heuristic(const NormParams& p, const std::vector<NormConfig>& candidates,
                                 double bandwidth_per_sm = 0.0) {
  const std::int64_t row_bytes = std::int64_t(p.cols) * gen::size_of(p.dtype);
  if (row_bytes >= (p.residual ? 64 : 32) * 1024) {
    for (const NormConfig& c : candidates) {
      if (c.strategy != NormStrategy::staged || c.staged_ahead != 0 ||
          !untuned_staged(c.staged_held, row_bytes)) {
        continue;
      }
      const int threads = norm_shared_bytes(p, c) < 64 * 1024 ? 512 : 1024;
      if (c.threads_per_row != threads) continue;
      // f16 rows staged ahead where the memory is fast (above): the most vectors ahead up
      // to 4 (LayerNorm 1024 x 65536 f16 on the H200: 77.8 us with 4, 81.3 with 2).
      if (p.dtype == gen::DType::f16 && bandwidth_per_sm >= norm_staged_ahead_bandwidth_per_sm) {
        const NormConfig* ahead = nullptr;
        for (const NormConfig& a : candidates) {
          NormConfig base = a;
          base.staged_ahead = 0;
          base.blocks_per_sm = c.blocks_per_sm;
          base.grid_blocks = c.grid_blocks;
          if (a.staged_ahead > 0 && a.staged_ahead <= 4 && base == c &&
              (!ahead || a.staged_ahead > ahead->staged_ahead)) {
            ahead = &a;
          }
        }
        if (ahead) return *ahead;
      }
      return c;
    }
    // Rows no staged block holds: split. Without the residual, unringed (split_choice: 256
    // threads of 8 vectors, 2 blocks an SM, where the row's slots allow it); with it, ringed
    // by 256 threads of 8 vectors, a block an SM, where the SM's shared memory holds it.
    if (p.residual) {
      if (const NormConfig* ringed = split_shaped(candidates, NormStrategy::split, 256, 8, 1, 3)) {
        return *ringed;
      }
    } else {
      std::vector<NormConfig> unringed;
      for (const NormConfig& c : candidates) {
        if (c.split_ring == 0) unringed.push_back(c);
      }
      if (const NormConfig* split = split_choice(unringed, NormStrategy::split)) return *split;
    }
  }
  if (p.kind == NormKind::layer_norm && !p.residual && gen::size_of(p.dtype) == 2 &&
      row_bytes == 16 * 1024) {
    const NormConfig two_steps{NormStrategy::multi_pass, 256, softmax_vector_width(norm_row(p)), 1,
                               2};
    for (const NormConfig& c : candidates) {
      if (c == two_steps) return c;
    }
  }
  return norm_row_heuristic(p, candidates);
}

/// "norm__layer__f16__cols4096__t256v8", "norm__rms__bf16__cols128__residual__t16v8r8",
/// "norm__layer__f32__cols65536__multipass_t1024v4i4": the factory's name, the kind, the
/// row, then softmax's config part.
inline std::string norm_kernel_name(const NormParams& p, const NormConfig& c) {
  const std::string softmax = softmax_kernel_name(norm_row(p), to_softmax(c));
  std::string config = softmax.substr(softmax.rfind("__") + 2);
  if (c.strategy == NormStrategy::split) {  // "split_t128v8i8b4", ringed "split_t256v8i4b2q3"
    config = "split_" + config.substr(config.find('_') + 1) + "b" + std::to_string(c.blocks_per_sm);
    if (c.split_ring > 0) config += "q" + std::to_string(c.split_ring);
  }
  if (c.staged_ahead > 0) config += "a" + std::to_string(c.staged_ahead);  // "staged_t1024v8i8a4"
  return std::string("norm__") + (p.kind == NormKind::rms_norm ? "rms" : "layer") + "__" +
         std::string(gen::to_string(p.dtype)) + "__cols" + std::to_string(p.cols) + "__" +
         (p.residual ? "residual__" : "") + config;
}

/// The header kernels/norm.cu includes as "spec.hpp" (its comment lists what it uses):
/// softmax's, with the kind and the residual flag.
inline gen::Spec norm_spec(const NormParams& p, const NormConfig& c) {
  // (A staged config's constants are one pass's; its own parts are the norms'.)
  SoftmaxConfig row = to_softmax(c);
  if (row.strategy == SoftmaxStrategy::staged) row.strategy = SoftmaxStrategy::one_pass;
  gen::Spec s = softmax_spec(norm_row(p), row);
  s.constant("kRms", p.kind == NormKind::rms_norm ? 1 : 0)
      .constant("kResidual", p.residual ? 1 : 0);
  if (c.strategy == NormStrategy::staged) {
    s.macro("NORM_STAGED", "1")
        .constant("kStagedMinBlocks", staged_min_blocks(c.threads_per_row, norm_shared_bytes(p, c)))
        .constant("kStagedAhead", c.staged_ahead)
        .constant("kStagedHeld", c.staged_held);
  }
  if (c.strategy == NormStrategy::split) {
    s.macro("NORM_SPLIT", "1")
        .constant("kSplitMinBlocks", c.blocks_per_sm)
        .constant("kSplitRing", c.split_ring);
  }
  return s;
}

}  // namespace detail

/// The backward pass of a LayerNorm or RMSNorm (kernels/norm_backward.cu): dx from dy, the
/// forward's input h and its saved statistics; `weight_grad` and `bias_grad` (LayerNorm)
/// compile the partial sums of dweight and dbias in. The weight itself is a run-time
/// argument (absent: 1).
struct NormBackwardParams {
  NormKind kind = NormKind::layer_norm;
  gen::DType dtype = gen::DType::f32;  ///< f16, bf16 or f32 (math is f32 for all three)
  std::int32_t cols = 1;               ///< 1 to 1,048,576; compiled into the kernel
  bool weight_grad = false;            ///< dweight = sum over rows of dy · x̂
  bool bias_grad = false;              ///< dbias = sum over rows of dy (LayerNorm only)
  std::int64_t rows = 0;               ///< 0 to 2^31 - 1; a run-time argument of the kernel
  bool operator==(const NormBackwardParams&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NormBackwardParams, kind, dtype, cols, weight_grad, bias_grad,
                                   rows)

namespace detail {

/// The forward problem with the same row, kind and dtype.
inline NormParams norm_forward(const NormBackwardParams& p) {
  return {p.kind, p.dtype, p.cols, false, p.rows};
}

/// Throws kiln::Error unless kiln's norm backward passes support `p`.
inline void validate_norm_backward(const NormBackwardParams& p) {
  validate_norm(norm_forward(p));
  if (p.kind == NormKind::rms_norm && p.bias_grad) {
    throw Error("kiln: rms_norm backward: RMSNorm has no bias, hence no dbias; ask for none");
  }
}

/// The bytes a one-pass backward thread holds in registers with config `c`: its vectors
/// of h and dy, and an f32 sum per element for each of dweight and dbias.
inline std::int64_t norm_backward_held_bytes(const NormBackwardParams& p, const NormConfig& c) {
  const std::int64_t elems = std::int64_t(c.vectors_per_thread) * c.vector_width;
  return elems * (2 * gen::size_of(p.dtype) + 4 * (int(p.weight_grad) + int(p.bias_grad)));
}
/// The most a one-pass backward thread may hold: 1.5 times the forward's budget (192
/// bytes, 96 in blocks of 1024 threads), which NVRTC fits in registers for sm_80 to sm_90.
inline std::int64_t norm_backward_register_bytes(std::int64_t threads_per_block) {
  return softmax_register_bytes(threads_per_block) * 3 / 2;
}

/// The shared memory of a backward split block of `c`'s slice's weights (16 bytes a
/// vector) and f32 sums of dweight and dbias (those `p` asks for) of its elements.
inline std::int64_t norm_backward_split_sums_bytes(const NormBackwardParams& p,
                                                   const NormConfig& c) {
  const std::int64_t vectors = std::int64_t(c.threads_per_row) * c.vectors_per_thread;
  return vectors * 16 +
         vectors * c.vector_width * 4 * (std::int64_t(p.weight_grad) + std::int64_t(p.bias_grad));
}

/// The dynamic shared memory a backward split block of `c` takes: its weights and sums
/// (norm_backward_split_sums_bytes), then a ringed config's rings of split_ring slices of h
/// and of dy (16 bytes a vector).
inline std::int64_t norm_backward_split_shared_bytes(const NormBackwardParams& p,
                                                     const NormConfig& c) {
  const std::int64_t vectors = std::int64_t(c.threads_per_row) * c.vectors_per_thread;
  return norm_backward_split_sums_bytes(p, c) + 2 * std::int64_t(c.split_ring) * vectors * 16;
}

/// The grid of a backward split config of `threads` x `vectors` a slice and `blocks_per_sm`
/// on a device of `multiprocessors` SMs: the most whole multiples of a row's slices that
/// many blocks hold (each block takes the same slice of every row it reads), 0 where
/// they hold none.
inline std::int32_t norm_backward_split_grid(const NormBackwardParams& p, int threads, int vectors,
                                             int blocks_per_sm, int multiprocessors) {
  NormConfig c;
  c.threads_per_row = threads;
  c.vector_width = int(16 / gen::size_of(p.dtype));
  c.vectors_per_thread = vectors;
  const std::int64_t slices = split_slices(p.cols, c);
  if (slices < 1) return 0;
  return std::int32_t(std::int64_t(multiprocessors) * blocks_per_sm / slices * slices);
}

/// Throws kiln::Error unless split config `c` can run the backward of `p`: the forward's
/// split rules (split_rule_broken, with the forward's slot words), a grid of whole
/// multiples of a row's slices, at most 128 KiB of weights and sums a block, and
/// split_backward_rule_broken's. (Whether the device
/// holds blocks_per_sm such blocks an SM is the factory's to check: it knows the device.)
inline void validate_norm_backward_split_config(const NormBackwardParams& p, const NormConfig& c,
                                                int warp_size) {
  auto fail = [&](const std::string& rule) {
    throw Error(std::string("kiln: ") + norm_name(p.kind) + " backward config " +
                nlohmann::json(c).dump() + " for " + nlohmann::json(p).dump() + ": " + rule);
  };
  const NormParams forward = norm_forward(p);
  const std::string rule =
      split_rule_broken(p.cols, p.dtype, c, warp_size, norm_split_slot_words(forward),
                        norm_split_lane_words(forward));
  if (!rule.empty()) fail(rule);
  const std::int64_t slices = split_slices(p.cols, c);
  if (c.grid_blocks % slices != 0) {
    fail("the backward's split grid is a whole multiple of a row's " + std::to_string(slices) +
         " slices (each block takes the same columns of every row), not " +
         std::to_string(c.grid_blocks) + " blocks");
  }
  if (norm_backward_split_sums_bytes(p, c) > 128 * 1024) {
    fail("a split block's sums of dweight and dbias take " +
         std::to_string(norm_backward_split_sums_bytes(p, c)) +
         " bytes of shared memory, more than 131072; take shorter slices");
  }
  const std::string registers = split_backward_rule_broken(c);
  if (!registers.empty()) fail(registers);
}

/// Throws kiln::Error unless `c` is a config the backward kernel can run `p` with: the
/// forward's rules, and a one-pass thread holds at most norm_backward_register_bytes;
/// split configs: validate_norm_backward_split_config.
inline void validate_norm_backward_config(const NormBackwardParams& p, const NormConfig& c,
                                          int warp_size) {
  const std::string what = std::string("kiln: ") + norm_name(p.kind) + " backward config " +
                           nlohmann::json(c).dump() + " for " + nlohmann::json(p).dump();
  if (c.staged_held != 0) {
    throw Error(what + ": staged_held is the forward's staged configs' (0 in the backward)");
  }
  if (c.staged_ahead != 0) {
    throw Error(what + ": staged_ahead is the forward's staged configs' (0 in the backward)");
  }
  if (c.strategy == NormStrategy::split) {
    validate_norm_backward_split_config(p, c, warp_size);
    return;
  }
  if (c.split_ring != 0) {
    throw Error(what + ": split_ring is split configs' (0 for the others)");
  }
  if (c.blocks_per_sm != 0 || c.grid_blocks != 0) {
    throw Error(what + ": blocks_per_sm and grid_blocks are split configs' (0 for the others)");
  }
  try {
    validate_softmax_config(norm_row(norm_forward(p)), to_softmax(c), warp_size);
  } catch (const Error& e) {
    const std::string text = e.what();
    const std::size_t rule = text.find("}: ");
    throw Error(what + (rule == std::string::npos ? ": " + text : text.substr(rule + 1)));
  }
  if (c.strategy == NormStrategy::staged) {
    throw Error(what + ": the backward runs one_pass or multi_pass; staged rows are the forward's");
  }
  if (c.cluster_blocks != 1 && c.strategy != NormStrategy::one_pass) {
    throw Error(what + ": a cluster shares a row in one pass (one_pass), not in " +
                nlohmann::json(c.strategy).get<std::string>());
  }
  const std::int64_t block = std::int64_t(c.threads_per_row) * c.rows_per_block;
  if (c.strategy == NormStrategy::one_pass &&
      norm_backward_held_bytes(p, c) > norm_backward_register_bytes(block)) {
    throw Error(what + ": one_pass backward holds at most " +
                std::to_string(norm_backward_register_bytes(block)) +
                " bytes a thread (h, dy and the f32 sums of dweight and dbias: " +
                std::to_string(norm_backward_held_bytes(p, c)) + " here) in blocks of " +
                std::to_string(block) + " threads; use more threads or multi_pass");
  }
  const SoftmaxParams row = norm_row(norm_forward(p));
  if (c.strategy == NormStrategy::multi_pass && !softmax_backward_fits(row, to_softmax(c))) {
    throw Error(what + ": a multi_pass backward step loads at most " +
                std::to_string(softmax_backward_held_bytes(row, block)) +
                " bytes of each of h and dy a thread (" +
                std::to_string(softmax_backward_held(to_softmax(c)) * gen::size_of(p.dtype)) +
                " here) in blocks of " + std::to_string(block) +
                " threads, as softmax's backward; use fewer vectors a step");
  }
}

/// The backward's cluster candidates for `p` (sm_90): one pass over rows shared by 2, 4
/// or 8 blocks, each holding an equal slice in registers with its part of the sums, by
/// 256 or 512 threads, where the slice fits what a one-pass thread holds. (By 1024, whose
/// registers are fewer, ptxas spilled the cluster's bookkeeping: 4 bytes a thread in
/// RMSNorm's bf16 65536-column eighths on sm_90.)
inline std::vector<NormConfig> norm_backward_cluster_configs(const NormBackwardParams& p,
                                                             int warp_size) {
  std::vector<NormConfig> out;
  const int vec = softmax_vector_width(norm_row(norm_forward(p)));
  const std::int64_t vecs = p.cols / vec;
  for (int k : {2, 4, 8}) {
    if (vecs % k != 0) continue;
    for (int t : {256, 512}) {
      const NormConfig c{NormStrategy::one_pass, t, vec, 1, std::int32_t(ceil_div(vecs / k, t)), k};
      try {
        validate_norm_backward_config(p, c, warp_size);
      } catch (const Error&) {
        continue;
      }
      out.push_back(c);
    }
  }
  return out;
}

/// Every candidate config of the backward pass: the forward's for the same row whose
/// threads hold what the backward holds (multi_pass steps as softmax's backward loads,
/// softmax_backward_fits), multi_pass (softmax's) where none is left, and, with `clusters`
/// (an sm_90 NVIDIA device) where no one-pass block holds the row,
/// norm_backward_cluster_configs. (Steps of 8 vectors by 1024 threads, which the rule
/// leaves out, spilled 444 to 834 bytes a thread under sm_90's ptxas at 65536 and 1M
/// columns, and on the H200 LayerNorm f16's dx of 64 x 1M took 232 us against 142 with 4.)
inline std::vector<NormConfig> norm_backward_configs(const NormBackwardParams& p, int warp_size,
                                                     bool clusters = false) {
  std::vector<NormConfig> out;
  const SoftmaxParams row = norm_row(norm_forward(p));
  auto holds = [&](const NormConfig& c) {
    const std::int64_t block = std::int64_t(c.threads_per_row) * c.rows_per_block;
    if (c.strategy == NormStrategy::one_pass) {
      return norm_backward_held_bytes(p, c) <= norm_backward_register_bytes(block);
    }
    return c.strategy != NormStrategy::multi_pass || softmax_backward_fits(row, to_softmax(c));
  };
  for (const NormConfig& c : norm_configs(norm_forward(p), warp_size)) {
    if (holds(c)) out.push_back(c);
  }
  const bool held = std::any_of(out.begin(), out.end(), [](const NormConfig& c) {
    return c.strategy == NormStrategy::one_pass;
  });
  if (out.empty()) {
    for (int t : {256, 512, 1024}) {
      for (int iters : {2, 4, 8}) {
        const NormConfig c{NormStrategy::multi_pass, t, softmax_vector_width(row), 1, iters};
        if (t % warp_size == 0 && holds(c)) out.push_back(c);
      }
    }
  }
  if (clusters && !held) {
    const auto shared = norm_backward_cluster_configs(p, warp_size);
    out.insert(out.end(), shared.begin(), shared.end());
  }
  return out;
}

/// The shapes of the norms' ringed backward split candidates: (threads a block, vectors a
/// thread a slice, blocks an SM, split_ring). A ringed thread holds no slice across the
/// rounds, but its SM's shared memory holds the weights, the sums and two rings (h and dy)
/// of its blocks' slices: 1024 vectors of a slice an SM, whose rings of 4 keep two slices
/// of each (64 KiB) in flight.
inline constexpr int norm_backward_ring_shapes[5][4] = {
    {256, 4, 1, 3}, {256, 4, 1, 4}, {256, 4, 1, 5}, {128, 4, 2, 4}, {128, 8, 1, 4}};

/// The backward's split candidates for `p` on a device of `multiprocessors` SMs with
/// `shared_per_sm` bytes of shared memory an SM and `shared_per_block` a block
/// (`split_backward_shapes`, then the ringed `norm_backward_ring_shapes`, rows of 64 KiB
/// and more, NVIDIA GPUs): those the rules allow and whose blocks_per_sm blocks an SM fit
/// its shared memory (their sums and rings, and 2 KiB a block for the static scratch and
/// what the driver keeps).
/// Tuning candidates only: the heuristic does not take them.
inline std::vector<NormConfig> norm_backward_split_configs(const NormBackwardParams& p,
                                                           int warp_size, int multiprocessors,
                                                           std::int64_t shared_per_sm,
                                                           std::int64_t shared_per_block) {
  std::vector<NormConfig> out;
  if (warp_size != 32 || multiprocessors < 1) return out;
  if (std::int64_t(p.cols) * gen::size_of(p.dtype) < 64 * 1024) return out;
  const std::int32_t vec = std::int32_t(16 / gen::size_of(p.dtype));
  auto offer = [&](int threads, int vectors, int blocks, int ring) {
    NormConfig c{NormStrategy::split,
                 threads,
                 vec,
                 1,
                 vectors,
                 1,
                 blocks,
                 norm_backward_split_grid(p, threads, vectors, blocks, multiprocessors)};
    c.split_ring = ring;
    if (c.grid_blocks < 1) return;
    if (!split_blocks_fit(norm_backward_split_shared_bytes(p, c), blocks, shared_per_block,
                          shared_per_sm)) {
      return;
    }
    try {
      validate_norm_backward_split_config(p, c, warp_size);
    } catch (const Error&) {
      return;
    }
    out.push_back(c);
  };
  for (const auto& t : split_backward_shapes) offer(t[0], t[1], t[2], 0);
  for (const auto& t : norm_backward_ring_shapes) offer(t[0], t[1], t[2], t[3]);
  return out;
}

/// The config taken without timing (KILN_TUNE=off): softmax's heuristic for the row
/// (norm_row_heuristic, not the forward's staged and LayerNorm rules; its two passes with
/// steps as the backward's candidates load, softmax_backward_fitted) among the backward's
/// candidates (the candidate itself where the backward keeps it, else the one-pass
/// candidate with the fewest threads above it, else the first). Where cluster
/// candidates are offered (rows no block holds), the one of fewest blocks a cluster, by
/// 512 threads where it has them, else the most threads: on an H200, f16 with dweight
/// (and dbias), % of a copy against multi pass with the weight-gradient kernel, RMSNorm
/// 4096 x 16384 81% (56%), 1024 x 65536 75% (49%), LayerNorm 73% (52%) and 67% (46%).
/// Without the sums (dx alone, as a call that takes dweight and dbias from the
/// weight-gradient kernel asks), clusters of 4 or more blocks are not taken: tuned on an
/// H200, LayerNorm f16's dx alone on 1024 x 65536 took 94.6 us in two passes against 141 us
/// or more in clusters (and a split call's two-pass dx adds up the given row sums, reading
/// x and dy once: LayerNorm f32 1024 x 65536 with dweight and dbias, 360 us against 488 us
/// with its dx in clusters of 8). With dweight or dbias, where that choice is two passes
/// (which split the call: the weight-gradient kernel, dx, the column sum) but a one-pass
/// block holds the row, one pass by the most threads: on an H200, % of a copy, RMSNorm
/// f32 8192 x 8192 94.5% (two passes 52%), 4096 x 6144 81-83% (47%), LayerNorm f32
/// 4096 x 6144 80-81% (47%), RMSNorm f16 8192 x 12288 72.5% (46%), ragged rows (5414 f32,
/// 10972 f16 and bf16) 54-77% (35-38%). With dweight or dbias where no block or cluster
/// holds the row, split where split candidates are offered (below).
inline NormConfig norm_backward_heuristic(const NormBackwardParams& p,
                                          const std::vector<NormConfig>& candidates) {
  // Fewest blocks a cluster first, then 512 threads, then the most.
  auto rank = [](const NormConfig& x) {
    return std::pair(-x.cluster_blocks, x.threads_per_row == 512 ? 2048 : x.threads_per_row);
  };
  const NormConfig* shared = nullptr;
  for (const auto& c : candidates) {
    if (c.cluster_blocks > 1 && (!shared || rank(c) > rank(*shared))) shared = &c;
  }
  if (shared && (p.weight_grad || p.bias_grad || shared->cluster_blocks < 4)) return *shared;
  std::vector<NormConfig> rows;  // (softmax's heuristic knows no clusters, nor split rows)
  for (const auto& c : candidates) {
    if (c.cluster_blocks == 1 && c.strategy != NormStrategy::split) rows.push_back(c);
  }
  // Softmax's two passes, loading no more a step than the backward's candidates do.
  const SoftmaxParams row = norm_row(norm_forward(p));
  const SoftmaxConfig choice = softmax_heuristic_choice(row);
  const NormConfig want = choice.strategy == SoftmaxStrategy::multi_pass
                              ? to_norm(softmax_backward_fitted(row, choice))
                              : norm_row_heuristic(norm_forward(p), rows);
  if (want.strategy == NormStrategy::multi_pass && (p.weight_grad || p.bias_grad)) {
    // Two passes would split the call (weight-gradient kernel, dx, column sum): a row a
    // block holds in one pass, by the most threads, instead.
    const NormConfig* held = nullptr;
    for (const auto& c : candidates) {
      if (c.strategy == NormStrategy::one_pass && c.cluster_blocks == 1 &&
          (!held ||
           c.threads_per_row * c.rows_per_block > held->threads_per_row * held->rows_per_block)) {
        held = &c;
      }
    }
    if (held) return *held;
    // Nor one pass (rows no block or cluster holds): split where there are split
    // candidates, LayerNorm's 256 threads of 4 vectors by two blocks an SM and RMSNorm's
    // 128 of 4 by four (else the first unringed): on an H100 (benchmarks/norm --backward
    // --sweep), 64 x 1M f16, % of a copy of the op's bytes, LayerNorm with dweight and
    // dbias 65% (two passes 56%), RMSNorm with dweight 75% (55%), the best of their
    // candidates there, as they had been on an H200; with the column sum's few-parts path
    // since, 78.6% and 83.0%, still the best of theirs.
    const NormConfig* split = p.kind == NormKind::layer_norm
                                  ? split_shaped(candidates, NormStrategy::split, 256, 4, 2, 0)
                                  : split_shaped(candidates, NormStrategy::split, 128, 4, 4, 0);
    for (const auto& c : candidates) {
      if (!split && c.strategy == NormStrategy::split && c.split_ring == 0) split = &c;
    }
    if (split) return *split;
  }
  for (const auto& c : candidates) {
    if (c == want) return c;
  }
  if (want.strategy == NormStrategy::one_pass) {
    for (const auto& c : candidates) {
      if (c.strategy == NormStrategy::one_pass && c.threads_per_row > want.threads_per_row) {
        return c;
      }
    }
  }
  return candidates.front();
}

/// "norm_backward__layer__f16__cols4096__dw_db__t256v8": the factory's name, the kind, the
/// row, the sums compiled in (dw, db), then softmax's config part.
inline std::string norm_backward_kernel_name(const NormBackwardParams& p, const NormConfig& c) {
  const std::string forward = norm_kernel_name(norm_forward(p), c);  // "norm__layer__f16__..."
  const std::size_t config = forward.rfind("__");
  const std::string grads = p.weight_grad && p.bias_grad ? "dw_db__"
                            : p.weight_grad              ? "dw__"
                            : p.bias_grad                ? "db__"
                                                         : "";
  return "norm_backward" + forward.substr(4, config + 2 - 4) + grads + forward.substr(config + 2);
}

/// The blocks of a backward kernel an SM must hold at once (its launch bounds): with
/// dweight or dbias, whose grid is that many blocks an SM, enough for 512 threads; else 1.
inline int norm_backward_min_blocks(const NormBackwardParams& p, const NormConfig& c) {
  if (c.strategy == NormStrategy::split) return c.blocks_per_sm;
  if (!p.weight_grad && !p.bias_grad) return 1;
  return std::max(1, 512 / (c.threads_per_row * c.rows_per_block));
}

/// The header kernels/norm_backward.cu includes as "spec.hpp" (its comment lists what it
/// uses): the forward's, with the sums compiled in.
inline gen::Spec norm_backward_spec(const NormBackwardParams& p, const NormConfig& c) {
  gen::Spec s = norm_spec(norm_forward(p), c);
  s.constant("kWeightGrad", p.weight_grad ? 1 : 0)
      .constant("kBiasGrad", p.bias_grad ? 1 : 0)
      .constant("kMinBlocks", norm_backward_min_blocks(p, c));
  return s;
}

}  // namespace detail

/// The weight-gradient kernel (kernels/norm_weight_grad.cu), for rows a one-pass backward
/// cannot hold: a block of `threads` threads sums `threads` vectors of columns over a
/// group of rows, `unroll` rows' loads at a time. One config.
struct NormWeightGradConfig {
  std::int32_t threads = 128;
  std::int32_t unroll = 4;
  bool operator==(const NormWeightGradConfig&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NormWeightGradConfig, threads, unroll)

namespace detail {

/// Whether a backward call of `p` with config `c` takes dweight and dbias from the
/// weight-gradient kernel (a multi-pass backward then writes dx alone): a multi-pass
/// thread cannot keep its columns' sums in registers, and adding them to a partial row in
/// memory row by row costs a read and a write of a float an element.
inline bool norm_backward_split(const NormBackwardParams& p, const NormConfig& c) {
  return (p.weight_grad || p.bias_grad) && c.strategy == NormStrategy::multi_pass;
}

/// "norm_weight_grad__layer__f16__cols65536__dw_db".
inline std::string norm_weight_grad_kernel_name(const NormBackwardParams& p,
                                                const NormWeightGradConfig&) {
  const std::string backward = norm_backward_kernel_name(p, NormConfig{});
  // "norm_backward__layer__f16__cols65536__dw_db__t1v1": drop the config part.
  return "norm_weight_grad" + backward.substr(13, backward.rfind("__") - 13);
}

/// The header kernels/norm_weight_grad.cu includes as "spec.hpp": the backward's for
/// blocks of c.threads threads, one row, one vector each.
inline gen::Spec norm_weight_grad_spec(const NormBackwardParams& p, const NormWeightGradConfig& c) {
  const int vec = softmax_vector_width(norm_row(norm_forward(p)));
  gen::Spec s = norm_backward_spec(p, NormConfig{NormStrategy::multi_pass, c.threads, vec, 1, 1});
  s.constant("kUnroll", int(c.unroll));
  return s;
}

/// The row groups of a weight-gradient launch over `rows` rows on a device of
/// `multiprocessors` SMs, and the rows each: as many groups as give the grid 4 blocks an
/// SM, but no more than rows / 16 (rounded up): fewer groups leave fewer partial rows.
struct NormWeightGradGrid {
  std::int64_t groups;
  std::int64_t rows_per_group;
};
inline NormWeightGradGrid norm_weight_grad_grid(const NormBackwardParams& p,
                                                const NormWeightGradConfig& c,
                                                int multiprocessors) {
  const std::int64_t vec = softmax_vector_width(norm_row(norm_forward(p)));
  const std::int64_t col_blocks = ceil_div(std::int64_t(p.cols) / vec, c.threads);
  const std::int64_t rows = std::max<std::int64_t>(1, p.rows);
  const std::int64_t want = std::max<std::int64_t>(
      1, ceil_div(4 * std::int64_t(std::max(1, multiprocessors)), col_blocks));
  std::int64_t groups = std::min(want, ceil_div(rows, 16));
  groups = std::max<std::int64_t>(1, groups);
  const std::int64_t per = ceil_div(rows, groups);
  return {ceil_div(rows, per), per};
}

}  // namespace detail

/// Column sums of f32 partial rows written as dtype (kernels/column_sum.cu): the norms'
/// dweight and dbias from the backward kernel's partial rows. The number of partial rows
/// is a run-time argument.
struct ColumnSumParams {
  gen::DType dtype = gen::DType::f32;  ///< of the sums written
  std::int32_t cols = 1;
  bool operator==(const ColumnSumParams&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ColumnSumParams, dtype, cols)

/// A block of cols_per_block x groups threads: each group adds every groups-th partial
/// row of its columns, then the groups' sums are added in order. One config for a
/// problem on a device (`detail::column_sum_config`; the order of the additions is part
/// of the result, so it is never tuned).
struct ColumnSumConfig {
  std::int32_t cols_per_block = 32;
  std::int32_t groups = 8;
  bool operator==(const ColumnSumConfig&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ColumnSumConfig, cols_per_block, groups)

namespace detail {

/// The column sum's config for rows of `cols` on a device of `multiprocessors` SMs: 8
/// groups a block, or 32 where its blocks (one per 32 columns) are fewer than the SMs.
/// There the columns are too few to fill the GPU, and each thread's chains of partial
/// rows are its time (32768 x 512 backward: 16 blocks adding some 130 partial rows).
inline ColumnSumConfig column_sum_config(std::int32_t cols, int multiprocessors) {
  ColumnSumConfig c;
  if (ceil_div(std::int64_t(cols), c.cols_per_block) < std::int64_t(multiprocessors)) {
    c.groups = 32;
  }
  return c;
}

/// Whether kernels/column_sum.cu takes its few-parts path for `parts` partial rows at
/// `partial` (each thread 4 columns of its own, every partial row in order): fewer partial
/// rows than the config's groups, rows of whole 4-float vectors and a 16-byte aligned base.
/// The kernel makes the same test.
inline bool column_sum_few(const ColumnSumConfig& c, std::int32_t cols, std::int64_t parts,
                           const float* partial) {
  return cols % 4 == 0 && parts < c.groups && reinterpret_cast<std::uintptr_t>(partial) % 16 == 0;
}

/// The column sum's blocks along x for `parts` partial rows at `partial`: one per
/// cols_per_block columns, or on the few-parts path one per 4 x cols_per_block x groups.
inline std::int64_t column_sum_blocks(const ColumnSumConfig& c, std::int32_t cols,
                                      std::int64_t parts, const float* partial) {
  return column_sum_few(c, cols, parts, partial)
             ? ceil_div(std::int64_t(cols), 4 * std::int64_t(c.cols_per_block) * c.groups)
             : ceil_div(std::int64_t(cols), std::int64_t(c.cols_per_block));
}

/// "column_sum__f16__cols8192", "column_sum__f16__cols512__g32" (groups other than 8).
inline std::string column_sum_kernel_name(const ColumnSumParams& p, const ColumnSumConfig& c) {
  std::string name =
      "column_sum__" + std::string(gen::to_string(p.dtype)) + "__cols" + std::to_string(p.cols);
  if (c.groups != ColumnSumConfig{}.groups) name += "__g" + std::to_string(c.groups);
  if (c.cols_per_block != ColumnSumConfig{}.cols_per_block) {
    name += "__w" + std::to_string(c.cols_per_block);
  }
  return name;
}

/// The header kernels/column_sum.cu includes as "spec.hpp".
inline gen::Spec column_sum_spec(const ColumnSumParams& p, const ColumnSumConfig& c) {
  gen::Spec s;
  s.dim("COL", p.cols)
      .tensor(gen::TensorSpec("Out", p.dtype).dim("COL", p.cols))
      .constant("kCols", int(p.cols))
      .constant("kColsPerBlock", int(c.cols_per_block))
      .constant("kGroups", int(c.groups));
  return s;
}

}  // namespace detail
}  // namespace kiln::ops

/// NormBackwardParams has padding after `bias_grad`, so the factory's memo hashes it field
/// by field.
template <>
struct std::hash<kiln::ops::NormBackwardParams> {
  std::size_t operator()(const kiln::ops::NormBackwardParams& p) const noexcept {
    return kiln::factory::hash_combine(std::hash<std::int64_t>{}(p.rows),
                                       {std::int64_t(p.kind), std::int64_t(p.dtype), p.cols,
                                        (p.weight_grad ? 1 : 0) | (p.bias_grad ? 2 : 0)});
  }
};

/// NormParams has padding after `residual`, so the factory's memo hashes it field by field.
template <>
struct std::hash<kiln::ops::NormParams> {
  std::size_t operator()(const kiln::ops::NormParams& p) const noexcept {
    return kiln::factory::hash_combine(
        std::hash<std::int64_t>{}(p.rows),
        {std::int64_t(p.kind), std::int64_t(p.dtype), p.cols, p.residual ? 1 : 0});
  }
};
