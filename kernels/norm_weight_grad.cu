// The partial sums of a norm's dweight (sum over rows of dy · x̂) and dbias (sum of dy)
// over groups of rows, for rows too long for the backward kernel to keep its columns' sums
// in registers (multi pass): the backward kernel writes dx alone, and this one reads h and
// dy again. Block (x, y) takes kThreadsPerRow x kVec columns of row group y (rows
// y * rows_per_group up to the next group's first); each thread sums its kVec columns over
// the group's rows in registers (kUnroll rows' loads in flight at a time) and writes them
// to partial row y; kernels/column_sum.cu adds the groups' rows in order, so every run
// gives the same bits. Launched over one row group (few rows: 64 x 1M) without `partial`,
// it writes its sums, the whole ones, straight to dweight and dbias, and no column sum
// runs. With `row_sums` it also leaves each warp's part of the two sums every row of dx
// needs, so that the backward kernel's multi pass reads h and dy once instead of twice.
// With x̂ = (h - mean) · rstd (RMSNorm: h · rstd).
//
// The host (include/kiln/ops/norm.hpp) generates spec.hpp as for norm_backward.cu:
//   dimensions  COL with COLV = Fold<COL, kVec>
//   tensors     In: one row, (COL: kCols), f16 / bf16 / f32 storage
//   constants   kCols, kVec, kThreadsPerRow (threads a block), kRms, kWeightGrad,
//               kBiasGrad, kUnroll
//   KILN_KERNEL_NAME, e.g. norm_weight_grad__layer__f16__cols65536__dw_db
#include "kiln/device/half.hpp"
#include "kiln/device/thread.hpp"
#include "spec.hpp"

namespace norms {

using Elem = Out::element_type;
constexpr int kVecs = kCols / kVec;  // vectors per row
static_assert(kCols % kVec == 0, "the vector width divides the row");
static_assert(kWeightGrad != 0 || kBiasGrad != 0, "a sum to take");
static_assert(kRms == 0 || kBiasGrad == 0, "RMSNorm has no bias");

using kiln::to_float;
using Vector = kiln::Vec<Elem, kVec>;

}  // namespace norms

/// dy, h: rows x kCols elements, row-major, 16-byte aligned rows of whole vectors; weight:
/// kCols elements (or null: 1), read only for `row_sums`; mean (LayerNorm), rstd: rows
/// floats; partial: (kWeightGrad + kBiasGrad) x groups x kCols floats, groups =
/// gridDim.y; or, over one group, null: then dweight and dbias (kCols elements each,
/// 16-byte aligned, where asked for) get the sums. row_sums (or null): each warp's part of
/// each row's sum(g) and sum(g · (h - mean)), g = dy · weight, the two sums the backward
/// kernel's multi pass would take in its first pass over the row: rows x parts pairs of
/// floats, parts = gridDim.x x the warps of a block, part = blockIdx.x x those warps + the
/// warp. Launched with kThreadsPerRow threads and (ceil(kCols / kVec / kThreadsPerRow),
/// groups) blocks.
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow, 1)
    KILN_KERNEL_NAME(const norms::Elem* dy, const norms::Elem* h, const norms::Elem* weight,
                     const float* mean, const float* rstd, float* partial, norms::Elem* dweight,
                     norms::Elem* dbias, float* row_sums, int rows, int rows_per_group) {
  using namespace norms;
  static_assert(kThreadsPerRow % kiln::warp_size == 0, "a block is whole warps");
  constexpr int kWarps = kThreadsPerRow / kiln::warp_size;
  const COLV c(kiln::block_index_x() * kThreadsPerRow + kiln::thread_index_x());
  const bool inside = c < COLV(kVecs);
  // (No barrier in this kernel; the row sums' shuffles take every lane of a warp.)
  if (!inside && row_sums == nullptr) return;
  const int group = kiln::block_index_y();
  const int groups = kiln::grid_size_y();
  const int first = group * rows_per_group;
  const int last = rows - first < rows_per_group ? rows : first + rows_per_group;
  const long long parts = (long long)kiln::grid_size_x() * kWarps;
  const long long part = (long long)kiln::block_index_x() * kWarps + kiln::warp_index();
  Vector w;
  if (row_sums != nullptr && weight != nullptr && inside) {
    w = kiln::load_vector<kVec>(In(weight)[c]);
  }
  float dw[kVec], db[kVec];
#pragma unroll
  for (int j = 0; j < kVec; ++j) dw[j] = db[j] = 0.0f;
  if (row_sums == nullptr) {
#pragma unroll kUnroll
    for (int r = first; r < last; ++r) {
      const long long start = (long long)r * kCols;
      const Vector hv = kiln::load_vector<kVec>(In(h + start)[c]);
      const Vector gv = kiln::load_vector<kVec>(In(dy + start)[c]);
      const float m = kRms ? 0.0f : mean[r];
      const float s = rstd[r];
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        const float g = to_float(gv[j]);
        if constexpr (kWeightGrad) dw[j] += g * ((to_float(hv[j]) - m) * s);
        if constexpr (kBiasGrad) db[j] += g;
      }
    }
  } else {
    // kUnroll rows at a time, their loads first (a loop of shuffles, which clang's HIP
    // mode will not unroll by pragma).
    for (int r0 = first; r0 < last; r0 += kUnroll) {
      Vector hv[kUnroll], gv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const long long start = (long long)(r0 + u) * kCols;
        if (inside && r0 + u < last) {
          hv[u] = kiln::load_vector<kVec>(In(h + start)[c]);
          gv[u] = kiln::load_vector<kVec>(In(dy + start)[c]);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int r = r0 + u;
        if (r >= last) break;  // (the same for every thread)
        float sum_g = 0.0f, sum_gc = 0.0f;
        if (inside) {
          const float m = kRms ? 0.0f : mean[r];
          const float s = rstd[r];
#pragma unroll
          for (int j = 0; j < kVec; ++j) {
            const float g = to_float(gv[u][j]);
            const float centered = to_float(hv[u][j]) - m;
            if constexpr (kWeightGrad) dw[j] += g * (centered * s);
            if constexpr (kBiasGrad) db[j] += g;
            const float gw = weight != nullptr ? g * to_float(w[j]) : g;
            sum_g += gw;
            sum_gc += gw * centered;
          }
        }
        sum_g = kiln::warp_sum(sum_g);
        sum_gc = kiln::warp_sum(sum_gc);
        if (kiln::lane_index() == 0) {
          float* out = row_sums + ((long long)r * parts + part) * 2;
          out[0] = sum_g;
          out[1] = sum_gc;
        }
      }
    }
  }
  if (!inside) return;
  if (partial == nullptr) {  // one group: the whole sums
    if constexpr (kWeightGrad) {
      Vector v;
#pragma unroll
      for (int j = 0; j < kVec; ++j) kiln::from_float(dw[j], v[j]);
      kiln::store_vector<kVec>(Out(dweight)[c], v);
    }
    if constexpr (kBiasGrad) {
      Vector v;
#pragma unroll
      for (int j = 0; j < kVec; ++j) kiln::from_float(db[j], v[j]);
      kiln::store_vector<kVec>(Out(dbias)[c], v);
    }
    return;
  }
  float* row = partial + (long long)group * kCols + (long long)c.get() * kVec;
  if constexpr (kWeightGrad) kiln::store_run<kVec>(row, dw);
  if constexpr (kBiasGrad) kiln::store_run<kVec>(row + (long long)kWeightGrad * groups * kCols, db);
}
