// LayerNorm and RMSNorm over the last dimension, f32 math whatever the storage type:
//   h = x (+ residual, rounded to the storage type, when kResidual: h is written too)
//   LayerNorm  y = (h - mean) * rstd * weight + bias,  rstd = 1 / sqrt(var(h) + eps)
//   RMSNorm    y = h * rstd * weight,                  rstd = 1 / sqrt(mean(h^2) + eps)
// weight and bias are optional (null pointers: 1 and 0); mean (LayerNorm) and rstd, f32 a
// row, are written where their pointers are not null, for a backward pass.
//
// The host (include/kiln/ops/norm.hpp) generates spec.hpp as for softmax.cu:
//   dimensions  ROW, COL with COLV = Fold<COL, kVec>, SLOT, RANK
//   tensors     In, Out: one row, (COL: kCols), f16 / bf16 / f32 storage
//   Threads     the block as (SLOT: kRowsPerBlock, RANK: kThreadsPerRow)
//   constants   kCols, kVec, kThreadsPerRow, kRowsPerBlock, kIters, kMultiPass, and
//               kRms (1: RMSNorm), kResidual (1: the fused residual variant)
//   NORM_STAGED (defined for staged configs: the row staged in shared memory), with the
//               constants kStagedMinBlocks (the launch bounds' blocks an SM) and
//               kStagedAhead (the vectors a thread copies of its block's next row ahead,
//               for a persistent grid; 0: a row a block) and kStagedHeld (the last of a
//               thread's kIters vectors, held in registers rather than staged)
//   NORM_SPLIT  (defined for split configs: rows shared by a persistent grid), with the
//               constants kSplitMinBlocks (the launch bounds' blocks an SM) and kSplitRing
//               (the slices of a ringed split's ring in shared memory, else 0); kIters is
//               then the vectors a thread takes of a slice
//   KILN_KERNEL_NAME, e.g. norm__layer__f16__cols4096__t256v8
//
// A constant row's mean must come out as exactly its value, whatever its magnitude (an
// unshifted f32 sum of 4096 values of 60000 already rounds, and the rounded mean gives
// such a row a variance of its own).
// LayerNorm: each thread sums h - K and (h - K)^2 about its own shift K, the mean of its
// first vector (kiln::ShiftedSums), and the row reduces them with kiln::RowShiftedSums:
// each warp's (then the row's) sums about its first thread's K, one step of warp sums as
// RMSNorm's, where that K lies near the warp's mean, else two steps more about the
// approximate mean: no cancellation whatever the data. (The sums had been about the row's
// first element: with an outlier there, f16 rows of 1M cancelled four digits away in the
// variance. Merging each thread's exact moments by Chan's update, kiln::RowMoments,
// costs two divisions a merge; on the H200 it took 8192 x 8192 f16 from 66% to 50% of a
// copy.) A constant row's every K is its value: its mean comes out exactly.
// One pass (kMultiPass == 0): as softmax's, each thread keeps its kIters vectors of h in
// registers.
// Multi pass (kMultiPass == 1): a block per row streams it twice: the row's sums (and h
// written), then the normalized write, backwards so that its first reads hit L2.
//
// Pointers carry no __restrict__: y may be x, and h may be x or the residual (updated in
// place); every element is read before the same thread writes it, and the multi-pass
// write reads h back, so its loads must see this kernel's stores.
#include "kiln/device/async_copy.hpp"
#include "kiln/device/block.hpp"
#include "kiln/device/global_memory.hpp"
#include "kiln/device/half.hpp"
#include "kiln/device/shared_memory.hpp"
#include "kiln/device/split_rows.hpp"
#include "spec.hpp"

namespace norms {  // not "norm": CUDA's math library has a function of that name

using Elem = Out::element_type;
constexpr int kVecs = kCols / kVec;  // vectors per row
constexpr float kInvCols = 1.0f / float(kCols);

// One pass on NVIDIA GPUs: launch bounds that let 1536 threads an SM hold their rows
// where the registers allow (the row's part plus 32 registers a thread): LayerNorm at 512
// threads had taken 48 registers, two blocks an SM, and ran 8192 x 8192 f16 at 71% of a
// copy where RMSNorm's three blocks reached 96%. Multi pass, and AMD GPUs: 1.
KILN_HOST_DEVICE constexpr int one_pass_min_blocks() {
#if KILN_HIP
  return 1;
#else
  if (kMultiPass) return 1;
  const int threads = kThreadsPerRow * kRowsPerBlock;
  // (LayerNorm bf16 had spilled a few bytes a thread in some kinds under these bounds,
  // e.g. 14 at 128 columns and 36 at 8192 with the residual on sm_90, until its bf16
  // pairs were converted as 32-bit words (kiln::to_float_pair). Leaving LayerNorm 8
  // registers more cost 8192 x 8192 f16 a block an SM: 74% of a copy where it runs at
  // 87% as it is.)
  const int row_registers = kIters * kVec * int(sizeof(Elem)) / 4 + 32;
  const int by_registers = 65536 / (threads * row_registers);
  const int blocks = 1536 / threads < by_registers ? 1536 / threads : by_registers;
  return blocks > 1 ? blocks : 1;
#endif
}
[[maybe_unused]] constexpr int kMinBlocks = one_pass_min_blocks();  // (not staged configs)

static_assert(kCols % kVec == 0, "the vector width divides the row");
static_assert((kThreadsPerRow & (kThreadsPerRow - 1)) == 0, "threads per row: a power of 2");
static_assert(kThreadsPerRow * kRowsPerBlock % kiln::warp_size == 0,
              "whole warps: every lane takes part in the shuffles");
static_assert(kMultiPass == 0 || kRowsPerBlock == 1, "multi-pass: one row per block");

// ---- f32 math over f16 / bf16 / f32 storage: kiln::to_float and kiln::from_float
// (kiln/device/half.hpp) ----
using kiln::from_float;
using kiln::from_float_pair;
using kiln::from_floats;
using kiln::to_float;
using kiln::to_float_pair;
using kiln::to_floats;
#if KILN_HIP
KILN_DEVICE KILN_FORCEINLINE float reciprocal_sqrt(float x) {
  return 1.0f / __builtin_sqrtf(x);
}
#else
// Correctly rounded square root (NVRTC's default), then an IEEE division.
KILN_DEVICE KILN_FORCEINLINE float reciprocal_sqrt(float x) {
  return 1.0f / sqrtf(x);
}
#endif

KILN_DEVICE KILN_FORCEINLINE float fma_f32(float x, float y, float z) {
#if KILN_HIP
  return __builtin_fmaf(x, y, z);
#else
  return fmaf(x, y, z);
#endif
}

using Vector = kiln::Vec<Elem, kVec>;

/// The arguments of a launch, as the kernel receives them.
struct Args {
  const Elem* x;
  const Elem* residual;  // kResidual only
  const Elem* weight;    // or null: 1
  const Elem* bias;      // or null: 0 (LayerNorm only)
  Elem* y;
  Elem* h;      // kResidual only
  float* mean;  // or null (LayerNorm only)
  float* rstd;  // or null
  float eps;
};

/// The row's mean and reciprocal standard deviation (RMSNorm: mean 0).
struct Stats {
  float mean;
  float rstd;
};

/// RMSNorm's Stats from the row's sum of h^2.
KILN_DEVICE KILN_FORCEINLINE Stats rms_stats(float total, float eps) {
  return {0.0f, reciprocal_sqrt(total * kInvCols + eps)};
}

/// x + residual, rounded to the storage type.
KILN_DEVICE KILN_FORCEINLINE Vector sum_of(const Vector& x, const Vector& r) {
  float fx[kVec], fr[kVec];
  to_floats(x.v, fx);
  to_floats(r.v, fr);
#pragma unroll
  for (int j = 0; j < kVec; ++j) fx[j] += fr[j];
  Vector h;
  from_floats(fx, h.v);
  return h;
}

/// h = x + residual at vector c, rounded to the storage type (or x alone).
KILN_DEVICE KILN_FORCEINLINE Vector load_h(const Args& a, long long start, COLV c) {
  Vector v = kiln::load_vector<kVec>(In(a.x + start)[c]);
  if constexpr (kResidual) {
    const Vector r = kiln::load_vector<kVec>(In(a.residual + start)[c]);
    v = sum_of(v, r);
  }
  return v;
}

static_assert((kVec & (kVec - 1)) == 0, "vectors of a power of 2 elements");

/// The mean of a vector's elements, pairwise (equal elements give their value exactly):
/// a thread's LayerNorm shift, near its elements.
KILN_DEVICE KILN_FORCEINLINE float vector_mean(const Vector& v) {
  float h[kVec];
  to_floats(v.v, h);
#pragma unroll
  for (int w = kVec / 2; w > 0; w /= 2) {
#pragma unroll
    for (int j = 0; j < w; ++j) h[j] = (h[j] + h[j + w]) * 0.5f;
  }
  return h[0];
}

/// A thread's part of its row's sums: RMSNorm's of h^2 (in a), LayerNorm's
/// kiln::ShiftedSums about the mean of the thread's first vector (in multi pass, of each
/// step's, the steps' merged).
struct Part {
  kiln::ShiftedSums s{0.0f, 0.0f, 0.0f, 0.0f};

  /// Adds vector `v` of h, the thread's first where `first` (known when unrolled).
  KILN_DEVICE KILN_FORCEINLINE void add(const Vector& v, bool first) {
    if (!kRms && first) s.k = vector_mean(v);
    float h[kVec];
    to_floats(v.v, h);
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const float d = h[j] - s.k;
      s.a += kRms ? d * d : d;
      if constexpr (!kRms) s.b += d * d;
    }
    s.n += float(kVec);
  }
  /// Adds another LayerNorm Part's elements, the sums merged about their approximate mean
  /// (kiln::merged: a thread's sums of many elements about one shift lose digits as it
  /// lies off their mean).
  KILN_DEVICE KILN_FORCEINLINE void absorb(const Part& o) {
    s = kiln::merged(s, o.s);
  }
};

/// LayerNorm's Stats from the row's ShiftedSums (kiln::RowShiftedSums: k near the mean).
KILN_DEVICE KILN_FORCEINLINE Stats layer_stats(kiln::ShiftedSums total, float eps) {
  const float offset = total.a * kInvCols;
  const float var = total.b * kInvCols - offset * offset;
  return {total.k + offset, reciprocal_sqrt((var > 0.0f ? var : 0.0f) + eps)};
}

/// The row's Stats from its threads' Parts (kiln::row_reduce over the block's (SLOT, RANK)
/// layout: for LayerNorm in two steps, RowShiftedSums), in every thread of the row. Every
/// thread of the block calls it (it may hold a barrier); a block that reduces row after
/// row passes each its count, `round` (row_reduce's: no barrier between rows).
KILN_DEVICE KILN_FORCEINLINE Stats reduce_stats(const Part& part, float eps, int round = 0) {
  if constexpr (kRms) {
    return rms_stats(kiln::row_reduce<kiln::RowSum, kThreadsPerRow, kRowsPerBlock>(part.s.a, round),
                     eps);
  } else {
    return layer_stats(
        kiln::row_reduce<kiln::RowShiftedSums, kThreadsPerRow, kRowsPerBlock>(part.s, round), eps);
  }
}

/// Whether vector `c` lies in the row (known true at compile time when the threads tile it).
template <int Step>
KILN_DEVICE KILN_FORCEINLINE bool in_row(COLV c) {
  return kVecs % Step == 0 || c < COLV(kVecs);
}

/// The weight and bias at one vector of the row (where given).
struct Affine {
  Vector w, b;
};
KILN_DEVICE KILN_FORCEINLINE Affine affine_at(const Args& a, COLV c) {
  Affine f;
  if (a.weight) f.w = kiln::load_vector<kVec>(In(a.weight)[c]);
  if (!kRms && a.bias) f.b = kiln::load_vector<kVec>(In(a.bias)[c]);
  return f;
}

constexpr bool kBf16 = kiln::detail::is_same<Elem, kiln::bf16>;

/// Whether the launch has the weight, and LayerNorm's the bias: the write loops then take
/// their copy inlined with `affine` true, whose bias is one multiply-add an element with
/// no test of the pointers; the copy with `affine` false serves every other case.
KILN_DEVICE KILN_FORCEINLINE bool has_affine(const Args& a) {
  return a.weight != nullptr && (kRms || a.bias != nullptr);
}

/// y at a vector from h there, the weight and bias there: (h - mean) * rstd * weight +
/// bias (`affine`: both known present, a constant where it is inlined).
KILN_DEVICE KILN_FORCEINLINE Vector normalized_with(const Args& a, bool affine, const Vector& wv,
                                                    const Vector& bv, const Vector& v, Stats s) {
  Vector o;
  if constexpr (kVec % 2 == 0) {
    if (affine || kBf16) {
      // Pair by pair (kiln::to_float_pair: bf16 words, packed rounding), the bias one fma
      // where it is known present.
      auto one = [&](float h, float w, float b) {
        const float n = (h - s.mean) * s.rstd;
        if (affine) return kRms ? n * w : fma_f32(n, w, b);
        float y = n;
        if (a.weight) y *= w;
        if (!kRms && a.bias) y += b;
        return y;
      };
#pragma unroll
      for (int j = 0; j < kVec; j += 2) {
        float h0, h1, w0 = 1.0f, w1 = 1.0f, b0 = 0.0f, b1 = 0.0f;
        to_float_pair(v.v, j, h0, h1);
        if (affine || a.weight) to_float_pair(wv.v, j, w0, w1);
        if (!kRms && (affine || a.bias)) to_float_pair(bv.v, j, b0, b1);
        from_float_pair(one(h0, w0, b0), one(h1, w1, b1), o.v, j);
      }
      return o;
    }
  }
  // Element by element. (f16 pairs here, with the weights held ahead, took LayerNorm's
  // staged 1024 x 65536 from 84% to 82% of a copy on the H200.)
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    float y = (to_float(v[j]) - s.mean) * s.rstd;
    if (affine || a.weight) y *= to_float(wv[j]);
    if (!kRms && (affine || a.bias)) y += to_float(bv[j]);
    from_float(y, o[j]);
  }
  return o;
}

/// y at a vector from h there and the Affine there.
KILN_DEVICE KILN_FORCEINLINE Vector normalized(const Args& a, bool affine, const Affine& f,
                                               const Vector& v, Stats s) {
  return normalized_with(a, affine, f.w, f.b, v, s);
}
/// y at vector c from h there, the weight and bias loaded here.
KILN_DEVICE KILN_FORCEINLINE Vector normalized(const Args& a, bool affine, const Vector& v, COLV c,
                                               Stats s) {
  Vector wv, bv;
  if (affine || a.weight) wv = kiln::load_vector<kVec>(In(a.weight)[c]);
  if (!kRms && (affine || a.bias)) bv = kiln::load_vector<kVec>(In(a.bias)[c]);
  return normalized_with(a, affine, wv, bv, v, s);
}

/// Thread 0 of the row writes its statistics where they are asked for.
KILN_DEVICE KILN_FORCEINLINE void write_stats(const Args& a, ROW row, Stats s) {
  if (!kRms && a.mean) a.mean[row.get()] = s.mean;
  if (a.rstd) a.rstd[row.get()] = s.rstd;
}

// One pass: thread (SLOT, RANK) holds vectors RANK, RANK + kThreadsPerRow, ... of h in
// row block * kRowsPerBlock + SLOT.
KILN_DEVICE KILN_FORCEINLINE void one_pass(const Args& a, int rows) {
  const Threads t(kiln::thread_index());
  const SLOT slot = t.get<SLOT>();
  const COLV first(t.get<RANK>().get());
  const ROW row(kiln::block_index() * kRowsPerBlock + slot.get());
  const bool valid = row < ROW(rows);
  const long long start = (long long)(valid ? row.get() : 0) * kCols;

  Vector v[kIters];
  int held = 0;  // vectors of the row this thread holds
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (valid && in_row<kThreadsPerRow>(c)) {
      v[i] = load_h(a, start, c);
      ++held;
    }
  }
  Part part;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    if (i < held) part.add(v[i], i == 0);  // (a thread holds its first `held` vectors)
  }
  const Stats s = reduce_stats(part, a.eps);
  if (!valid) return;  // after the last barrier
  auto write = [&](bool full) {
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(i * kThreadsPerRow);
      if (!in_row<kThreadsPerRow>(c)) continue;
      if constexpr (kResidual) kiln::store_vector<kVec>(Out(a.h + start)[c], v[i]);
      kiln::store_vector<kVec>(Out(a.y + start)[c], normalized(a, full, v[i], c, s));
    }
  };
  if (has_affine(a)) {
    write(true);
  } else {
    write(false);
  }
  if (first == COLV(0)) write_stats(a, row, s);
}

/// The weight and bias (an Affine) of a thread's vectors, vector i at column first + i *
/// kThreadsPerRow of a row in steps of `Step` vectors (in_row), loaded `Ahead` vectors
/// ahead of the writes that use them. y may alias x (no __restrict__), so a load the code
/// places after a store stays after it: loaded at each write, every weight waited a round
/// trip to L2 behind the previous store (LayerNorm of 1024 x 65536 f16 staged ran at 80% of
/// a copy where softmax's reached 90%; LayerNorm's split rows at 52% where RMSNorm's, whose
/// weight comes with h, ran at 79%). start() goes before what can hide the first loads.
/// The ring holds 32-bit words, and a missing weight or bias is a vector of ones or of
/// minus zeros: fma(n, w, -0) is n * w, fma(n, 1, b) is n + b and n * 1 is n, bit for bit,
/// so the writes take normalized(..., affine = true, ...) whatever the launch has. (Vectors
/// of kiln::Vec chosen between a load and nothing had split into 16-bit registers: in the
/// split rows such a ring, with a write for each case, spilled 672 to 942 bytes a thread.)
/// Loops over i must be unrolled (the ring is indexed by i).
template <int Ahead, int Step>
struct AffineAhead {
  // (Vector does not depend on the template's parameters, so these are compiled in every
  // kernel, those of 2-byte vectors too, where no AffineAhead is used: hence the guards.)
  static constexpr int kWords = sizeof(Vector) < 4 ? 1 : int(sizeof(Vector) / 4);
  struct alignas(sizeof(Vector) < 4 ? 4 : sizeof(Vector)) Words {
    unsigned u[kWords];
  };
  static_assert(Ahead > 0 && sizeof(Words) == sizeof(Vector), "vectors of whole 32-bit words");
  static constexpr int kAhead = kIters < Ahead ? kIters : Ahead;
  static constexpr unsigned kOne = sizeof(Elem) == 4 ? 0x3f800000u
                                   : kBf16           ? 0x3f803f80u
                                                     : 0x3c003c00u;
  static constexpr unsigned kMinusZero = sizeof(Elem) == 4 ? 0x80000000u : 0x80008000u;
  Words w[kAhead], b[kAhead];
  COLV first;

  /// Loads vectors 0 to kAhead - 1.
  KILN_DEVICE KILN_FORCEINLINE void start(const Args& a, COLV first_col) {
    first = first_col;
#pragma unroll
    for (int i = 0; i < kAhead; ++i) load(a, i);
  }
  /// Vector i's Affine; vector i + kAhead's loads go out.
  KILN_DEVICE KILN_FORCEINLINE Affine take(const Args& a, int i) {
    const Affine f{__builtin_bit_cast(Vector, w[i % kAhead]),
                   __builtin_bit_cast(Vector, b[i % kAhead])};
    if (i + kAhead < kIters) load(a, i + kAhead);
    return f;
  }

  /// The vector at c of p as words, or `missing` in every word where p is null.
  KILN_DEVICE KILN_FORCEINLINE static Words words(const Elem* p, COLV c, unsigned missing) {
    Words m;
#pragma unroll
    for (int k = 0; k < kWords; ++k) m.u[k] = missing;
    return p ? *reinterpret_cast<const Words*>(In(p)[c].ptr()) : m;
  }

 private:
  KILN_DEVICE KILN_FORCEINLINE void load(const Args& a, int i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (!in_row<Step>(c)) return;  // (nor is it written)
    w[i % kAhead] = words(a.weight, c, kOne);
    if constexpr (!kRms) b[i % kAhead] = words(a.bias, c, kMinusZero);
  }
};

#ifdef NORM_STAGED
// Staged (forward): the block copies its row of x (and of the residual) into shared memory
// by cp.async, all of it in flight at once, then makes one pass as one_pass does, h = x
// (+ residual) from the copies for the sums and again for the writes (each thread reads
// back only what its own copies wrote: no barrier between).
// Without kStagedAhead, a row a block. With it (a persistent grid: rows block, block +
// grid, ...), each thread's copies go round a ring of kSlots = kIters + kStagedAhead
// vectors (of x, then of the residual): once its sums are taken, a thread copies the
// first kStagedAhead vectors of the block's next row into the free slots, and each
// vector it writes frees its slot for the next row's vector kStagedAhead further on, so
// an SM that holds one such block (a row of 64 KiB and more) keeps reading while it
// reduces and writes (a row a block, the next block's copies waited for this one to
// finish).
static_assert(kRowsPerBlock == 1 && kMultiPass == 0 && kVecs == kThreadsPerRow * kIters,
              "staged: a row a block, the threads tiling it");
static_assert(sizeof(Vector) == 4 || sizeof(Vector) == 8 || sizeof(Vector) == 16,
              "staged: cp.async copies vectors of 4, 8 or 16 bytes");
static_assert(kStagedAhead == 0 || (kStagedAhead <= kIters && kIters <= 8),
              "staged ahead: at most a row's vectors ahead, rows of at most 8 vectors a "
              "thread (a commit group each)");
// Rows longer than the shared memory holds (up to 256 KiB, no residual) keep each
// thread's last kStagedHeld vectors of x in registers: loaded after the copies are issued,
// summed after the copies' groups, written after the staged vectors. The row still
// crosses DRAM once.
static_assert(kStagedHeld >= 0 && kStagedHeld < kIters, "staged: a thread stages a vector or more");
static_assert(kStagedHeld == 0 || (kStagedAhead == 0 && !kResidual),
              "staged: vectors held in registers take neither rows ahead nor the residual");
constexpr int kStagedIters = kIters - kStagedHeld;   // a thread's vectors in shared memory
constexpr int kSlots = kStagedIters + kStagedAhead;  // a thread's vectors of each stream
/// The vectors a thread holds in registers (one unused where it holds none).
struct HeldVectors {
  Vector v[kStagedHeld > 0 ? kStagedHeld : 1];
};
constexpr int kStreams = kResidual ? 2 : 1;  // x, and the residual

// The launch bounds' blocks an SM: the host's kStagedMinBlocks (threads and shared memory
// on an SM of 228 KiB), capped at what the target's SM holds, and for LayerNorm with the
// residual at 48 registers a thread (at 40 and 32, ptxas spilled its bf16 rows).
constexpr int kStagedRegisters = !kRms && kResidual ? 48 : 32;
constexpr int kStagedByRegisters = 65536 / (kThreadsPerRow * kStagedRegisters);
constexpr int kStagedByHost = kStagedMinBlocks < kStagedByRegisters ? kStagedMinBlocks
                              : kStagedByRegisters > 1              ? kStagedByRegisters
                                                                    : 1;
#if KILN_HIP
constexpr int kStagedBlocks = kStagedByHost;
#else
constexpr int kStagedBlocks = kiln::detail::launch_min_blocks_shared(
    kThreadsPerRow, kStagedByHost, kStreams* kSlots* kThreadsPerRow*(long long)sizeof(Vector));
#endif

/// h at this thread's vector in slot `slot` of the staged rows (x, then the residual's
/// kSlots vectors a thread).
KILN_DEVICE KILN_FORCEINLINE Vector staged_h(const Vector* rows, int slot, int t) {
  Vector h = kiln::load_whole(rows + slot * kThreadsPerRow + t);
  if constexpr (kResidual) {
    h = sum_of(h, kiln::load_whole(rows + (kSlots + slot) * kThreadsPerRow + t));
  }
  return h;
}

/// This thread's copies of vector i of the row starting at element `start` into `slot`.
KILN_DEVICE KILN_FORCEINLINE void staged_copy(const Args& a, Vector* rows, long long start, int i,
                                              int slot, int t) {
#pragma unroll
  for (int k = 0; k < kStreams; ++k) {
    const Elem* from = (k == 0 ? a.x : a.residual) + start;
    const int v = i * kThreadsPerRow + t;
    kiln::async_copy<int(sizeof(Vector))>(rows + (k * kSlots + slot) * kThreadsPerRow + t,
                                          from + (long long)v * kVec, int(sizeof(Vector)));
  }
}

// The copies go in commit groups (at most 8) of x and of the residual, all issued at once;
// each group is summed as soon as it lands, while the later ones are still in flight (with
// the whole row first, an SM holding one block of a long row did no loading while it
// summed). (With kStagedAhead, a group a vector.)
using Groups = kiln::CommitGroups<kStagedIters>;

/// The block's row `row` (from element `start`), its vector i in slot (base + i) mod
/// kSlots, its copies issued (and, with kStagedAhead, each vector its own commit group,
/// none committed since); `round` counts the block's rows. With kStagedAhead and `next`
/// (the block's next row, starting at element next_start), the copies of that row go out
/// as this one frees its slots.
KILN_DEVICE KILN_FORCEINLINE void staged_row(const Args& a, Vector* rows, int t, ROW row,
                                             long long start, int base, int round, bool next,
                                             long long next_start, const HeldVectors& held) {
  const auto slot_of = [&](int i) {  // (base + i) mod kSlots, i < 2 * kSlots - base
    const int s = base + i;
    return s >= kSlots ? s - kSlots : s;
  };
  Part part;
  if constexpr (kStagedAhead == 0) {
#pragma unroll
    for (int g = 0; g < Groups::groups; ++g) {
      kiln::async_wait_pending(Groups::groups - 1 - g);  // group g has landed
#pragma unroll
      for (int i = Groups::first(g); i < Groups::end(g); ++i) {
        part.add(staged_h(rows, i, t), i == 0);
      }
    }
#pragma unroll
    for (int j = 0; j < kStagedHeld; ++j) part.add(held.v[j], false);
  } else {
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      kiln::async_wait_pending(kIters - 1 - i);  // vector i has landed
      part.add(staged_h(rows, slot_of(i), t), i == 0);
    }
    // The next row's first vectors, into the slots this row leaves free.
#pragma unroll
    for (int i = 0; i < kStagedAhead; ++i) {
      if (next) staged_copy(a, rows, next_start, i, slot_of(kIters + i), t);
      kiln::async_commit_group();
    }
  }
  // The weights ahead (AffineAhead) where the launch bounds leave its ring 32 registers a
  // thread over kStagedRegisters (the loop unrolled whole for it); else loaded at the
  // writes, unrolled by two. (The ring takes 8 to 16 registers: with fewer left, LayerNorm
  // spilled; and LayerNorm bf16, whose conversions take more, spilled 16 bytes a thread
  // with it at 64 registers, and ran at 75% of a copy where it runs at 79% without.)
  constexpr bool kWeightsAhead =
      65536 / (kThreadsPerRow * kStagedBlocks) >= kStagedRegisters + 32 && !(kBf16 && !kRms);
  constexpr int kUnroll = kWeightsAhead || kStagedHeld > 0 ? kIters : 2;  // (held: by index)
  AffineAhead<2, kVecs> affine;
  if constexpr (kWeightsAhead) affine.start(a, COLV(t));
  const Stats s = reduce_stats(part, a.eps, round);
  auto write = [&](bool full) {
#pragma unroll kUnroll
    for (int i = 0; i < kIters; ++i) {
      const int v = i * kThreadsPerRow + t;
      const int slot = kStagedAhead ? slot_of(i) : i;
      const Vector h = i < kStagedIters ? staged_h(rows, slot, t) : held.v[i - kStagedIters];
      if constexpr (kWeightsAhead) {
        const Affine f = affine.take(a, i);
        if constexpr (kResidual) kiln::store_vector<kVec>(Out(a.h + start)[COLV(v)], h);
        kiln::store_vector<kVec>(Out(a.y + start)[COLV(v)], normalized(a, true, f, h, s));
      } else {  // (as the other kernels write: through affine_at, LayerNorm spilled here)
        if constexpr (kResidual) kiln::store_vector<kVec>(Out(a.h + start)[COLV(v)], h);
        kiln::store_vector<kVec>(Out(a.y + start)[COLV(v)], normalized(a, full, h, COLV(v), s));
      }
      // The slot read, the next row's vector kStagedAhead on takes it (this thread's
      // reads of it come before its copy's write, in program order).
      if (kStagedAhead && kStagedAhead + i < kIters) {
        if (next) staged_copy(a, rows, next_start, kStagedAhead + i, slot, t);
        kiln::async_commit_group();
      }
    }
  };
  // (With the weights ahead, one copy, the fused one: AffineAhead stands ones and minus
  // zeros in for a missing weight or bias. Two copies had taken LayerNorm f16's t1024
  // kernel from 55 to 62 registers.)
  if (!kWeightsAhead && has_affine(a)) {
    write(true);
  } else {
    write(false);
  }
  if (t == 0) write_stats(a, row, s);
}

KILN_DEVICE KILN_FORCEINLINE void staged_pass(const Args& a, int rows_total) {
  Vector* const rows = static_cast<Vector*>(kiln::dynamic_shared_memory());
  const int t = kiln::thread_index();
  int row = kiln::block_index();
  long long start = (long long)row * kCols;
  if constexpr (kStagedAhead == 0) {
#pragma unroll
    for (int g = 0; g < Groups::groups; ++g) {
#pragma unroll
      for (int i = Groups::first(g); i < Groups::end(g); ++i) staged_copy(a, rows, start, i, i, t);
      kiln::async_commit_group();
    }
    HeldVectors held;
    const In x(a.x + start);
#pragma unroll
    for (int j = 0; j < kStagedHeld; ++j)
      held.v[j] = kiln::load_vector<kVec>(x[COLV((kStagedIters + j) * kThreadsPerRow + t)]);
    staged_row(a, rows, t, ROW(row), start, 0, 0, false, 0, held);
  } else {
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      staged_copy(a, rows, start, i, i, t);
      kiln::async_commit_group();
    }
    const int grid = kiln::grid_size();
    int base = 0;
    for (int round = 0;; ++round) {
      const long long next = (long long)row + grid;
      const long long next_start = next * kCols;
      staged_row(a, rows, t, ROW(row), start, base, round, next < rows_total, next_start,
                 HeldVectors{});
      if (next >= rows_total) break;
      row = int(next);
      start = next_start;
      base = base + kIters >= kSlots ? base + kIters - kSlots : base + kIters;
    }
  }
}
#endif

// Multi pass: the block (SLOT: 1, RANK: kThreadsPerRow) streams its row in steps of
// kIters vectors per thread; the write reads h back from where the first pass wrote it
// (the same thread's elements).
KILN_DEVICE KILN_FORCEINLINE void multi_pass(const Args& a) {
  constexpr int kStep = kThreadsPerRow * kIters;  // vectors per step
  constexpr int kSteps = (kVecs + kStep - 1) / kStep;
  const Threads t(kiln::thread_index());
  const COLV first(t.get<RANK>().get());
  const ROW row(kiln::block_index());
  const long long start = (long long)row.get() * kCols;

  Part part;  // the steps' sums (each step's about its own shift)
  for (int step = 0; step < kSteps; ++step) {
    Vector v[kIters];
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
      if (in_row<kStep>(c)) v[i] = load_h(a, start, c);
    }
    Part at_step;  // LayerNorm's step, about its own shift (RMSNorm adds to `part`)
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
      if (!in_row<kStep>(c)) continue;
      if constexpr (kResidual) kiln::store_vector<kVec>(Out(a.h + start)[c], v[i]);
      (kRms ? part : at_step).add(v[i], i == 0);
    }
    if constexpr (!kRms) part.absorb(at_step);
  }
  const Stats s = reduce_stats(part, a.eps);
  const Elem* h = kResidual ? a.h : a.x;
  auto write = [&](bool full) {
    for (int step = kSteps - 1; step >= 0; --step) {
      Vector v[kIters];
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
        if (in_row<kStep>(c)) v[i] = kiln::load_vector<kVec>(In(h + start)[c]);
      }
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
        if (in_row<kStep>(c)) {
          kiln::store_vector<kVec>(Out(a.y + start)[c], normalized(a, full, v[i], c, s));
        }
      }
    }
  };
  if (has_affine(a)) {
    write(true);
  } else {
    write(false);
  }
  if (first == COLV(0)) write_stats(a, row, s);
}

}  // namespace norms

#ifdef NORM_SPLIT
// Split (NormStrategy::split, the forward, with or without the residual): rows too long for a
// block's registers or shared memory (64 x 1M), shared by the whole GPU. The grid is
// persistent (every block resident: a cooperative launch) and walks the rows' slices of
// kSliceVecs vectors in rounds: in round t block b reads slice s = t * grid + b (row
// s / kSlices), publishes its sums in the slots of s, and writes slice s - grid, which it
// read a round before. A grid of at least kSlices blocks has by then read every slice of
// that row, so its slots are mostly there already; the second read of the slice hits L2
// (loaded with evict_last the first time, evict_first the second, as y is stored), so a
// row crosses DRAM once each way, where multi pass reads it twice with a block a row.
// A slot is a 64-bit word, kiln::split_slot_tag in the high half and a float's bits in the
// low one (kiln::split_slot_word).
// The slots are zero when the launch starts: the launch before zeroed them (`next_slots`:
// as a block publishes a slice's words, it zeroes the same words of the buffer the next
// launch takes, kiln's two buffers used in turns), or the host did (where next_slots is
// null, the launches of a captured graph). A reader spins until each slot of its row
// carries the tag, then adds them in slice order (the same bits every run; LayerNorm's
// slices publish their mean and sum of squared deviations, gathered_stats). In
// RMSNorm warp 0 loads them before the block reduces its own sums; the slice's second
// read is in flight by then too. The kernel runs on the grid's first whole multiple of
// kSlices blocks, so that a block's slices are the same columns of each row: it holds
// their weight (and LayerNorm's bias) in shared memory, loaded once, where it had loaded
// them from L2 every round. (On the H200, before that: RMSNorm 64 x 1M at 81% of a copy
// in f16, 74% in f32, where multi pass ran at 50%.)
namespace norms {

constexpr int kSliceVecs = kThreadsPerRow * kIters;
constexpr int kSlices = (kVecs + kSliceVecs - 1) / kSliceVecs;  // a row's
// Slot words a slice: RMSNorm's sum of h^2; LayerNorm's mean and sum of squared deviations
// (the slice's Moments, from its warps' kiln::ShiftedSums).
constexpr int kSlotWords = kRms ? 1 : 2;
constexpr int kRowWords = kSlices * kSlotWords;
// Warp 0 holds a row's slots, lane l those of slices l, l + 32, ... (both words of a
// LayerNorm slice in one lane): at most 8 words a lane. (LayerNorm's had been 4, when its
// registers held the slice's weight and bias with h: with 8, 48 to 168 bytes a thread
// spilled. Its weight and bias now go out after the merge, AffineAhead.)
using RowSlots = kiln::SplitRowSlots<kSlices, kSlotWords>;
constexpr int kLaneSlices = RowSlots::lane_slices;
constexpr int kLaneWords = kLaneSlices * kSlotWords;
constexpr int kWarps = kThreadsPerRow / kiln::warp_size;
// Warp 0 loads its row's slots with the slices' loads, but LayerNorm's of more than 4
// words a lane (two words a slice), which it loads after its own sums: early, they spilled
// 24 to 60 bytes a thread (f32 rows of 1M and 256K, 16-bit rows of 1M by 128 threads).
constexpr bool kEarlySlots = kRms || kLaneWords <= 4;
static_assert(kLaneWords <= 8, "warp 0 holds a row's slots");
static_assert(sizeof(Vector) == 16, "split slices are read in 16-byte vectors");
static_assert(kRowsPerBlock == 1, "a split block takes one slice at a time");

KILN_DEVICE KILN_FORCEINLINE const Vector* as_vector(const Elem* p) {
  return reinterpret_cast<const Vector*>(p);
}
// A thread's vector i of a slice whose first vector (this thread's) is at `first`: a
// constant offset on from there, which the compiler folds into the load, where each
// vector's own 64-bit address from its row's start and its column took a few instructions
// a load (as softmax's split rows read theirs). (The stores keep their own addresses: the
// same offsets there spilled.)
KILN_DEVICE KILN_FORCEINLINE const Vector* slice_vector(const Elem* first, int i) {
  return as_vector(In(first)[COLV(i * kThreadsPerRow)].ptr());
}

/// The elements of slice `slice` of a row (the last one may be ragged).
KILN_DEVICE KILN_FORCEINLINE float slice_elements(int slice) {
  const int vecs = kVecs - slice * kSliceVecs;
  return float((vecs < kSliceVecs ? vecs : kSliceVecs) * kVec);
}

/// LayerNorm's row Stats from its slices' Moments, the lane's k-th (slice k * warp_size +
/// lane) in `got`
/// (kiln::gathered_offset and gathered_spread: two warp sums, no division, where merging
/// them pair by pair, kiln::merge_moments, took two divisions at each of warp 0's 5 to 8
/// merges while the block waited), in every lane of warp 0. The reference is slice 0's
/// mean (a constant row's mean comes out as exactly its value).
template <class Slots>  // (RowSlots: a template, compiled for LayerNorm alone)
KILN_DEVICE KILN_FORCEINLINE Stats gathered_stats(const Slots& got, int lane, float eps) {
  static_assert(sizeof(Slots) > 0 && kSlotWords == 2, "two slot words a slice");
  auto part = [&](int k) {
    const int at = k * kiln::warp_size + lane;
    return kiln::Moments{slice_elements(at), got.value(k, 0), got.value(k, 1)};
  };
  const float reference = kiln::shuffle(got.value(0, 0), 0);
  float offset = 0.0f;
#pragma unroll
  for (int k = 0; k < kLaneSlices; ++k) {
    if (k * kiln::warp_size + lane < kSlices) offset += kiln::gathered_offset(part(k), reference);
  }
  const float mean = reference + kiln::warp_sum(offset) * kInvCols;
  float spread = 0.0f;
#pragma unroll
  for (int k = 0; k < kLaneSlices; ++k) {
    if (k * kiln::warp_size + lane < kSlices) spread += kiln::gathered_spread(part(k), mean);
  }
  return {mean, reciprocal_sqrt(kiln::warp_sum(spread) * kInvCols + eps)};
}

KILN_DEVICE KILN_FORCEINLINE void split_pass(const Args& a, int rows, unsigned long long* slots,
                                             unsigned long long* next_slots) {
  // Per buffer (by the round's parity): each warp's sums (RMSNorm's, split_warp_sums';
  // LayerNorm's kiln::ShiftedSums), then the row's Stats.
  constexpr int kWarpFloats = kRms ? 2 : 4;
  constexpr int kStatsAt = kWarpFloats * kWarps;
  __shared__ float scratch[2][kStatsAt + 2];
  const int tid = kiln::thread_index();
  const int lane = tid % kiln::warp_size, warp = tid / kiln::warp_size;
  const unsigned long long keep = kiln::l2_evict_last(), once = kiln::l2_evict_first();
  // The grid's first whole multiple of kSlices blocks: block b then takes slice b % kSlices
  // of its rows in every round, whose weights it loads once (the rest leave). A grid of
  // fewer blocks than a row's slices traps: kiln's configs never launch one,
  // NormConfig::grid_blocks.
  const int grid = kiln::grid_size() / kSlices * kSlices;
  const kiln::SplitRounds rounds((long long)rows * kSlices, kSlices, grid);
  if (kiln::block_index() >= grid) return;  // the whole block, before any barrier
  const COLV mine((kiln::block_index() % kSlices) * kSliceVecs + tid);
  // The weight (and LayerNorm's bias) of the block's slice, in shared memory (each thread
  // its own vectors, read back by itself alone), as AffineAhead's words: ones and minus
  // zeros stand in for a missing one.
  using Ring = AffineAhead<1, kSliceVecs>;
  typename Ring::Words* const affine_words =
      static_cast<typename Ring::Words*>(kiln::dynamic_shared_memory());
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = mine + COLV(i * kThreadsPerRow);
    if (!in_row<kSliceVecs>(c)) continue;
    affine_words[i * kThreadsPerRow + tid] = Ring::words(a.weight, c, Ring::kOne);
    if constexpr (!kRms) {
      affine_words[kSliceVecs + i * kThreadsPerRow + tid] =
          Ring::words(a.bias, c, Ring::kMinusZero);
    }
  }
  // Ringed (kSplitRing > 0): the slices a block reads pass through a ring of kSplitRing
  // slices in shared memory after the weights, each thread copying its own vectors of
  // round t's slice into slot t % kSplitRing kSplitRing - 2 rounds ahead (kiln::SplitRing:
  // cp.async, a commit group a round) and reading them back there, for the sums and, a
  // round later, for the write: no second read from L2, and nothing held in registers
  // across the rounds' barriers. (A slot is written again in the round after its write
  // read it, by the same thread.) With the residual, a second ring of kSplitRing - 1
  // slices after it takes the residual's slices: the read round adds a slice's two, and
  // leaves h in x's slot for the write a round later (so the residual's slot is free for
  // the next fetch).
  Vector* const ring = reinterpret_cast<Vector*>(affine_words + (kRms ? 1 : 2) * kSliceVecs);
  using SliceRing = kiln::SplitRing<kSplitRing>;
  constexpr int kResidualSlices = SliceRing::ahead + 1;
  auto ring_at = [&](long long t, int i) -> Vector& {
    return ring[SliceRing::slot(t) * kSliceVecs + i * kThreadsPerRow + tid];
  };
  auto residual_ring_at = [&](long long t, int i) -> Vector& {
    return ring[(SliceRing::slices + int(t % kResidualSlices)) * kSliceVecs + i * kThreadsPerRow +
                tid];
  };
  // Vector i of this thread's h in round t's ring slot, in its read round: x, or with the
  // residual x + residual rounded, then left in x's slot for the write.
  auto ring_h = [&](long long t, int i) -> Vector {
    if constexpr (kResidual) {
      const Vector h = sum_of(ring_at(t, i), residual_ring_at(t, i));
      ring_at(t, i) = h;
      return h;
    } else {
      return ring_at(t, i);
    }
  };
  // This thread's vectors of h in the slice at vector `c0` of the row at `start`, those in
  // the row, loaded with L2 policy `policy` (slice_vector's constant offsets).
  auto load_h_hinted = [&](Vector(&out)[kIters], long long start, COLV c0,
                           unsigned long long policy) {
    const Elem* const x0 = In(a.x + start)[c0].ptr();
    const Elem* const r0 = kResidual ? In(a.residual + start)[c0].ptr() : nullptr;
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      if (!in_row<kSliceVecs>(c0 + COLV(i * kThreadsPerRow))) continue;
      out[i] = kiln::load_hinted(slice_vector(x0, i), policy);
      if constexpr (kResidual)
        out[i] = sum_of(out[i], kiln::load_hinted(slice_vector(r0, i), policy));
    }
  };
  auto fetch = [&](long long t) {  // round t's read slice (and the residual's) into its slot
    kiln::split_fetch<kIters>(rounds, t, [&](const kiln::SplitRound& q, int i) {
      const long long at = (q.read / kSlices) * kCols;
      const COLV c = mine + COLV(i * kThreadsPerRow);
      if (!in_row<kSliceVecs>(c)) return;
      kiln::async_copy<16>(&ring_at(t, i), In(a.x + at)[c].ptr(), 16);
      if constexpr (kResidual) {
        kiln::async_copy<16>(&residual_ring_at(t, i), In(a.residual + at)[c].ptr(), 16);
      }
    });
  };
  // Unringed: the read slice's vectors of h in registers. Without the residual they are
  // loaded a round ahead: round t + 1's once round t's row is known (after the block's
  // second barrier, where warp 0 has its slots), so that they are in flight while the
  // block writes round t's slice. (With it, h = x + residual would wait for its loads
  // there, before the write: its slices are loaded as each round starts.)
  constexpr bool kAhead = kSplitRing == 0 && !kResidual;
  Vector v[kIters];
  auto load_read = [&](const kiln::SplitRound& q) {
    if (kSplitRing > 0 || !q.reads) return;
    load_h_hinted(v, (q.read / kSlices) * kCols, COLV((int)(q.read % kSlices) * kSliceVecs + tid),
                  keep);
  };
  if constexpr (SliceRing::ringed) SliceRing::start(fetch);
  if constexpr (kAhead) load_read(rounds.round(0));
  for (long long t = 0;; ++t) {
    const kiln::SplitRound r = rounds.round(t);
    if (r.done) break;
    const long long s = r.read, o = r.written;
    const bool reads = r.reads, writes = r.writes;
    float* red = scratch[r.parity];
    const int slice = (int)(s % kSlices);
    const COLV first(slice * kSliceVecs + tid);
    const long long out_row = o / kSlices;
    const long long out_start = out_row * kCols;
    const COLV out_first((int)(o % kSlices) * kSliceVecs + tid);

    Vector h[kIters];
    if constexpr (SliceRing::ringed) {
      // A later round's slice on its way into the ring; this round's landed (this
      // thread's copies: each thread reads back only its own vectors).
      SliceRing::next(t, fetch);
    } else if (!kAhead) {
      load_read(r);
    }
    if (kSplitRing == 0 && writes) load_h_hinted(h, out_start, out_first, once);
    RowSlots got;
    const unsigned long long* row_slots = slots + out_row * kRowWords;
    if (kEarlySlots && writes && warp == 0) got.load(row_slots, lane);
    if (reads) {
      // LayerNorm's sums about each thread's own shift (Part), the slice's reduced as a
      // row's are (kiln::RowShiftedSums): each warp's about its approximate mean here, the
      // warps' after the barrier.
      Part part;
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (in_row<kSliceVecs>(c)) part.add(kSplitRing > 0 ? ring_h(t, i) : v[i], i == 0);
      }
      if constexpr (kRms) {
        kiln::split_warp_sums<true, false>(red, warp, lane, part.s.a, 0.0f);
      } else {
        const kiln::ShiftedSums sums = kiln::RowShiftedSums::lanes<kiln::warp_size>(part.s);
        if (lane == 0) {
          red[4 * warp] = sums.n;
          red[4 * warp + 1] = sums.k;
          red[4 * warp + 2] = sums.a;
          red[4 * warp + 3] = sums.b;
        }
      }
    }
    kiln::sync_threads();
    if (warp == 0) {
      if (reads) {
        if constexpr (kRms) {
          float sum, unused;
          kiln::split_block_sums<kWarps, true, false>(red, lane, sum, unused);
          if (lane == 0) kiln::store_relaxed(slots + s, kiln::split_slot_word(sum));
        } else {  // the slice's Moments (its mean and M2) from its warps' sums
          const int w = lane % kWarps;
          const kiln::ShiftedSums sums = kiln::RowShiftedSums::lanes<kWarps>(
              {red[4 * w], red[4 * w + 1], red[4 * w + 2], red[4 * w + 3]});
          const kiln::Moments m = kiln::shifted_moments(sums);
          if (lane == 0) {
            kiln::store_relaxed(slots + 2 * s, kiln::split_slot_word(m.mean));
            kiln::store_relaxed(slots + 2 * s + 1, kiln::split_slot_word(m.m2));
          }
        }
        if (lane == 0) {
          if (next_slots) {  // the same words, for the next launch
#pragma unroll
            for (int j = 0; j < kSlotWords; ++j) next_slots[kSlotWords * s + j] = 0;
          }
        }
      }
      if (writes) {
        if (!kEarlySlots) got.load(row_slots, lane);
        got.wait(row_slots, lane);
        float sum = 0.0f;  // RMSNorm: the lane's slices in order
#pragma unroll
        for (int k = 0; k < kLaneSlices; ++k) {
          if (kRms && got.has(k, lane)) sum += got.value(k, 0);
        }
        Stats st;
        if constexpr (kRms) {
          st = rms_stats(kiln::warp_sum(sum), a.eps);
        } else {
          st = gathered_stats(got, lane, a.eps);
        }
        if (lane == 0) {
          red[kStatsAt] = st.mean;
          red[kStatsAt + 1] = st.rstd;
        }
      }
    }
    kiln::sync_threads();
    if constexpr (kAhead) load_read(rounds.round(t + 1));  // (v is spent: the sums are in)
    if (writes) {
      // The weights from shared memory: every round's slices share the block's columns.
      // (Loaded from L2 at each round, with h or a few vectors ahead of the stores, they
      // made L2 move a quarter more than x, h and y: ncu had L2 78% busy, DRAM 63%.)
      const Stats st{red[kStatsAt], red[kStatsAt + 1]};
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = out_first + COLV(i * kThreadsPerRow);
        if (!in_row<kSliceVecs>(c)) continue;
        const int k = i * kThreadsPerRow + tid;
        const Vector w = __builtin_bit_cast(Vector, affine_words[k]);
        const Vector hv = kSplitRing > 0 ? ring_at(t - 1, i) : h[i];
        // h written where this thread has read the last of x and the residual there.
        if constexpr (kResidual) {
          kiln::store_hinted(reinterpret_cast<Vector*>(Out(a.h + out_start)[c].ptr()), hv, once);
        }
        const Vector y = normalized_with(
            a, true, w, kRms ? w : __builtin_bit_cast(Vector, affine_words[kSliceVecs + k]), hv,
            st);
        kiln::store_hinted(reinterpret_cast<Vector*>(Out(a.y + out_start)[c].ptr()), y, once);
      }
      if (out_first == COLV(0)) write_stats(a, ROW((int)out_row), st);
    }
  }
}

}  // namespace norms
#endif

/// x, residual, y, h: rows x kCols elements, row-major, each row starting at a multiple of
/// kVec elements from a 16-byte aligned base; weight, bias: kCols elements, 16-byte
/// aligned; mean, rstd: rows floats. Launched with kThreadsPerRow * kRowsPerBlock threads
/// and ceil(rows / kRowsPerBlock) blocks; split configs: kThreadsPerRow threads, the
/// config's grid_blocks, cooperatively, with rows x kSlices x kSlotWords zeroed slots and,
/// unless null, as many more that it zeroes for the next launch (`next_slots`), and
/// dynamic shared memory for a slice's weight (and LayerNorm's bias), and a ringed
/// config's ring (and with the residual kSplitRing - 1 slices of the residual's):
/// ((kRms ? 1 : 2) + kSplitRing + (kResidual && kSplitRing ? kSplitRing - 1 : 0)) x
/// kSliceVecs x 16 bytes; staged configs: kThreadsPerRow threads, a block a row (with
/// kStagedAhead, at most rows blocks, each taking rows block, block + grid, ...), and
/// dynamic shared memory for (kResidual ? 2 : 1) x (kIters + kStagedAhead) x
/// kThreadsPerRow vectors.
#if defined(NORM_SPLIT)
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow, kSplitMinBlocks)
#elif defined(NORM_STAGED)
// Staged: as many blocks an SM as its threads and shared memory take (kStagedBlocks).
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow, norms::kStagedBlocks)
#else
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow* kRowsPerBlock, norms::kMinBlocks)
#endif
    KILN_KERNEL_NAME(const norms::Elem* x, const norms::Elem* residual, const norms::Elem* weight,
                     const norms::Elem* bias, norms::Elem* y, norms::Elem* h, float* mean,
                     float* rstd, float eps, int rows, unsigned long long* slots,
                     unsigned long long* next_slots) {
  const norms::Args a{x, residual, weight, bias, y, h, mean, rstd, eps};
  (void)slots;  // split configs' only
  (void)next_slots;
#if defined(NORM_SPLIT)
  norms::split_pass(a, rows, slots, next_slots);
#elif defined(NORM_STAGED)
  if (kiln::block_index() >= rows) return;  // the whole block: before any barrier
  norms::staged_pass(a, rows);
#else
  if constexpr (kMultiPass) {
    if (kiln::block_index() >= rows) return;  // the whole block: before any barrier
    norms::multi_pass(a);
  } else {
    norms::one_pass(a, rows);
  }
#endif
}
