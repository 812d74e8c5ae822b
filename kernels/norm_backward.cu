// The backward pass of LayerNorm and RMSNorm (kernels/norm.cu) over the last dimension,
// f32 math whatever the storage type. With x̂ = (h - mean) · rstd (RMSNorm: h · rstd),
// g = dy · weight (dy where there is no weight) and n = cols:
//   LayerNorm  dx = rstd · (g - sum(g) / n - x̂ · sum(g · x̂) / n)
//   RMSNorm    dx = rstd · (g - x̂ · sum(g · x̂) / n)
//   dweight = sum over rows of dy · x̂,  dbias = sum over rows of dy (LayerNorm)
// h is what the forward pass normalized (x, or h = x + residual in the fused variant);
// mean (LayerNorm) and rstd are the statistics the forward pass saved.
//
// dweight and dbias are summed without atomics, the same bits on every run: a block
// walks rows block, block + grid, ... and sums its own columns' dy · x̂ and dy in
// registers (one pass) or in its own row of `partial` (multi pass); its row slots add
// theirs in a fixed order (a butterfly within a warp, then warp by warp through shared
// memory), so that each block leaves one partial row, and kernels/column_sum.cu adds the
// partial rows in order. With the sums the grid fills the device up to kMinBlocks blocks
// an SM (the host launches that many where each block takes 4 row groups or more, else
// one an SM: norm_backward_blocks), and a one-pass thread that holds
// little (kPrefetch) loads its next row before it works on the current one.
// Its columns are the same in every row, so a one-pass thread with room for them holds
// their weights too (kHoldWeight), rather than loading them twice a row. The row's
// sum(g · x̂) is summed as sum(g · (h - mean)) and multiplied by rstd once.
// (kiln::ops does not launch the multi pass with the sums: adding to a partial row in
// memory row by row costs a read and a write of a float an element, so it launches it for
// dx alone and kernels/norm_weight_grad.cu for dweight and dbias, which leaves the rows'
// two sums too: the multi pass then reads h and dy once.)
//
// Clusters (kCluster > 1, sm_90, one pass, one row per block): rows no block holds are
// shared by the kCluster blocks of a thread-block cluster, block rank r holding the r-th
// of kCluster equal slices in registers, with its slice's sums of dweight and dbias. The
// clusters walk the rows (cluster, cluster + clusters, ...); each row's two sums are
// added in rank order in every block, sent to each by st.async on its own mbarrier (no
// cluster barrier a row: cluster_sums); a cluster leaves one partial row (each block its
// slice of it).
//
// The host (include/kiln/ops/norm.hpp) generates spec.hpp as for norm.cu:
//   dimensions  ROW, COL with COLV = Fold<COL, kVec>, SLOT, RANK
//   tensors     In, Out: one row, (COL: kCols), f16 / bf16 / f32 storage
//   Threads     the block as (SLOT: kRowsPerBlock, RANK: kThreadsPerRow)
//   constants   kCols, kVec, kThreadsPerRow, kRowsPerBlock, kIters, kMultiPass, kCluster, kRms,
//               kWeightGrad (1: dweight's partial sums), kBiasGrad (1: dbias's),
//               kMinBlocks (blocks an SM the registers must allow)
//   NORM_SPLIT  (defined for split configs: rows shared by a persistent grid), with the
//               constants kSplitMinBlocks (the launch bounds' blocks an SM) and kSplitRing
//               (the slices of a ringed split's rings of h and dy in shared memory, else
//               0); kIters is then the vectors a thread takes of a slice
//   KILN_KERNEL_NAME, e.g. norm_backward__layer__f16__cols4096__dw_db__t256v8
//
// dx may be dy or h: every element is read by the thread that writes it, before it does
// (in the multi pass both passes read it, and the write comes after the row's reduction).
#include "kiln/device/async_copy.hpp"
#include "kiln/device/block.hpp"
#include "kiln/device/cluster.hpp"
#include "kiln/device/global_memory.hpp"
#include "kiln/device/half.hpp"
#include "kiln/device/shared_memory.hpp"
#include "kiln/device/split_rows.hpp"
#include "spec.hpp"

namespace norms {  // not "norm": CUDA's math library has a function of that name

using Elem = Out::element_type;
constexpr int kVecs = kCols / kVec;           // vectors per row
constexpr int kSliceVecs = kVecs / kCluster;  // vectors of a row one block takes
constexpr float kInvCols = 1.0f / float(kCols);
constexpr bool kSums = kWeightGrad != 0 || kBiasGrad != 0;  // partial rows to write
// Row slots in a warp (rows shorter than a warp), whose partial sums are added by a
// butterfly; then the warps' (or slots') sums are added through shared memory.
constexpr int kSlotsPerWarp =
    kThreadsPerRow < kiln::warp_size ? kiln::warp_size / kThreadsPerRow : 1;
static_assert(kRowsPerBlock % kSlotsPerWarp == 0, "whole warps of row slots");
// The next row's h and dy loaded before the current one's work: where they are little.
constexpr bool kPrefetch =
    kIters * kVec * int(sizeof(Elem)) <= 32 && kThreadsPerRow * kRowsPerBlock <= 512;
// The one pass's weights held in registers for every row, where they are at most 32 bytes
// a thread and each thread has 128 registers (blocks of at most 512 threads an SM); not in
// blocks of 1024 (up to 32 bytes spilled). (bf16 had been left out too, its held rows and
// weights having spilled 8 to 16 bytes a thread; under CUDA 13.0's NVRTC, holding them
// changes no candidate's spills at 512 to 65536 columns on sm_80 and sm_90, and each write
// no longer waits on a weight loaded behind the store before it.)
constexpr bool kHoldWeight =
    kIters * kVec * int(sizeof(Elem)) <= 32 && kThreadsPerRow * kRowsPerBlock * kMinBlocks <= 512;

static_assert(kCols % kVec == 0, "the vector width divides the row");
static_assert(kMultiPass == 0 || kRowsPerBlock == 1, "multi-pass: one row per block");
static_assert(kRms == 0 || kBiasGrad == 0, "RMSNorm has no bias");
static_assert(kCluster == 1 || (kRowsPerBlock == 1 && kMultiPass == 0 && kVecs % kCluster == 0),
              "clusters: one pass, one row per block, equal slices of whole vectors");

using kiln::from_float;
using kiln::to_float;

/// sum(g) (LayerNorm) and sum(g · x̂) of a row, reduced together.
using Sums = kiln::FloatPair;

using Vector = kiln::Vec<Elem, kVec>;

/// The arguments of a launch, as the kernel receives them.
struct Args {
  const Elem* dy;
  const Elem* h;
  const Elem* weight;  // or null: 1
  const float* mean;   // LayerNorm
  const float* rstd;
  Elem* dx;
  float* partial;          // (weight: kWeightGrad, then bias: kBiasGrad) x (block) x (COL)
  long long partial_rows;  // the grid's blocks, or clusters
  int sum_parts;           // multi pass without sums: pairs a row in `partial` (0: none)
};

/// The row group this block starts at (its cluster's index with clusters), and the
/// groups the grid takes at once.
KILN_DEVICE KILN_FORCEINLINE int first_group() {
  return kiln::block_index() / kCluster;
}
KILN_DEVICE KILN_FORCEINLINE int group_stride() {
  return kiln::grid_size() / kCluster;
}
/// Where this block's slice of its row starts, in elements (0 without clusters): block
/// rank r of a cluster (blockIdx.x % kCluster, clusters lying along x) takes slice r.
KILN_DEVICE KILN_FORCEINLINE long long slice_start() {
  return kCluster == 1 ? 0 : (long long)(kiln::block_index() % kCluster) * kSliceVecs * kVec;
}

/// The row's statistics (RMSNorm: mean 0).
struct Stats {
  float mean;
  float rstd;
};

KILN_DEVICE KILN_FORCEINLINE Stats stats_of(const Args& a, ROW row) {
  return {kRms ? 0.0f : a.mean[row.get()], a.rstd[row.get()]};
}

/// Adds element j of vector c's contribution to the row's Sums: g and g · (h - mean), whose
/// row total times rstd is sum(g · x̂).
KILN_DEVICE KILN_FORCEINLINE void add_sums(Sums& s, float g, float centered) {
  if constexpr (!kRms) s.a += g;
  s.b += g * centered;
}

/// h - mean (x̂ / rstd) and g = dy · weight of each element of vector c.
struct Terms {
  float centered[kVec];
  float g[kVec];
};
/// (The weight: `*held` where Held, else loaded here at vector c of the block's slice where
/// there is one.)
template <bool Held>
KILN_DEVICE KILN_FORCEINLINE Terms terms_of(const Args& a, const Vector& h, const Vector& dy,
                                            COLV c, const Vector* held, Stats s) {
  Terms t;
  Vector w;
  if constexpr (Held) {
    w = *held;
  } else if (a.weight) {
    w = kiln::load_vector<kVec>(In(a.weight + slice_start())[c]);
  }
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    t.centered[j] = to_float(h[j]) - s.mean;
    t.g[j] = a.weight ? to_float(dy[j]) * to_float(w[j]) : to_float(dy[j]);
  }
  return t;
}

/// dx at vector c from h, dy (and the weight: terms_of) and the row's sums.
template <bool Held = false>
KILN_DEVICE KILN_FORCEINLINE Vector gradient(const Args& a, const Vector& h, const Vector& dy,
                                             COLV c, const Vector* held, Stats s, Sums total) {
  const float mean_g = total.a * kInvCols;
  const float mean_gx = total.b * kInvCols;
  const Terms t = terms_of<Held>(a, h, dy, c, held, s);
  Vector o;
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const float xhat = t.centered[j] * s.rstd;
    const float d = kRms ? t.g[j] - xhat * mean_gx : t.g[j] - mean_g - xhat * mean_gx;
    from_float(s.rstd * d, o[j]);
  }
  return o;
}

/// The row's Sums contribution of vector c (the weight: terms_of).
template <bool Held = false>
KILN_DEVICE KILN_FORCEINLINE void sums_of(const Args& a, const Vector& h, const Vector& dy, COLV c,
                                          const Vector* held, Stats s, Sums& part) {
  const Terms t = terms_of<Held>(a, h, dy, c, held, s);
#pragma unroll
  for (int j = 0; j < kVec; ++j) add_sums(part, t.g[j], t.centered[j]);
}

/// Whether vector `c` lies in the row, or in the block's slice of it with clusters (known
/// true at compile time when the threads tile it).
template <int Step>
KILN_DEVICE KILN_FORCEINLINE bool in_row(COLV c) {
  return kSliceVecs % Step == 0 || c < COLV(kSliceVecs);
}

/// h and dy at vectors base + i · kThreadsPerRow (i < kIters) of the row at `start`,
/// where `valid` and they lie in the row (in_row<Step>).
template <int Step>
KILN_DEVICE KILN_FORCEINLINE void load(const Args& a, long long start, COLV base, bool valid,
                                       Vector (&h)[kIters], Vector (&dy)[kIters]) {
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = base + COLV(i * kThreadsPerRow);
    if (valid && in_row<Step>(c)) {
      h[i] = kiln::load_vector<kVec>(In(a.h + start)[c]);
      dy[i] = kiln::load_vector<kVec>(In(a.dy + start)[c]);
    }
  }
}

/// dweight's (or dbias's) partial row `p` at element (vector c of the block's slice, j).
KILN_DEVICE KILN_FORCEINLINE float* partial_at(const Args& a, int which, long long p, COLV c,
                                               int j) {
  return a.partial + (which * a.partial_rows + p) * kCols + slice_start() + c.get() * kVec + j;
}

/// With clusters, a row's sums added over the cluster's blocks in rank order, the same in
/// each. Each block sends its sums to every block of the cluster (its first kCluster
/// threads, one block each) by st.async into the receiver's `parts` for the round's
/// parity, completing 8 bytes on the receiver's barrier for that parity, which its thread
/// 0 armed for kCluster x 8 bytes; every thread waits on its own block's barrier, then
/// adds the parts. No cluster barrier and no fence a row: a cluster-wide release would
/// wait for the thread's loads of the next row, in flight. A block sends a round's parts
/// again two rounds later, only after every receiver's sums of the round between reached
/// it, which each receiver sent after all its threads read the round before (the block
/// barriers of row_reduce lie between).
struct ClusterSums {
  unsigned long long barrier[2];
  float parts[2][kCluster][2];
};
KILN_DEVICE KILN_FORCEINLINE ClusterSums& cluster_sums_space() {
  KILN_SHARED ClusterSums space;  // (8-byte aligned: the barriers come first)
  return space;
}
/// Before the first round (every thread of the cluster): the barriers set up and seen by
/// the cluster.
KILN_DEVICE KILN_FORCEINLINE void cluster_sums_init() {
  if constexpr (kCluster > 1) {
    if (kiln::thread_index() == 0) {
      kiln::Mbarrier(&cluster_sums_space().barrier[0]).init(1);
      kiln::Mbarrier(&cluster_sums_space().barrier[1]).init(1);
      kiln::fence_barrier_init();
    }
    kiln::cluster_sync();
  }
}
KILN_DEVICE KILN_FORCEINLINE Sums cluster_sums(Sums v, int round) {
  if constexpr (kCluster == 1) {
    return v;
  } else {
    ClusterSums& space = cluster_sums_space();
    const int t = kiln::thread_index();
    const int q = round & 1;
    const kiln::Mbarrier bar(&space.barrier[q]);
    if (t == 0) bar.arrive_expect_tx(kCluster * 8);
    if (t < kCluster) {
      kiln::store_async_cluster(space.parts[q][kiln::block_index() % kCluster], v.a, v.b, bar,
                                unsigned(t));
    }
    bar.wait_for((round >> 1) & 1);  // this barrier's (round / 2)-th phase
    Sums total{0.0f, 0.0f};
#pragma unroll
    for (int r = 0; r < kCluster; ++r) {
      total.a += space.parts[q][r][0];
      total.b += space.parts[q][r][1];
    }
    return total;
  }
}

/// What a thread holds of one row: where it is, its statistics, its vectors of h and dy.
struct Held {
  ROW row;
  bool valid;
  long long start;
  Stats s;
  Vector h[kIters], dy[kIters];
};

/// The thread's part of row group `group` (valid where the row exists: no loads past the
/// last row).
KILN_DEVICE KILN_FORCEINLINE void fetch(const Args& a, int group, int rows, SLOT slot, COLV first,
                                        Held& r) {
  r.row = ROW(group * kRowsPerBlock + slot.get());
  r.valid = r.row < ROW(rows);
  r.start = (long long)(r.valid ? r.row.get() : 0) * kCols + slice_start();
  r.s = r.valid ? stats_of(a, r.row) : Stats{0.0f, 0.0f};
  load<kThreadsPerRow>(a, r.start, first, r.valid, r.h, r.dy);
}

/// Writes the block's partial row of one sum (`which`: 0 dweight, 1 dbias when both) from
/// each thread's `v` (its vectors' elements): the slots sharing a warp add theirs by a
/// butterfly over the lane bits above RANK's (the same bits in each), then the warps add
/// theirs in order through shared memory (zeros where a slot had no row).
template <int Which>
KILN_DEVICE KILN_FORCEINLINE void write_partial(const Args& a, SLOT slot, COLV first,
                                                float (&v)[kIters * kVec]) {
  if constexpr (kSlotsPerWarp > 1) {
#pragma unroll
    for (int e = 0; e < kIters * kVec; ++e) {
#pragma unroll
      for (int m = kThreadsPerRow; m < kiln::warp_size; m *= 2) {
        v[e] += kiln::shuffle_xor(v[e], m);
      }
    }
  }
  constexpr int kWarpRows = kRowsPerBlock / kSlotsPerWarp;
  const bool leader = slot.get() % kSlotsPerWarp == 0;  // the warp's first slot
  const int warp_row = slot.get() / kSlotsPerWarp;
  if constexpr (kWarpRows > 1) {
    KILN_SHARED float sum[kCols];
    for (int w = 0; w < kWarpRows - 1; ++w) {
      if (leader && warp_row == w) {
#pragma unroll
        for (int i = 0; i < kIters; ++i) {
          const COLV c = first + COLV(i * kThreadsPerRow);
          if (!in_row<kThreadsPerRow>(c)) continue;
#pragma unroll
          for (int j = 0; j < kVec; ++j) {
            float& s = sum[c.get() * kVec + j];
            s = w == 0 ? v[i * kVec + j] : s + v[i * kVec + j];
          }
        }
      }
      kiln::sync_threads();
    }
    // The last warp row's leaders add the others' sums to theirs and write the partial
    // row. Every barrier here is reached by the whole block at the same point (leaders
    // are a part of a warp where rows are shorter than a warp: no barrier in a branch).
    const bool last = leader && warp_row == kWarpRows - 1;
    if (last) {
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (!in_row<kThreadsPerRow>(c)) continue;
#pragma unroll
        for (int j = 0; j < kVec; ++j) v[i * kVec + j] += sum[c.get() * kVec + j];
      }
    }
    kiln::sync_threads();  // (the next sum's use of `sum`: after these reads)
    if (!last) return;
  } else if (!leader) {
    return;
  }
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (!in_row<kThreadsPerRow>(c)) continue;
    kiln::store_run<kVec>(partial_at(a, Which, first_group(), c, 0), &v[i * kVec]);
  }
}

// One pass: thread (SLOT, RANK) holds vectors RANK, RANK + kThreadsPerRow, ... of h and dy
// of rows (group * kRowsPerBlock + SLOT) for groups block, block + grid, ..., and the
// sums of dy · x̂ and dy over those rows for its columns.
KILN_DEVICE KILN_FORCEINLINE void one_pass(const Args& a, int rows) {
  constexpr int kGradElems = kIters * kVec;
  const Threads t(kiln::thread_index());
  const SLOT slot = t.get<SLOT>();
  const COLV first(t.get<RANK>().get());
  const int groups = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  float dw[kGradElems], db[kGradElems];  // (unused ones cost no registers)
#pragma unroll
  for (int e = 0; e < kGradElems; ++e) dw[e] = db[e] = 0.0f;
  // The thread's columns are the same in every row: where they are few, their weights are
  // loaded once and held (kHoldWeight), not loaded twice a row, each load after the last
  // vector's store (dx may alias the weight as far as the compiler knows).
  Vector held_w[kIters];
  if constexpr (kHoldWeight) {
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(i * kThreadsPerRow);
      if (a.weight && in_row<kThreadsPerRow>(c)) {
        held_w[i] = kiln::load_vector<kVec>(In(a.weight + slice_start())[c]);
      }
    }
  }
  cluster_sums_init();
  Held cur, next;
  if constexpr (kPrefetch) fetch(a, first_group(), rows, slot, first, cur);
  int round = 0;
  for (int group = first_group(); group < groups; group += group_stride(), ++round) {
    if constexpr (kPrefetch) {
      fetch(a, group + group_stride(), rows, slot, first, next);
    } else {
      fetch(a, group, rows, slot, first, cur);
    }
    const Stats s = cur.s;
    const long long start = cur.start;
    Sums part{0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(i * kThreadsPerRow);
      if (cur.valid && in_row<kThreadsPerRow>(c)) {
        sums_of<kHoldWeight>(a, cur.h[i], cur.dy[i], c, &held_w[i], s, part);
      }
    }
    Sums total = cluster_sums(
        kiln::row_reduce<kiln::RowSum, kThreadsPerRow, kRowsPerBlock>(part, round), round);
    total.b *= s.rstd;
    if (cur.valid) {  // (every thread of the block, or cluster, takes the same rounds)
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (!in_row<kThreadsPerRow>(c)) continue;
        kiln::store_vector<kVec>(
            Out(a.dx + start)[c],
            gradient<kHoldWeight>(a, cur.h[i], cur.dy[i], c, &held_w[i], s, total));
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const float g = to_float(cur.dy[i][j]);
          if constexpr (kWeightGrad) {
            dw[i * kVec + j] += g * ((to_float(cur.h[i][j]) - s.mean) * s.rstd);
          }
          if constexpr (kBiasGrad) db[i * kVec + j] += g;
        }
      }
    }
    if constexpr (kPrefetch) cur = next;
  }
  // No block leaves (its shared memory with it) while another may still send to it.
  if constexpr (kCluster > 1) kiln::cluster_sync();
  if constexpr (kWeightGrad) write_partial<0>(a, slot, first, dw);
  if constexpr (kBiasGrad) write_partial<kWeightGrad>(a, slot, first, db);
}

// Multi pass: the block (SLOT: 1, RANK: kThreadsPerRow) takes rows block, block + grid,
// ...; for each it streams h and dy twice in steps of kIters vectors per thread: the row's
// sums, then dx written (backwards, so that its first reads hit L2), dy · x̂ and dy added
// to the block's partial rows (the same thread's elements every row). Without those
// (kSums 0) and with a.sum_parts, the row's sums are given: a.sum_parts pairs a row in
// a.partial (kernels/norm_weight_grad.cu's row_sums), added up instead of the first pass.
KILN_DEVICE KILN_FORCEINLINE void multi_pass(const Args& a, int rows) {
  constexpr int kStep = kThreadsPerRow * kIters;  // vectors per step
  constexpr int kSteps = (kVecs + kStep - 1) / kStep;
  const Threads t(kiln::thread_index());
  const COLV first(t.get<RANK>().get());
  const long long p = kiln::block_index();  // the block's partial row
  int round = 0;
  for (int r = kiln::block_index(); r < rows; r += kiln::grid_size(), ++round) {
    const ROW row(r);
    const long long start = (long long)r * kCols;
    const Stats s = stats_of(a, row);
    Sums part{0.0f, 0.0f};
    if (!kSums && a.sum_parts > 0) {
      const float* given = a.partial + (long long)r * a.sum_parts * 2;
      for (int q = first.get(); q < a.sum_parts; q += kThreadsPerRow) {
        part.a += given[2 * q];
        part.b += given[2 * q + 1];
      }
    } else {
      for (int step = 0; step < kSteps; ++step) {
        Vector h[kIters], dy[kIters];
        load<kStep>(a, start, first + COLV(step * kStep), true, h, dy);
#pragma unroll
        for (int i = 0; i < kIters; ++i) {
          const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
          if (in_row<kStep>(c)) sums_of(a, h[i], dy[i], c, nullptr, s, part);
        }
      }
    }
    Sums total = kiln::row_reduce<kiln::RowSum, kThreadsPerRow, kRowsPerBlock>(part, round);
    total.b *= s.rstd;
    for (int step = kSteps - 1; step >= 0; --step) {
      Vector h[kIters], dy[kIters];
      load<kStep>(a, start, first + COLV(step * kStep), true, h, dy);
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
        if (!in_row<kStep>(c)) continue;
        kiln::store_vector<kVec>(Out(a.dx + start)[c],
                                 gradient(a, h[i], dy[i], c, nullptr, s, total));
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const float g = to_float(dy[i][j]);
          if constexpr (kWeightGrad) {
            float* w = partial_at(a, 0, p, c, j);
            const float v = g * ((to_float(h[i][j]) - s.mean) * s.rstd);
            *w = round == 0 ? v : *w + v;
          }
          if constexpr (kBiasGrad) {
            float* b = partial_at(a, kWeightGrad, p, c, j);
            *b = round == 0 ? g : *b + g;
          }
        }
      }
    }
  }
  if constexpr (kSums) {
    if (kiln::block_index() < rows) return;
    // A block without a row (grid > rows): its partial row is zeros.
    for (int step = 0; step < kSteps; ++step) {
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
        if (!in_row<kStep>(c)) continue;
        for (int j = 0; j < kVec; ++j) {
          if constexpr (kWeightGrad) *partial_at(a, 0, p, c, j) = 0.0f;
          if constexpr (kBiasGrad) *partial_at(a, kWeightGrad, p, c, j) = 0.0f;
        }
      }
    }
  }
}

}  // namespace norms

#ifdef NORM_SPLIT
// Split (NormStrategy::split): rows too long for a block's registers (64 x 1M), shared by
// the whole GPU as the forward's split rows are (kernels/norm.cu says how the rounds go):
// a persistent grid (a cooperative launch) walks the rows' slices of kSplitVecs vectors
// in rounds, block b reading slice s = t * grid + b in round t and publishing its sums,
// sum(g) (LayerNorm) and sum(g · (h - mean)), in the slots of s, then writing dx of the
// slice it read a round before, whose row's sums are in by then. The grid is a whole
// multiple of kSlices blocks (NormConfig::grid_blocks), so that block b takes slice
// b % kSlices of every row it reads: its columns are the same in every round. It keeps
// their weights, and its f32 sums of their dy · x̂ and dy over its rows, in shared memory
// (each thread its own elements: no barrier), and leaves the sums as the partial row
// b / kSlices. The read loads h and dy with evict_last, the write loads them again (from
// L2) with evict_first, as the forward's second read. Ringed (kSplitRing = R > 0), as the
// forward's ringed split: each thread copies its vectors of h and dy of round t's slice
// into slot t % R of two rings in shared memory (after the weights and sums) R - 2 rounds
// ahead (cp.async, a commit group a round) and reads them back there, for the sums and,
// a round later, for dx: no second read from L2, no slice held in registers across the
// rounds' barriers, and R - 2 slices of each in flight while the block sums and writes.
namespace norms {

constexpr int kSplitVecs = kThreadsPerRow * kIters;             // a slice's vectors
constexpr int kSlices = (kVecs + kSplitVecs - 1) / kSplitVecs;  // a row's
// Slot words a slice: LayerNorm's sum(g), then (both) sum(g · (h - mean)).
constexpr int kSlotWords = kRms ? 1 : 2;
constexpr int kRowWords = kSlices * kSlotWords;
constexpr int kWarps = kThreadsPerRow / kiln::warp_size;
using RowSlots = kiln::SplitRowSlots<kSlices, kSlotWords>;
// Warp 0 loads its row's slots with the slices' loads where they are few (the forward's
// rule: more than 4 words a lane, loaded that early, spilled), LayerNorm's with dweight
// and dbias only where they are one word a lane (with two, 256 threads of 4 f32 vectors
// spilled 4 bytes a thread on sm_80 to sm_89).
constexpr bool kEarlySlots = RowSlots::lane_slices * kSlotWords <= (kRms || !kSums ? 4 : 1);
// The f32 sums of dweight and dbias: float quads of each vector's elements.
constexpr int kQuads = kVec / 4;
using Quad = kiln::Vec<float, 4>;
// A ringed split's copies (kiln::SplitRing: R - 2 rounds ahead).
using Ring = kiln::SplitRing<kSplitRing>;
static_assert(RowSlots::lane_slices * kSlotWords <= 8, "warp 0 holds a row's slots");
static_assert(sizeof(Vector) == 16 && kVec % 4 == 0, "split slices are read in 16-byte vectors");
static_assert(kRowsPerBlock == 1 && kCluster == 1, "a split block takes one slice at a time");

KILN_DEVICE KILN_FORCEINLINE const Vector* as_vector(const Elem* p) {
  return reinterpret_cast<const Vector*>(p);
}
// A thread's vector i of a slice whose first vector (this thread's) is at `first`: a
// constant offset on from there, folded into the load (kernels/norm.cu's slice_vector).
KILN_DEVICE KILN_FORCEINLINE const Vector* slice_vector(const Elem* first, int i) {
  return as_vector(In(first)[COLV(i * kThreadsPerRow)].ptr());
}

/// The block's dynamic shared memory, each thread's own parts side by side with the other
/// threads' (no barrier: each thread reads only what it wrote): its weights, vector i at
/// i * kThreadsPerRow + tid, then its f32 sums of dweight and dbias, quad q of vector i of
/// sum `which` (0: dweight, 1: dbias when both) at ((which * kIters + i) * kQuads + q) *
/// kThreadsPerRow + tid. (The weights held in registers spilled 4 to 56 bytes a thread
/// under the launch bounds of 2 or 4 blocks an SM.)
KILN_DEVICE KILN_FORCEINLINE Vector& weight_vector(int i, int tid) {
  return static_cast<Vector*>(kiln::dynamic_shared_memory())[i * kThreadsPerRow + tid];
}
KILN_DEVICE KILN_FORCEINLINE Quad& sum_quad(int which, int i, int q, int tid) {
  Quad* sums = reinterpret_cast<Quad*>(&weight_vector(kIters, 0));
  return sums[((which * kIters + i) * kQuads + q) * kThreadsPerRow + tid];
}
/// Ringed: vector i of this thread's h (`which` 0) or dy (1) of round t's slice, in slot
/// t % kSplitRing of its ring, after the sums.
KILN_DEVICE KILN_FORCEINLINE Vector& ring_vector(int which, long long t, int i, int tid) {
  Vector* rings = reinterpret_cast<Vector*>(&sum_quad(kWeightGrad + kBiasGrad, 0, 0, 0));
  return rings[((which * Ring::slices + Ring::slot(t)) * kIters + i) * kThreadsPerRow + tid];
}

/// Vector i of the read slice: its part of the row's Sums, and its dy · x̂ and dy added to
/// the thread's sums. (bf16 and f16 pairs converted together, pair by pair inside the
/// arithmetic, kiln::to_float_pair: element by element, bf16 rows spilled 200 to 480 bytes
/// a thread on sm_90.)
KILN_DEVICE KILN_FORCEINLINE void split_read(const Args& a, int i, int tid, const Vector& h,
                                             const Vector& dy, const Vector& w, Stats s,
                                             Sums& part) {
#pragma unroll
  for (int q = 0; q < kQuads; ++q) {
    Quad dw, db;
    if constexpr (kWeightGrad) dw = sum_quad(0, i, q, tid);
    if constexpr (kBiasGrad) db = sum_quad(kWeightGrad, i, q, tid);
#pragma unroll
    for (int e = 0; e < 4; e += 2) {
      const int j = 4 * q + e;
      float h0, h1, d0, d1, w0 = 1.0f, w1 = 1.0f;
      kiln::to_float_pair(h.v, j, h0, h1);
      kiln::to_float_pair(dy.v, j, d0, d1);
      if (a.weight) kiln::to_float_pair(w.v, j, w0, w1);
      const float c0 = h0 - s.mean, c1 = h1 - s.mean;
      add_sums(part, d0 * w0, c0);
      add_sums(part, d1 * w1, c1);
      if constexpr (kWeightGrad) {
        dw[e] += d0 * (c0 * s.rstd);
        dw[e + 1] += d1 * (c1 * s.rstd);
      }
      if constexpr (kBiasGrad) {
        db[e] += d0;
        db[e + 1] += d1;
      }
    }
    if constexpr (kWeightGrad) sum_quad(0, i, q, tid) = dw;
    if constexpr (kBiasGrad) sum_quad(kWeightGrad, i, q, tid) = db;
  }
}

/// dx of vector (h, dy) of a written slice, from its row's statistics and Sums (b already
/// times rstd).
KILN_DEVICE KILN_FORCEINLINE Vector split_gradient(const Args& a, const Vector& h, const Vector& dy,
                                                   const Vector& w, Stats s, Sums total) {
  const float mean_g = total.a * kInvCols;
  const float mean_gx = total.b * kInvCols;
  Vector o;
#pragma unroll
  for (int j = 0; j < kVec; j += 2) {
    float h0, h1, d0, d1, w0 = 1.0f, w1 = 1.0f;
    kiln::to_float_pair(h.v, j, h0, h1);
    kiln::to_float_pair(dy.v, j, d0, d1);
    if (a.weight) kiln::to_float_pair(w.v, j, w0, w1);
    const float x0 = (h0 - s.mean) * s.rstd, x1 = (h1 - s.mean) * s.rstd;
    const float g0 = d0 * w0, g1 = d1 * w1;
    const float r0 = kRms ? g0 - x0 * mean_gx : g0 - mean_g - x0 * mean_gx;
    const float r1 = kRms ? g1 - x1 * mean_gx : g1 - mean_g - x1 * mean_gx;
    kiln::from_float_pair(s.rstd * r0, s.rstd * r1, o.v, j);
  }
  return o;
}

/// Writes the thread's sums of sum `Which` into the block's partial row.
template <int Which>
KILN_DEVICE KILN_FORCEINLINE void write_split_partial(const Args& a, long long p, COLV first,
                                                      int tid) {
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (!in_row<kSplitVecs>(c)) continue;
    float v[kVec];
#pragma unroll
    for (int q = 0; q < kQuads; ++q) {
      const Quad u = sum_quad(Which, i, q, tid);
#pragma unroll
      for (int e = 0; e < 4; ++e) v[4 * q + e] = u[e];
    }
    kiln::store_run<kVec>(partial_at(a, Which, p, c, 0), v);
  }
}

KILN_DEVICE KILN_FORCEINLINE void split_pass(const Args& a, int rows, unsigned long long* slots,
                                             unsigned long long* next_slots) {
  // Per buffer (by the round's parity): each warp's two sums, then the row's.
  __shared__ float scratch[2][2 * kWarps + 2];
  const int tid = kiln::thread_index();
  const int lane = tid % kiln::warp_size, warp = tid / kiln::warp_size;
  const unsigned long long keep = kiln::l2_evict_last(), once = kiln::l2_evict_first();
  // The block's columns, the same in every row (the grid: a multiple of kSlices blocks).
  const int slice = kiln::block_index() % kSlices;
  const COLV first(slice * kSplitVecs + tid);
  if constexpr (kSums) {
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
#pragma unroll
      for (int q = 0; q < kQuads; ++q) {
        if constexpr (kWeightGrad) sum_quad(0, i, q, tid) = Quad{};
        if constexpr (kBiasGrad) sum_quad(kWeightGrad, i, q, tid) = Quad{};
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kIters; ++i) {  // the block's weights (where there are)
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (a.weight && in_row<kSplitVecs>(c)) {
      weight_vector(i, tid) = kiln::load_vector<kVec>(In(a.weight)[c]);
    }
  }
  // (A grid of fewer blocks than a row's slices traps, and so does one that is no whole
  // multiple of them, whose blocks would not keep their columns: kiln's configs never
  // launch either.)
  if (kiln::grid_size() % kSlices != 0) __trap();
  const kiln::SplitRounds rounds((long long)rows * kSlices, kSlices);
  // Ringed: round t's slice of h and dy into their rings' slot t % kSplitRing (an empty
  // commit group past the last read).
  auto fetch = [&](long long t) {
    kiln::split_fetch<kIters>(rounds, t, [&](const kiln::SplitRound& q, int i) {
      const long long at = (q.read / kSlices) * kCols;
      const COLV c = first + COLV(i * kThreadsPerRow);
      if (!in_row<kSplitVecs>(c)) return;
      kiln::async_copy<16>(&ring_vector(0, t, i, tid), In(a.h + at)[c].ptr(), 16);
      kiln::async_copy<16>(&ring_vector(1, t, i, tid), In(a.dy + at)[c].ptr(), 16);
    });
  };
  // This thread's vectors of h and dy in the block's slice of the row at `start`, those in
  // the row, loaded with L2 policy `policy` (slice_vector's constant offsets).
  auto load_slice = [&](Vector(&hv)[kIters], Vector(&dyv)[kIters], long long start,
                        unsigned long long policy) {
    const Elem* const h0 = In(a.h + start)[first].ptr();
    const Elem* const dy0 = In(a.dy + start)[first].ptr();
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      if (!in_row<kSplitVecs>(first + COLV(i * kThreadsPerRow))) continue;
      hv[i] = kiln::load_hinted(slice_vector(h0, i), policy);
      dyv[i] = kiln::load_hinted(slice_vector(dy0, i), policy);
    }
  };
  // Unringed: the read slice's h and dy in registers, loaded a round ahead: round t + 1's
  // once round t's sums have them, so that they are in flight while the block writes round
  // t's dx. With 32-bit elements as soon as the sums are in (before the round's first
  // barrier), with 16-bit ones after its second barrier, where warp 0 has its slots: on an
  // H100 (64 x 1M, % of a copy) the early loads took f32 LayerNorm from 84% to 89% and
  // RMSNorm from 85% to 92%, and f16 LayerNorm from 78% down to 75.5%, RMSNorm from 84.5%
  // down to 81%.
  constexpr bool kEarlyNext = sizeof(Elem) == 4;
  Vector h[kIters], dy[kIters];
  auto load_read = [&](const kiln::SplitRound& q) {
    if (Ring::ringed || !q.reads) return;
    load_slice(h, dy, (q.read / kSlices) * kCols, keep);
  };
  if constexpr (Ring::ringed) {
    Ring::start(fetch);
  } else {
    load_read(rounds.round(0));
  }
  Stats last_s{0.0f, 0.0f};  // ringed: the statistics of the row read a round before
  for (long long t = 0;; ++t) {
    const kiln::SplitRound r = rounds.round(t);
    if (r.done) break;
    float* red = scratch[r.parity];
    const long long row = r.read / kSlices, out_row = r.written / kSlices;
    const long long out_start = out_row * kCols;
    Vector out_h[kIters], out_dy[kIters];
    Stats s{0.0f, 0.0f}, out_s{0.0f, 0.0f};
    if constexpr (Ring::ringed) {
      // A later round's slices on their way; this round's landed (this thread's copies:
      // each thread reads back only its own vectors). The written slice is the one read a
      // round before, in its row's statistics.
      if (r.reads) s = stats_of(a, ROW((int)row));
      out_s = last_s;
      last_s = s;
      Ring::next(t, fetch);
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (!in_row<kSplitVecs>(c)) continue;
        if (r.reads) {
          h[i] = ring_vector(0, t, i, tid);
          dy[i] = ring_vector(1, t, i, tid);
        }
      }
    } else {
      if (r.reads) s = stats_of(a, ROW((int)row));
      if (r.writes) {
        out_s = stats_of(a, ROW((int)out_row));
        load_slice(out_h, out_dy, out_start, once);
      }
    }
    const unsigned long long* row_slots = slots + out_row * kRowWords;
    RowSlots got;
    if (kEarlySlots && r.writes && warp == 0) got.load(row_slots, lane);
    if (r.reads) {
      Sums part{0.0f, 0.0f};
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (!in_row<kSplitVecs>(c)) continue;
        split_read(a, i, tid, h[i], dy[i], weight_vector(i, tid), s, part);
      }
      kiln::split_warp_sums<!kRms, true>(red, warp, lane, part.a, part.b);
    }
    if constexpr (kEarlyNext) load_read(rounds.round(t + 1));  // (h and dy are spent)
    kiln::sync_threads();
    if (warp == 0) {
      if (r.reads) {
        float sa, sb;
        kiln::split_block_sums<kWarps, !kRms, true>(red, lane, sa, sb);
        if (lane == 0) {
          const long long at = r.read * kSlotWords;
          if constexpr (!kRms) kiln::store_relaxed(slots + at, kiln::split_slot_word(sa));
          kiln::store_relaxed(slots + at + kSlotWords - 1, kiln::split_slot_word(sb));
          if (next_slots) {  // the same words, for the next launch
#pragma unroll
            for (int j = 0; j < kSlotWords; ++j) next_slots[at + j] = 0;
          }
        }
      }
      if (r.writes) {
        if (!kEarlySlots) got.load(row_slots, lane);
        got.wait(row_slots, lane);
        Sums total{0.0f, 0.0f};  // each lane's slices in order, then the lanes'
#pragma unroll
        for (int k = 0; k < RowSlots::lane_slices; ++k) {
          if (!got.has(k, lane)) continue;
          if constexpr (!kRms) total.a += got.value(k, 0);
          total.b += got.value(k, kSlotWords - 1);
        }
        if constexpr (!kRms) total.a = kiln::warp_sum(total.a);
        total.b = kiln::warp_sum(total.b);
        if (lane == 0) {
          red[2 * kWarps] = total.a;
          red[2 * kWarps + 1] = total.b;
        }
      }
    }
    kiln::sync_threads();
    if constexpr (!kEarlyNext) load_read(rounds.round(t + 1));
    if (r.writes) {
      Sums total{red[2 * kWarps], red[2 * kWarps + 1]};
      total.b *= out_s.rstd;
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (!in_row<kSplitVecs>(c)) continue;
        if constexpr (Ring::ringed) {
          out_h[i] = ring_vector(0, t - 1, i, tid);
          out_dy[i] = ring_vector(1, t - 1, i, tid);
        }
        const Vector d =
            split_gradient(a, out_h[i], out_dy[i], weight_vector(i, tid), out_s, total);
        kiln::store_hinted(reinterpret_cast<Vector*>(Out(a.dx + out_start)[c].ptr()), d, once);
      }
    }
  }
  // The block's partial row: its group of blocks' (rows group, group + groups, ...).
  const long long p = kiln::block_index() / kSlices;
  if constexpr (kWeightGrad) write_split_partial<0>(a, p, first, tid);
  if constexpr (kBiasGrad) write_split_partial<kWeightGrad>(a, p, first, tid);
}

}  // namespace norms
#endif

/// dy, h, dx: rows x kCols elements, row-major, each row starting at a multiple of kVec
/// elements from a 16-byte aligned base; weight: kCols elements, 16-byte aligned (or
/// null); mean, rstd: rows floats; partial: (kWeightGrad + kBiasGrad) x grid x kCols
/// floats (null without them); or, multi pass without them and sum_parts > 0, the rows'
/// sums given: rows x sum_parts pairs of floats (sum(g), sum(g · (h - mean))), added up
/// in each row (sum_parts 0 otherwise). Launched with kThreadsPerRow x kRowsPerBlock threads and
/// any grid up to ceil(rows / kRowsPerBlock) blocks (at least 1); with clusters, kCluster times
/// that many clusters' blocks, in clusters of kCluster blocks along x (partial: a row each).
/// Split configs: kThreadsPerRow threads, the config's grid_blocks (a whole multiple of
/// kSlices), cooperatively, with the dynamic shared memory of the slice's weights and sums
/// and a ringed config's rings (kiln::ops's norm_backward_split_shared_bytes), partial a row for
/// each kSlices blocks, rows x kSlices x kSlotWords zeroed slots and, unless null, as many more
/// that it zeroes for the next launch (`next_slots`); the others take null slots.
#if defined(NORM_SPLIT)
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow, kSplitMinBlocks)
#else
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow* kRowsPerBlock, kMinBlocks)
#endif
    KILN_KERNEL_NAME(const norms::Elem* dy, const norms::Elem* h, const norms::Elem* weight,
                     const float* mean, const float* rstd, norms::Elem* dx, float* partial,
                     int rows, int sum_parts, unsigned long long* slots,
                     unsigned long long* next_slots) {
  (void)slots;  // split configs' only
  (void)next_slots;
#if defined(NORM_SPLIT)
  const norms::Args a{dy,       h,  weight,  mean,
                      rstd,     dx, partial, (long long)(kiln::grid_size() / norms::kSlices),
                      sum_parts};
  norms::split_pass(a, rows, slots, next_slots);
#else
  const norms::Args a{
      dy, h, weight, mean, rstd, dx, partial, (long long)(kiln::grid_size() / kCluster), sum_parts};
  if constexpr (kMultiPass) {
    norms::multi_pass(a, rows);
  } else {
    norms::one_pass(a, rows);
  }
#endif
}
