#pragma once
/// The CPU side of kiln's row softmax (kernels/softmax.cu): its problem (SoftmaxParams), its
/// configs (SoftmaxConfig), which configs exist for a problem, the heuristic choice, kernel
/// names and the generated header. No GPU is touched here; include/kiln/ops/softmax.hpp
/// puts these together as a kernel factory.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../error.hpp"
#include "../../factory/gen_json.hpp"
#include "../../gen/spec.hpp"

namespace kiln::ops {

/// How a row is traversed: once with the row held in registers, twice (an online max
/// and sum, then the write) for rows too long for that, or once with the row (a
/// cluster's block: its slice) staged in shared memory (the forward, rows of 32 KiB and
/// more); or `split` (the forward, NVIDIA GPUs of sm_80 and later, rows of 64 KiB and
/// more): each row cut into slices of threads_per_row x vectors_per_thread vectors, shared
/// by a persistent grid whose blocks exchange the slices' maxima and sums through global
/// memory (kernels/softmax.cu says how).
enum class SoftmaxStrategy : std::int32_t { one_pass, multi_pass, staged, split };
NLOHMANN_JSON_SERIALIZE_ENUM(SoftmaxStrategy, {{SoftmaxStrategy::one_pass, "one_pass"},
                                               {SoftmaxStrategy::multi_pass, "multi_pass"},
                                               {SoftmaxStrategy::staged, "staged"},
                                               {SoftmaxStrategy::split, "split"}})

/// A softmax over the last dimension of a row-major (rows, cols) matrix.
struct SoftmaxParams {
  gen::DType dtype = gen::DType::f32;  ///< f16, bf16 or f32 (math is f32 for all three)
  std::int32_t cols = 1;               ///< 1 to 1,048,576; compiled into the kernel
  std::int64_t rows = 0;               ///< 0 to 2^31 - 1; a run-time argument of the kernel
  bool operator==(const SoftmaxParams&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SoftmaxParams, dtype, cols, rows)

/// How one kernel is shaped. A block is threads_per_row x rows_per_block threads; each
/// thread moves vector_width elements at a time (16 bytes at most).
struct SoftmaxConfig {
  SoftmaxStrategy strategy = SoftmaxStrategy::one_pass;
  std::int32_t threads_per_row = 1;  ///< a power of 2 up to 1024
  std::int32_t vector_width = 1;     ///< a power of 2 that divides cols
  std::int32_t rows_per_block = 1;   ///< 1 for multi_pass and staged
  /// one_pass: the vectors each thread holds, ceil(cols / vector_width / threads_per_row);
  /// multi_pass: the vectors each thread loads per step of its loop; staged: the vectors
  /// each thread copies into shared memory (the block's slice over the threads, exactly).
  std::int32_t vectors_per_thread = 1;
  /// Blocks of a thread-block cluster (sm_90) that share each row, each taking an equal
  /// slice of its vectors (one_pass and vectors_per_thread count over the slice): 1 (a row
  /// per block or slot), 2, 4 or 8. Forward only.
  std::int32_t cluster_blocks = 1;
  /// split only (else 0): the blocks an SM the kernel is compiled for (its launch
  /// bounds), and the persistent grid, the device's SMs times that, every block resident
  /// at once (a cooperative launch).
  std::int32_t blocks_per_sm = 0;
  std::int32_t grid_blocks = 0;
  /// The forward's split only (else 0): the slices a block's ring in shared memory holds
  /// (3 to split_ring_max), each thread copying its vectors of the slices it reads next
  /// into it by cp.async, split_ring - 2 rounds ahead, and reading them back there, for
  /// the max and sum and again for the write, where 0 loads each slice into registers and
  /// again from L2.
  std::int32_t split_ring = 0;
  /// staged only (else 0): of a thread's vectors_per_thread, the last staged_held it holds
  /// in registers rather than in shared memory, for rows longer than a block's shared
  /// memory holds (up to 256 KiB: 192 KiB staged, the rest 64 bytes a thread by 1024
  /// threads or 128 by 512), so that such a row too is read from memory once. A block a
  /// row (cluster_blocks 1).
  std::int32_t staged_held = 0;
  bool operator==(const SoftmaxConfig&) const = default;
};
// (Tuning records written before cluster_blocks, blocks_per_sm, grid_blocks, split_ring and
// staged_held existed read as 1, 0, 0, 0 and 0.)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SoftmaxConfig, strategy, threads_per_row,
                                                vector_width, rows_per_block, vectors_per_thread,
                                                cluster_blocks, blocks_per_sm, grid_blocks,
                                                split_ring, staged_held)

namespace detail {

inline constexpr std::int32_t softmax_max_cols = 1 << 20;
/// Register budget of a one-pass thread: the bytes of its row it holds, 32 registers (16
/// in blocks of 1024 threads, which have 64 registers a thread in all).
inline int softmax_register_bytes(std::int64_t threads_per_block) {
  return threads_per_block >= 1024 ? 64 : 128;
}
inline constexpr int softmax_max_threads = 1024;
/// The most bytes of a row a staged block holds in shared memory (an sm_90 block may have
/// 227 KiB; softmax_staged_configs keeps to what the device gives, less 4 KiB).
inline constexpr std::int64_t softmax_max_staged_bytes = 192 * 1024;

/// The dynamic shared memory of a block of config `c` for `p`: a staged block's slice of
/// the row, less the vectors its threads hold in registers (0 for the other strategies).
inline std::int64_t softmax_shared_bytes(const SoftmaxParams& p, const SoftmaxConfig& c) {
  if (c.strategy != SoftmaxStrategy::staged) return 0;
  return std::int64_t(c.threads_per_row) * (c.vectors_per_thread - c.staged_held) * c.vector_width *
         gen::size_of(p.dtype);
}

inline bool is_power_of_2(std::int64_t v) {
  return v > 0 && (v & (v - 1)) == 0;
}
inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

/// The power of two at or above `rows` (2^31 - 1 at the top): the row count a softmax
/// kernel is looked up, and tuned, for.
inline std::int64_t row_bucket(std::int64_t rows) {
  std::int64_t b = 1;
  while (b < rows && b < (std::int64_t(1) << 30)) b <<= 1;
  return b < rows ? std::int64_t(std::numeric_limits<std::int32_t>::max()) : b;
}

/// Throws kiln::Error unless `op` ("softmax" or "softmax_backward") supports `p`, saying
/// what is supported; its messages start "kiln: <op>: ".
inline void validate_softmax_problem(const SoftmaxParams& p, const char* op) {
  const std::string what = std::string("kiln: ") + op + ": ";
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

/// Throws kiln::Error unless kiln's softmax supports `p`.
inline void validate_softmax(const SoftmaxParams& p) {
  validate_softmax_problem(p, "softmax");
}

/// The widest vector (at most 16 bytes) whose width divides cols, so that every row
/// starts aligned: 8 for f16 rows of 4096, 1 for rows of 1001.
inline int softmax_vector_width(const SoftmaxParams& p) {
  int v = 16 / gen::size_of(p.dtype);
  while (p.cols % v != 0) v /= 2;
  return v;
}

/// The one-pass config with `threads` per row and at least `block` threads per block.
inline SoftmaxConfig softmax_one_pass(const SoftmaxParams& p, int threads, int block) {
  const int vec = softmax_vector_width(p);
  const int iters = int(ceil_div(p.cols / vec, threads));
  return {SoftmaxStrategy::one_pass, threads, vec, threads >= block ? 1 : block / threads, iters};
}

// ---- Rows split across a persistent grid: the rules softmax's split configs and the
// norms' share (C is SoftmaxConfig or NormConfig) ----

/// The shapes of ringed split candidates: (threads a block, vectors a thread a slice,
/// blocks an SM, split_ring). A ring of R slices in shared memory copies R - 2 rounds
/// ahead: 3 keeps one slice a block in flight while the block sums and writes, 4 and 5 two
/// and three, for GPUs whose SMs need more bytes in flight than one slice (an H200 SM about
/// 36 KiB at a copy's rate). The devices' shared memory decides which are offered (256 x 4
/// alone with rings of 4 and 5: the deeper rings an H200 SM holds with the norms' residual).
inline constexpr int split_ring_shapes[10][4] = {
    {256, 4, 2, 3}, {128, 8, 2, 3}, {256, 8, 1, 3}, {256, 4, 2, 4}, {128, 8, 2, 4},
    {256, 8, 1, 4}, {256, 4, 2, 5}, {256, 8, 1, 5}, {256, 4, 1, 4}, {256, 4, 1, 5}};

/// The most slices a split ring holds (split_ring 3 to this).
inline constexpr int split_ring_max = 5;

/// The shapes split candidates take: (threads a block, vectors a thread a slice, blocks
/// an SM).
inline constexpr int split_shapes[5][3] = {
    {128, 8, 4}, {64, 8, 8}, {64, 16, 4}, {256, 4, 2}, {256, 8, 2}};

/// The slices a row of `cols` elements is cut into by split config `c` (threads_per_row x
/// vectors_per_thread vectors each, the last one ragged).
template <class C>
std::int64_t split_slices(std::int32_t cols, const C& c) {
  const std::int64_t vectors = cols / std::max(c.vector_width, 1);
  const std::int64_t slice = std::int64_t(c.threads_per_row) * c.vectors_per_thread;
  return slice > 0 ? (vectors + slice - 1) / slice : 0;
}

/// The rule split config `c` breaks for rows of `cols` elements of `dtype` on a device of
/// `warp_size`-thread warps, "" where it breaks none: 64, 128 or 256 threads of 32-thread
/// warps, one slice at a time (no rows a block, no cluster); 16-byte vectors; 4, 8 or 16
/// vectors a thread a slice; at most 1024 threads an SM; a grid of at least a row's slices
/// (each round of the grid's blocks takes a row's sums a round after it reads them); at
/// most `lane_words` words a lane of the warp that adds a row's slices up, `slot_words` a
/// slice.
template <class C>
std::string split_rule_broken(std::int32_t cols, gen::DType dtype, const C& c, int warp_size,
                              std::int64_t slot_words, std::int64_t lane_words) {
  if (warp_size != 32) return "split configs run on NVIDIA GPUs (32-thread warps)";
  if (c.threads_per_row != 64 && c.threads_per_row != 128 && c.threads_per_row != 256) {
    return "a split block has 64, 128 or 256 threads";
  }
  if (c.rows_per_block != 1 || c.cluster_blocks != 1) {
    return "a split block takes one slice at a time (rows_per_block = 1, cluster_blocks = 1)";
  }
  if (std::int64_t(c.vector_width) * gen::size_of(dtype) != 16 || cols % c.vector_width != 0) {
    return "split configs load 16-byte vectors: vector_width " +
           std::to_string(16 / gen::size_of(dtype)) + ", which must divide cols";
  }
  if (c.vectors_per_thread != 4 && c.vectors_per_thread != 8 && c.vectors_per_thread != 16) {
    return "a split thread takes 4, 8 or 16 vectors of a slice";
  }
  if (c.blocks_per_sm < 1 || c.threads_per_row * c.blocks_per_sm > 1024) {
    return "blocks_per_sm must be at least 1, with at most 1024 threads an SM";
  }
  if (c.split_ring != 0 && (c.split_ring < 3 || c.split_ring > split_ring_max)) {
    return "split_ring is 0 (no ring) or 3 to " + std::to_string(split_ring_max) + " slices, not " +
           std::to_string(c.split_ring);
  }
  const std::int64_t slices = split_slices(cols, c);
  if (c.grid_blocks < slices) {
    return "the grid's " + std::to_string(c.grid_blocks) + " blocks are fewer than a row's " +
           std::to_string(slices) + " slices; take longer slices";
  }
  if (slices * slot_words > lane_words * 32) {
    return "a row's " + std::to_string(slices) + " slices need more than " +
           std::to_string(lane_words) + " slot words a lane; take longer slices";
  }
  return "";
}

/// The split candidates (`split_shapes` that split_rule_broken allows) for rows of 64 KiB
/// and more of `cols` elements of `dtype`, on a device of `multiprocessors` SMs (a grid of
/// that many times the shape's blocks an SM).
template <class C>
std::vector<C> split_candidates(decltype(C::strategy) split, std::int32_t cols, gen::DType dtype,
                                int warp_size, int multiprocessors, std::int64_t slot_words,
                                std::int64_t lane_words, bool rings = false) {
  std::vector<C> out;
  if (warp_size != 32 || multiprocessors < 1) return out;
  if (std::int64_t(cols) * gen::size_of(dtype) < 64 * 1024) return out;
  const std::int32_t vec = std::int32_t(16 / gen::size_of(dtype));
  for (const auto& t : split_shapes) {
    const C c{split, t[0], vec, 1, t[1], 1, t[2], multiprocessors * t[2]};
    if (split_rule_broken(cols, dtype, c, warp_size, slot_words, lane_words).empty()) {
      out.push_back(c);
    }
  }
  // With `rings`: the ringed shapes too (split_ring_shapes).
  for (const auto& t : split_ring_shapes) {
    if (!rings) break;
    C c{split, t[0], vec, 1, t[1], 1, t[2], multiprocessors * t[2]};
    c.split_ring = t[3];
    if (split_rule_broken(cols, dtype, c, warp_size, slot_words, lane_words).empty()) {
      out.push_back(c);
    }
  }
  return out;
}

/// The untuned choice among `candidates`' split configs (strategy `split`): 256 threads of
/// 8 vectors (2 blocks an SM) where there is one, else the first; null where there is
/// none. On the H200 (benchmarks/norm --sweep, RMSNorm 64 x 1M) 256 x 8 ran at 80.9% of a
/// copy in f16 and 74.4% in f32, 128 x 8 (4 blocks an SM) at 74.0% and 61.2%, 64 x 16 at
/// 72.5% and 61.0%, 64 x 8 (f16) and 256 x 4 at 60-61% (f32 37%); multi pass at 50%.
template <class C>
const C* split_choice(const std::vector<C>& candidates, decltype(C::strategy) split) {
  const C* first = nullptr;
  for (const C& c : candidates) {
    if (c.strategy != split) continue;
    if (c.threads_per_row == 256 && c.vectors_per_thread == 8) return &c;
    if (!first) first = &c;
  }
  return first;
}

/// The split candidate (strategy `split`) among `candidates` of `threads` threads of
/// `vectors` vectors, `blocks` blocks an SM and a ring of `ring` slices (0: none); null
/// where there is none (not offered on the device, or the row's rules refuse it).
template <class C>
const C* split_shaped(const std::vector<C>& candidates, decltype(C::strategy) split, int threads,
                      int vectors, int blocks, int ring) {
  for (const C& c : candidates) {
    if (c.strategy == split && c.threads_per_row == threads && c.vectors_per_thread == vectors &&
        c.blocks_per_sm == blocks && c.split_ring == ring) {
      return &c;
    }
  }
  return nullptr;
}

/// The shapes of the backward passes' split candidates (softmax's and the norms'): (threads
/// a block, vectors a thread a slice, blocks an SM). A backward thread holds two slices,
/// the one it reads and the one it writes, of two matrices each (y and dy; h and dy): 4
/// vectors a slice by blocks that share an SM with one or three others, 8 by a block
/// alone or two of 128 threads, so that an SM holds 2048 vectors of a slice at most
/// (split_backward_rule_broken).
inline constexpr int split_backward_shapes[4][3] = {
    {256, 4, 2}, {128, 4, 4}, {256, 8, 1}, {128, 8, 2}};

/// The rule a backward split config `c` breaks beyond split_rule_broken's, "" where none:
/// at most 2048 vectors of a slice an SM (threads x vectors a thread x blocks an SM).
template <class C>
std::string split_backward_rule_broken(const C& c) {
  const std::int64_t vectors =
      std::int64_t(c.threads_per_row) * c.vectors_per_thread * c.blocks_per_sm;
  if (vectors > 2048) {
    return "a backward split SM holds at most 2048 vectors of a slice (threads x vectors a "
           "thread x blocks an SM: " +
           std::to_string(vectors) + " here); take fewer vectors or blocks";
  }
  return "";
}

/// A split launch's slot words a slice (one 64-bit word: the slice's maximum in the high
/// half, its sum of exp(x - max) in the low one, never both zero), and the most a lane of
/// the warp that adds a row's slices up holds.
inline constexpr std::int64_t softmax_split_slot_words = 1;
inline constexpr std::int64_t softmax_split_lane_words = 8;

/// The slot words a split launch of `c` over `p` exchanges its slices' sums through.
inline std::size_t softmax_split_words(const SoftmaxParams& p, const SoftmaxConfig& c) {
  return std::size_t(p.rows) * std::size_t(split_slices(p.cols, c) * softmax_split_slot_words);
}

/// The split candidates for `p` on a device of `multiprocessors` SMs (the forward on
/// NVIDIA GPUs: softmax_description adds them where rows are 64 KiB or more):
/// split_candidates, the shapes of split_shapes that the rules allow.
inline std::vector<SoftmaxConfig> softmax_split_configs(const SoftmaxParams& p, int warp_size,
                                                        int multiprocessors) {
  return split_candidates<SoftmaxConfig>(SoftmaxStrategy::split, p.cols, p.dtype, warp_size,
                                         multiprocessors, softmax_split_slot_words,
                                         softmax_split_lane_words, true);
}

/// Whether an SM holds `blocks` split blocks (softmax's or the norms', either direction;
/// and the norms' staged blocks, for their rows ahead) of `bytes` of dynamic shared memory
/// each: each within `shared_per_block`, and all, with
/// 2 KiB a block for the static scratch and what the driver keeps, within `shared_per_sm`.
inline bool split_blocks_fit(std::int64_t bytes, std::int64_t blocks, std::int64_t shared_per_block,
                             std::int64_t shared_per_sm) {
  return bytes <= shared_per_block && blocks * (bytes + 2048) <= shared_per_sm;
}

/// The dynamic shared memory a split block of `c` takes: its ring's slices (16 bytes a
/// vector), none without a ring.
inline std::int64_t softmax_split_shared_bytes(const SoftmaxConfig& c) {
  return std::int64_t(c.split_ring) * 16 * c.threads_per_row * c.vectors_per_thread;
}

/// Throws kiln::Error unless `c` is a config the kernel can run `p` with on a device
/// whose warps have `warp_size` threads.
inline void validate_softmax_config(const SoftmaxParams& p, const SoftmaxConfig& c, int warp_size) {
  const std::string what = "kiln: softmax config " + nlohmann::json(c).dump() + " for " +
                           nlohmann::json(p).dump() + ": ";
  const int esize = gen::size_of(p.dtype);
  if (!is_power_of_2(c.vector_width) || c.vector_width * esize > 16 ||
      p.cols % c.vector_width != 0) {
    throw Error(what + "vector_width must be a power of 2 that divides cols, at most 16 bytes");
  }
  if (!is_power_of_2(c.threads_per_row) || c.threads_per_row > softmax_max_threads) {
    throw Error(what + "threads_per_row must be a power of 2 from 1 to 1024");
  }
  const std::int64_t block = std::int64_t(c.threads_per_row) * c.rows_per_block;
  if (c.rows_per_block < 1 || block > softmax_max_threads || block % warp_size != 0) {
    throw Error(what + "threads_per_row x rows_per_block must be whole warps of " +
                std::to_string(warp_size) + ", at most 1024 threads");
  }
  if (c.vectors_per_thread < 1) throw Error(what + "vectors_per_thread must be positive");
  if (c.staged_held != 0 && c.strategy != SoftmaxStrategy::staged) {
    throw Error(what + "staged_held is staged configs' (0 for the others)");
  }
  if (c.strategy == SoftmaxStrategy::split) {
    const std::string rule = split_rule_broken(p.cols, p.dtype, c, warp_size,
                                               softmax_split_slot_words, softmax_split_lane_words);
    if (!rule.empty()) throw Error(what + rule);
    return;
  }
  if (c.blocks_per_sm != 0 || c.grid_blocks != 0 || c.split_ring != 0) {
    throw Error(what +
                "blocks_per_sm, grid_blocks and split_ring are split configs' (0 for the "
                "others)");
  }
  if (c.cluster_blocks != 1) {
    if (c.cluster_blocks != 2 && c.cluster_blocks != 4 && c.cluster_blocks != 8 &&
        c.cluster_blocks != 16) {
      throw Error(what +
                  "cluster_blocks must be 1, 2, 4, 8 or 16 (16: not portable, where the "
                  "device holds such a cluster)");
    }
    if (c.rows_per_block != 1) {
      throw Error(what + "a cluster shares one row among its blocks (rows_per_block = 1)");
    }
    if ((p.cols / c.vector_width) % c.cluster_blocks != 0) {
      throw Error(what + "a cluster splits the row into equal slices of whole vectors: " +
                  std::to_string(p.cols / c.vector_width) + " vectors do not divide by " +
                  std::to_string(c.cluster_blocks));
    }
  }
  if (c.strategy == SoftmaxStrategy::one_pass) {
    const std::int64_t need =
        ceil_div(p.cols / c.vector_width / c.cluster_blocks, c.threads_per_row);
    if (c.vectors_per_thread != need) {
      throw Error(what + "one_pass needs vectors_per_thread = " + std::to_string(need) +
                  (c.cluster_blocks > 1 ? " (the block's slice of the row over the threads)"
                                        : " (the row over the threads)"));
    }
    if (need * c.vector_width * esize > softmax_register_bytes(block)) {
      throw Error(what + "one_pass holds at most " + std::to_string(softmax_register_bytes(block)) +
                  " bytes of the row per thread (" + std::to_string(need * c.vector_width * esize) +
                  " here) in blocks of " + std::to_string(block) +
                  " threads; use more threads, fewer rows per block or multi_pass");
    }
  } else if (c.strategy == SoftmaxStrategy::staged) {
    if (c.rows_per_block != 1) {
      throw Error(what + "staged runs one row per block (rows_per_block = 1)");
    }
    const int vector_bytes = c.vector_width * esize;
    if (vector_bytes != 4 && vector_bytes != 8 && vector_bytes != 16) {
      throw Error(what + "staged copies vectors of 4, 8 or 16 bytes (cp.async), not " +
                  std::to_string(vector_bytes));
    }
    if (std::int64_t(c.threads_per_row) * c.vectors_per_thread * c.cluster_blocks !=
        p.cols / c.vector_width) {
      throw Error(what +
                  "staged needs threads_per_row x vectors_per_thread vectors a block, the "
                  "row's (or its cluster's slice) exactly");
    }
    if (c.staged_held != 0) {
      if (c.cluster_blocks != 1) {
        throw Error(what + "staged_held is for a block a row (cluster_blocks 1)");
      }
      if (c.staged_held < 0 || c.staged_held >= c.vectors_per_thread) {
        throw Error(what + "staged_held is 0 to vectors_per_thread - 1 (" +
                    std::to_string(c.vectors_per_thread - 1) +
                    "): a thread stages one vector or more");
      }
      const std::int64_t held_bytes = std::int64_t(c.staged_held) * vector_bytes;
      if (held_bytes > softmax_register_bytes(block)) {
        throw Error(what + "a staged thread holds at most " +
                    std::to_string(softmax_register_bytes(block)) +
                    " bytes of the row in registers in blocks of " + std::to_string(block) +
                    " threads (" + std::to_string(held_bytes) + " here)");
      }
    }
    if (softmax_shared_bytes(p, c) > softmax_max_staged_bytes) {
      throw Error(what + "a staged block holds at most " +
                  std::to_string(softmax_max_staged_bytes) + " bytes of the row (" +
                  std::to_string(softmax_shared_bytes(p, c)) +
                  " here); use a cluster of more blocks, or hold vectors in registers "
                  "(staged_held)");
    }
  } else if (c.rows_per_block != 1) {
    throw Error(what + "multi_pass runs one row per block (rows_per_block = 1)");
  }
}

/// Every candidate config for `p` on a device with warps of `warp_size` threads.
///   one_pass    threads per row from 1 to 1024 (powers of 2) where the row fits in the
///               registers (128 bytes a thread, 64 at 1024 threads) and no thread idles;
///               below 128 threads per row, blocks of 128 and 256 threads
///   multi_pass  for rows of 16 KiB and more (and any row one_pass cannot hold): 256, 512
///               or 1024 threads, each loading 2, 4 or 8 vectors per step
inline std::vector<SoftmaxConfig> softmax_configs(const SoftmaxParams& p, int warp_size) {
  std::vector<SoftmaxConfig> out;
  const int vec = softmax_vector_width(p);
  const std::int64_t vecs = p.cols / vec;
  const std::int64_t row_bytes = std::int64_t(p.cols) * gen::size_of(p.dtype);
  for (int t = 1; t <= softmax_max_threads; t *= 2) {
    if (t > 1 && t / 2 >= vecs) break;  // half the threads or more would idle
    for (int block : {128, 256}) {
      if (t >= block && block != 128) continue;  // one row per block: a single choice
      SoftmaxConfig c = softmax_one_pass(p, t, std::max(block, warp_size));
      const int block_threads = c.threads_per_row * c.rows_per_block;
      if (c.vectors_per_thread * vec * gen::size_of(p.dtype) >
          softmax_register_bytes(block_threads)) {
        continue;
      }
      if (std::int64_t(c.threads_per_row) * c.rows_per_block % warp_size != 0) continue;
      out.push_back(c);
    }
  }
  if (row_bytes >= 16 * 1024 || out.empty()) {
    for (int t : {256, 512, 1024}) {
      for (int iters : {2, 4, 8}) {
        if (t % warp_size != 0) continue;
        out.push_back({SoftmaxStrategy::multi_pass, t, vec, 1, iters});
      }
    }
  }
  return out;
}

/// The cluster candidates for `p` (the forward on sm_90: softmax_description adds them
/// where the device has clusters), for rows of 32 KiB and more, which a block per row
/// leaves the GPU waiting on: rows shared by clusters of 2, 4 or 8 blocks; one pass over
/// a slice that fits the registers (512 or 1024 threads), else multi pass (512 or 1024
/// threads, 2 or 4 vectors a step). Timed on the H200 they did not beat the configs
/// without clusters (docs/ops.md): never the heuristic's choice.
inline std::vector<SoftmaxConfig> softmax_cluster_configs(const SoftmaxParams& p, int warp_size) {
  std::vector<SoftmaxConfig> out;
  const int esize = gen::size_of(p.dtype);
  if (std::int64_t(p.cols) * esize < 32 * 1024) return out;
  const int vec = softmax_vector_width(p);
  const std::int64_t vecs = p.cols / vec;
  for (int blocks : {2, 4, 8}) {
    if (vecs % blocks != 0) continue;
    const std::int64_t slice = vecs / blocks;
    bool one_pass = false;
    for (int t : {512, 1024}) {
      if (t % warp_size != 0 || t / 2 >= slice) continue;
      const std::int64_t need = ceil_div(slice, t);
      if (need * vec * esize > softmax_register_bytes(t)) continue;
      out.push_back({SoftmaxStrategy::one_pass, t, vec, 1, std::int32_t(need), blocks});
      one_pass = true;
    }
    if (one_pass) continue;
    for (int t : {512, 1024}) {
      for (int iters : {2, 4}) {
        if (t % warp_size != 0) continue;
        out.push_back({SoftmaxStrategy::multi_pass, t, vec, 1, iters, blocks});
      }
    }
  }
  return out;
}

/// The blocks of a staged kernel an SM is to hold at once (its launch bounds, which keep
/// its registers from limiting them): as many as 2048 threads and 227 KiB of shared memory
/// (an H100's or H200's) take, each block's `threads` and `shared_bytes` and 1 KiB more.
inline int staged_min_blocks(std::int64_t threads, std::int64_t shared_bytes) {
  const std::int64_t by_shared = (227 * 1024) / (shared_bytes + 1024);
  return int(std::clamp<std::int64_t>(std::min<std::int64_t>(2048 / threads, by_shared), 1, 8));
}
inline int softmax_staged_min_blocks(const SoftmaxParams& p, const SoftmaxConfig& c) {
  return staged_min_blocks(c.threads_per_row, softmax_shared_bytes(p, c));
}

/// The most bytes of a row one staged block holds on a device whose blocks may have
/// `shared_optin` bytes of shared memory: softmax_max_staged_bytes, and 4 KiB less than
/// that (both staged candidates keep to it).
inline std::int64_t softmax_staged_fit(std::int64_t shared_optin) {
  return std::min(softmax_max_staged_bytes, shared_optin - 4 * 1024);
}

/// The staged candidates for `p` (the forward: softmax_description adds them), for rows of
/// 32 KiB and more whose vectors are 4 to 16 bytes and whose bytes are at most
/// softmax_max_staged_bytes and the device's `shared_optin` bytes a block less 4 KiB: the
/// row copied into one block's shared memory by 512 or 1024 threads. Rows longer than that
/// by at most what the threads hold in registers (softmax_register_bytes: 64 bytes a
/// thread of 1024, 128 of 512) take as many vectors a thread as the shared memory holds,
/// and hold the rest in registers (staged_held): rows of up to 256 KiB on an H100 or H200
/// (f32 65536 columns, 16-bit 131072). (Clusters of 2 to 8 staged blocks sharing a row are
/// valid configs, but ran at 29-66% of a copy on the H200 where one block a row reached
/// 82-98%: none are offered where a block holds the row.)
inline std::vector<SoftmaxConfig> softmax_staged_configs(const SoftmaxParams& p, int warp_size,
                                                         std::int64_t shared_optin) {
  std::vector<SoftmaxConfig> out;
  const int esize = gen::size_of(p.dtype);
  const int vec = softmax_vector_width(p);
  const std::int64_t row_bytes = std::int64_t(p.cols) * esize;
  const std::int64_t fit = softmax_staged_fit(shared_optin);
  if (row_bytes < 32 * 1024 || vec * esize < 4) return out;
  const std::int64_t vecs = p.cols / vec;
  for (int t : {512, 1024}) {
    if (t % warp_size != 0 || vecs % t != 0) continue;
    const std::int64_t iters = vecs / t;
    const std::int64_t staged = std::min(iters, fit / (std::int64_t(t) * vec * esize));
    const std::int64_t held = iters - staged;
    if (staged < 1 || held * vec * esize > softmax_register_bytes(t)) continue;
    SoftmaxConfig c{SoftmaxStrategy::staged, t, vec, 1, std::int32_t(iters)};
    c.staged_held = std::int32_t(held);
    out.push_back(c);
  }
  return out;
}

/// The staged cluster candidates for `p` (the forward on sm_90: softmax_description adds
/// them where the device has clusters), for rows longer than one staged block holds
/// (softmax_max_staged_bytes, and the device's `shared_optin` less 4 KiB): the row split
/// over the fewest blocks of a cluster, 2 to 16, whose slices fit, each slice staged by
/// 512 or 1024 threads, so that the row is read from memory once (64 x 1M f16: 16 blocks of
/// 128 KiB; clusters of 16 are not portable, and run where the device holds them). Where
/// one block holds the row, clusters of staged blocks lost to it (ran at 29-66% of a copy
/// on the H200): none are offered there. Tuning candidates only, never the heuristic's
/// choice: on 64 x 1M f16 and bf16 they ran at 53-54% of a copy on the H200, against 55-57%
/// for multi pass (docs/ops.md).
inline std::vector<SoftmaxConfig> softmax_staged_cluster_configs(const SoftmaxParams& p,
                                                                 int warp_size,
                                                                 std::int64_t shared_optin) {
  std::vector<SoftmaxConfig> out;
  const int esize = gen::size_of(p.dtype);
  const int vec = softmax_vector_width(p);
  const std::int64_t row_bytes = std::int64_t(p.cols) * esize;
  const std::int64_t fits = softmax_staged_fit(shared_optin);
  if (row_bytes <= fits || vec * esize < 4) return out;
  const std::int64_t vecs = p.cols / vec;
  for (int blocks : {2, 4, 8, 16}) {
    if (vecs % blocks != 0 || row_bytes / blocks > fits) continue;
    for (int t : {512, 1024}) {
      if (t % warp_size != 0 || vecs / blocks % t != 0) continue;
      out.push_back({SoftmaxStrategy::staged, t, vec, 1, std::int32_t(vecs / blocks / t), blocks});
    }
    break;  // the fewest blocks whose slices fit
  }
  return out;
}

/// The config taken without timing (KILN_TUNE=off), from timings on an H200
/// (benchmarks/softmax --sweep):
///   rows up to 16 KiB  one pass, each thread holding two 16-byte vectors (at least 16
///                      bytes where the vectors are narrower), in blocks of 128 threads or
///                      one row: 97-100% of a copy's bandwidth from 128 to 8192 f16
///   longer rows        two passes of about two steps each: 512 threads up to 4096 vectors
///                      a row, else 1024, loading 2, 4 or 8 vectors a step
inline SoftmaxConfig softmax_heuristic_choice(const SoftmaxParams& p) {
  const int esize = gen::size_of(p.dtype);
  const std::int64_t row_bytes = std::int64_t(p.cols) * esize;
  const int vec = softmax_vector_width(p);
  const std::int64_t vecs = p.cols / vec;
  if (row_bytes <= 16 * 1024) {
    const std::int64_t per_thread = std::max(2, 16 / (vec * esize));
    int t = 1;
    while (t < 512 && std::int64_t(t) * per_thread < vecs) t *= 2;
    return softmax_one_pass(p, t, 128);
  }
  const int t = vecs <= 4096 ? 512 : 1024;
  int iters = 2;
  while (iters < 8 && std::int64_t(t) * iters * 2 < vecs) iters *= 2;
  return {SoftmaxStrategy::multi_pass, t, vec, 1, iters};
}
/// Whether an untuned heuristic may take staged config `staged_held` for a row of
/// `row_bytes`: a row held partly in registers only past softmax_max_staged_bytes, where an
/// H100's or H200's blocks hold it (as it was timed); where a smaller shared memory makes
/// shorter rows held in part (sm_86, sm_89), those are tuning candidates only.
inline bool untuned_staged(std::int32_t staged_held, std::int64_t row_bytes) {
  return staged_held == 0 || row_bytes > softmax_max_staged_bytes;
}

/// softmax_heuristic_choice where it is among `candidates`, else the first of them.
inline SoftmaxConfig softmax_heuristic(const SoftmaxParams& p,
                                       const std::vector<SoftmaxConfig>& candidates) {
  const SoftmaxConfig want = softmax_heuristic_choice(p);
  for (const auto& c : candidates) {
    if (c == want) return c;
  }
  return candidates.front();
}

/// The forward's config without timing: softmax_heuristic, but rows of 32 KiB and more
/// are staged in shared memory where a candidate does, by 512 threads (f16, bf16) or 1024
/// (f32), rows over 192 KiB with their last vectors held in registers (staged_held); rows
/// of 64 KiB and more that no staged candidate holds are split across the grid
/// (softmax_split_configs); else rows over 16 KiB and up to 32 KiB are held in one pass by
/// 1024 threads. On the H200 (benchmarks/softmax --sweep), % of a copy, staged against the
/// best config without it: 1024 x 65536 f16 91% (two passes 80%), 2048 x 32768 f16 97%
/// (88%), 4096 x 16384 f16 97% (one pass 92%), bf16 the same within a point; 4096 x 16384
/// f32 96-97% (two passes 91%), 8192 x 8192 f32 98%. (512 threads lead 1024 by up to 5% in
/// 16-bit rows; in f32 1024 lead by up to 3% or tie.) Rows held partly in registers, on an
/// H100: 1024 x 65536 f32 96% (split 89-90%), 512 x 131072 f16 93% (split 86%). The
/// backward and the norms, which hold more a thread, keep softmax_heuristic.
inline SoftmaxConfig softmax_forward_heuristic(const SoftmaxParams& p,
                                               const std::vector<SoftmaxConfig>& candidates) {
  const std::int64_t row_bytes = std::int64_t(p.cols) * gen::size_of(p.dtype);
  if (row_bytes >= 32 * 1024) {
    const int threads = p.dtype == gen::DType::f32 ? 1024 : 512;
    for (const auto& c : candidates) {
      // (A block a row: staged clusters are tuning candidates only, as are some rows held
      // partly in registers: untuned_staged.)
      if (c.strategy == SoftmaxStrategy::staged && c.cluster_blocks == 1 &&
          c.threads_per_row == threads && untuned_staged(c.staged_held, row_bytes)) {
        return c;
      }
    }
  }
  if (row_bytes >= 64 * 1024) {           // rows no staged block holds: split (split_choice)
    std::vector<SoftmaxConfig> unringed;  // (ringed splits are tuning candidates only)
    for (const SoftmaxConfig& c : candidates) {
      if (c.split_ring == 0) unringed.push_back(c);
    }
    if (const SoftmaxConfig* split = split_choice(unringed, SoftmaxStrategy::split)) {
      return *split;
    }
  }
  if (row_bytes > 16 * 1024 && row_bytes <= 32 * 1024) {
    const SoftmaxConfig want = softmax_one_pass(p, softmax_max_threads, 128);
    for (const auto& c : candidates) {
      if (c == want) return c;
    }
  }
  return softmax_heuristic(p, candidates);
}

/// "softmax__f16__cols4096__t256v8" (one pass, one row per block), "..._t32v8r8" (8 rows
/// per block), "softmax__f16__cols65536__multipass_t1024v8i2" (2 vectors per step),
/// "softmax__f16__cols1048576__split_t256v8i8b2" (split: 2 blocks an SM).
inline std::string softmax_kernel_name(const SoftmaxParams& p, const SoftmaxConfig& c) {
  std::string name =
      "softmax__" + std::string(gen::to_string(p.dtype)) + "__cols" + std::to_string(p.cols) + "__";
  if (c.strategy == SoftmaxStrategy::multi_pass) name += "multipass_";
  if (c.strategy == SoftmaxStrategy::staged) name += "staged_";
  if (c.strategy == SoftmaxStrategy::split) name += "split_";
  name += "t" + std::to_string(c.threads_per_row) + "v" + std::to_string(c.vector_width);
  if (c.strategy != SoftmaxStrategy::one_pass) {
    name += "i" + std::to_string(c.vectors_per_thread);
  } else if (c.rows_per_block > 1) {
    name += "r" + std::to_string(c.rows_per_block);
  }
  if (c.cluster_blocks > 1) name += "c" + std::to_string(c.cluster_blocks);
  if (c.staged_held > 0) name += "h" + std::to_string(c.staged_held);
  if (c.strategy == SoftmaxStrategy::split) name += "b" + std::to_string(c.blocks_per_sm);
  if (c.split_ring > 0) name += "q" + std::to_string(c.split_ring);
  return name;
}

/// The header kernels/softmax.cu includes as "spec.hpp" (its comment lists what it uses).
inline gen::Spec softmax_spec(const SoftmaxParams& p, const SoftmaxConfig& c) {
  gen::Spec s;
  s.dim("ROW")
      .dim("COL", p.cols)
      .fold("COLV", "COL", c.vector_width)
      .dim("SLOT")
      .dim("RANK")
      .tensor(gen::TensorSpec("In", p.dtype).read_only().dim("COL", p.cols))
      .tensor(gen::TensorSpec("Out", p.dtype).dim("COL", p.cols))
      .compound_index("Threads", {{"SLOT", c.rows_per_block}, {"RANK", c.threads_per_row}})
      .constant("kCols", int(p.cols))
      .constant("kVec", int(c.vector_width))
      .constant("kThreadsPerRow", int(c.threads_per_row))
      .constant("kRowsPerBlock", int(c.rows_per_block))
      .constant("kIters", int(c.vectors_per_thread))
      .constant("kMultiPass", c.strategy == SoftmaxStrategy::multi_pass ? 1 : 0)
      .constant("kCluster", int(c.cluster_blocks));
  if (c.strategy == SoftmaxStrategy::staged) {
    s.macro("SOFTMAX_STAGED", "1")
        .constant("kMinBlocks", softmax_staged_min_blocks(p, c))
        .constant("kStagedHeld", int(c.staged_held));
  }
  if (c.strategy == SoftmaxStrategy::split) {
    s.macro("SOFTMAX_SPLIT", "1")
        .constant("kSplitMinBlocks", int(c.blocks_per_sm))
        .constant("kSplitRing", int(c.split_ring));
  }
  return s;
}

// ---- The backward, dx = y * (dy - sum(dy * y)) by row: the forward's configs, each
// thread holding y and dy (kernels/softmax.cu with SOFTMAX_BACKWARD) ----

/// The most elements of each of y and dy a backward thread holds at once (one_pass: its
/// part of the row; multi_pass: one step): twice the forward's row in registers must not
/// spill.
inline constexpr std::int64_t softmax_backward_max_elements = 32;

/// The elements of each of y and dy a backward thread holds with config `c`.
inline std::int64_t softmax_backward_held(const SoftmaxConfig& c) {
  return std::int64_t(c.vectors_per_thread) * c.vector_width;
}
/// The most bytes of each of y and dy a backward thread holds in blocks of
/// `threads_per_block`: the forward's one-pass budget, and at most
/// softmax_backward_max_elements.
inline std::int64_t softmax_backward_held_bytes(const SoftmaxParams& p,
                                                std::int64_t threads_per_block) {
  return std::min<std::int64_t>(softmax_register_bytes(threads_per_block),
                                softmax_backward_max_elements * gen::size_of(p.dtype));
}
/// Whether a backward thread with config `c` holds no more than the backward's budget.
inline bool softmax_backward_fits(const SoftmaxParams& p, const SoftmaxConfig& c) {
  const std::int64_t block = std::int64_t(c.threads_per_row) * c.rows_per_block;
  return softmax_backward_held(c) * gen::size_of(p.dtype) <= softmax_backward_held_bytes(p, block);
}

/// Throws kiln::Error unless kiln's softmax backward supports `p` (the forward's rules).
inline void validate_softmax_backward(const SoftmaxParams& p) {
  validate_softmax_problem(p, "softmax_backward");
}

/// Throws kiln::Error unless `c` is a config the backward kernel can run `p` with on a
/// device whose warps have `warp_size` threads: the forward's rules, and a thread holds
/// at most softmax_backward_held_bytes of each of y and dy (one_pass and multi_pass).
inline void validate_softmax_backward_config(const SoftmaxParams& p, const SoftmaxConfig& c,
                                             int warp_size) {
  const std::string what = "kiln: softmax_backward config " + nlohmann::json(c).dump() + " for " +
                           nlohmann::json(p).dump() + ": ";
  try {
    validate_softmax_config(p, c, warp_size);
  } catch (const Error& e) {
    // "kiln: softmax config {...} for {...}: rule" -> "kiln: softmax_backward config ...: rule"
    const std::string text = e.what();
    const std::size_t rule = text.find("}: ");
    throw Error(what + (rule == std::string::npos ? text : text.substr(rule + 3)));
  }
  if (c.cluster_blocks != 1) {
    throw Error(what +
                "the backward kernel runs a row per block or slot (cluster_blocks = 1); "
                "clusters are the forward's");
  }
  if (c.strategy == SoftmaxStrategy::staged) {
    throw Error(what +
                "the backward runs one_pass, multi_pass or split; staged rows are the "
                "forward's");
  }
  if (c.strategy == SoftmaxStrategy::split) {
    const std::string rule = split_backward_rule_broken(c);
    if (!rule.empty()) throw Error(what + rule);
    return;
  }
  const std::int64_t block = std::int64_t(c.threads_per_row) * c.rows_per_block;
  if (!softmax_backward_fits(p, c)) {
    throw Error(
        what + "a thread holds at most " + std::to_string(softmax_backward_held_bytes(p, block)) +
        " bytes of each of y and dy (at most " + std::to_string(softmax_backward_max_elements) +
        " elements; " + std::to_string(softmax_backward_held(c) * gen::size_of(p.dtype)) +
        " bytes here) in blocks of " + std::to_string(block) +
        " threads; use more threads, fewer vectors per step or multi_pass");
  }
}

/// Every candidate config of the backward for `p`: the forward's (softmax_configs) that
/// hold at most softmax_backward_held_bytes of each of y and dy a thread. Some always do:
/// rows under 16 KiB at 1024 threads hold at most 16 elements a thread, and longer rows
/// have multi_pass loading 2 vectors a step.
///   one_pass    up to 32 elements of y and of dy a thread (f16 / bf16: 64 bytes of each;
///               f32: 128, 64 in blocks of 1024 threads): rows up to 32768 f16 or 16384 f32
///   multi_pass  rows of 16 KiB and more: 256, 512 or 1024 threads loading 2, 4 or 8
///               vectors a step, 8 only where that is at most 32 elements (64 bytes of each
///               at 1024 threads)
inline std::vector<SoftmaxConfig> softmax_backward_configs(const SoftmaxParams& p, int warp_size) {
  std::vector<SoftmaxConfig> out;
  for (const SoftmaxConfig& c : softmax_configs(p, warp_size)) {
    if (softmax_backward_fits(p, c)) out.push_back(c);
  }
  return out;
}

/// The shapes of softmax's ringed backward split candidates: (threads a block, vectors a
/// thread a slice, blocks an SM, split_ring). A block's rings of y and dy take 2 x R
/// slices of shared memory: up to 192 KiB an SM here, with 32 to 96 KiB of them in flight.
inline constexpr int softmax_backward_ring_shapes[5][4] = {
    {256, 4, 1, 3}, {256, 4, 1, 4}, {256, 4, 1, 5}, {128, 4, 2, 4}, {256, 8, 1, 3}};

/// The dynamic shared memory a backward split block of `c` takes: a ringed one's rings of
/// y and dy (split_ring slices each, 16 bytes a vector), none without a ring.
inline std::int64_t softmax_backward_split_shared_bytes(const SoftmaxConfig& c) {
  return 2 * softmax_split_shared_bytes(c);
}

/// The backward's split candidates for `p` on a device of `multiprocessors` SMs with
/// `shared_per_sm` bytes of shared memory an SM and `shared_per_block` a block
/// (split_backward_shapes, then the ringed softmax_backward_ring_shapes whose blocks
/// those hold with 2 KiB each for the static scratch and what the driver keeps; rows of 64
/// KiB and more, 32-thread warps): the forward's split rows over the forward's grid (the
/// SMs times the blocks an SM), each slice's sum of dy * y in one slot word. Untuned, rows
/// of 128 KiB and more take the unringed 256 x 8 alone (softmax_backward_heuristic).
inline std::vector<SoftmaxConfig> softmax_backward_split_configs(const SoftmaxParams& p,
                                                                 int warp_size, int multiprocessors,
                                                                 std::int64_t shared_per_sm,
                                                                 std::int64_t shared_per_block) {
  std::vector<SoftmaxConfig> out;
  if (warp_size != 32 || multiprocessors < 1) return out;
  if (std::int64_t(p.cols) * gen::size_of(p.dtype) < 64 * 1024) return out;
  const std::int32_t vec = std::int32_t(16 / gen::size_of(p.dtype));
  auto offer = [&](int threads, int vectors, int blocks, int ring) {
    SoftmaxConfig c{SoftmaxStrategy::split,  threads, vec, 1, vectors, 1, blocks,
                    multiprocessors * blocks};
    c.split_ring = ring;
    if (!split_blocks_fit(softmax_backward_split_shared_bytes(c), blocks, shared_per_block,
                          shared_per_sm)) {
      return;
    }
    if (split_rule_broken(p.cols, p.dtype, c, warp_size, softmax_split_slot_words,
                          softmax_split_lane_words)
            .empty()) {
      out.push_back(c);
    }
  };
  for (const auto& t : split_backward_shapes) offer(t[0], t[1], t[2], 0);
  for (const auto& t : softmax_backward_ring_shapes) offer(t[0], t[1], t[2], t[3]);
  return out;
}

/// `want`, a forward config, as a backward one: multi_pass loading half as many vectors a
/// step until a thread holds no more than the backward's budget (softmax_backward_fits).
/// (The norms' backward, holding x and dy, takes the same rule.)
inline SoftmaxConfig softmax_backward_fitted(const SoftmaxParams& p, SoftmaxConfig want) {
  while (want.strategy == SoftmaxStrategy::multi_pass && want.vectors_per_thread > 1 &&
         !softmax_backward_fits(p, want)) {
    want.vectors_per_thread /= 2;
  }
  return want;
}

/// The backward's config without timing (KILN_TUNE=off): for rows of 128 KiB and more,
/// split by 256 threads of 8 vectors, a block an SM, where it is offered (64 x 1M f16 on the
/// H200: 76% of a copy of the op's bytes, where multi pass ran at 60%; on an H100, GB/s of
/// split against multi pass, f16 1024 x 65536 2690 against 2275, 4096 x 65536 2880 against
/// 2424, 256 x 262144 2744 against 1932, f32 4096 x 32768 2902 against 2248; rows of 64 KiB
/// kept theirs, f16 2048 x 32768 2850 against 2712 and f32 2048 x 16384 2821 against 2740);
/// else the forward's choice (softmax_heuristic_choice), multi_pass loading fewer vectors a
/// step where the forward's would not fit (softmax_backward_fitted).
inline SoftmaxConfig softmax_backward_heuristic(const SoftmaxParams& p,
                                                const std::vector<SoftmaxConfig>& candidates) {
  if (std::int64_t(p.cols) * gen::size_of(p.dtype) >= 128 * 1024) {
    if (const SoftmaxConfig* split =
            split_shaped(candidates, SoftmaxStrategy::split, 256, 8, 1, 0)) {
      return *split;
    }
  }
  const SoftmaxConfig want = softmax_backward_fitted(p, softmax_heuristic_choice(p));
  for (const auto& c : candidates) {
    if (c == want) return c;
  }
  return candidates.front();
}

/// "softmax_backward__f16__cols4096__t256v8": the forward's name (softmax_kernel_name) for
/// the same config, the factory's name first.
inline std::string softmax_backward_kernel_name(const SoftmaxParams& p, const SoftmaxConfig& c) {
  const std::string forward = softmax_kernel_name(p, c);
  return "softmax_backward__" + forward.substr(std::string("softmax__").size());
}

/// The backward kernel's spec.hpp: the forward's, and SOFTMAX_BACKWARD defined (In views
/// y and dy, Out dx).
inline gen::Spec softmax_backward_spec(const SoftmaxParams& p, const SoftmaxConfig& c) {
  gen::Spec s = softmax_spec(p, c);
  s.macro("SOFTMAX_BACKWARD", "1");
  return s;
}

}  // namespace detail
}  // namespace kiln::ops
