// The partial sums of a norm's dweight (sum over rows of dy · x̂) and dbias (sum of dy)
// over groups of rows, for rows too long for the backward kernel to keep its columns' sums
// in registers (multi pass): the backward kernel writes dx alone, and this one reads h and
// dy again. Block (x, y) takes kThreadsPerRow x kVec columns of row group y (rows
// y * rows_per_group up to the next group's first); each thread sums its kVec columns over
// the group's rows in registers (kUnroll rows' loads in flight at a time) and writes them
// to partial row y; kernels/column_sum.cu adds the groups' rows in order, so every run
// gives the same bits. Launched over one row group (few rows: 64 x 1M) without `partial`,
// it writes its sums, the whole ones, straight to dweight and dbias, and no column sum
// runs. With
// x̂ = (h - mean) · rstd (RMSNorm: h · rstd).
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

/// dy, h: rows x kCols elements, row-major, 16-byte aligned rows of whole vectors; mean
/// (LayerNorm), rstd: rows floats; partial: (kWeightGrad + kBiasGrad) x groups x kCols
/// floats, groups = gridDim.y; or, over one group, null: then dweight and dbias (kCols
/// elements each, 16-byte aligned, where asked for) get the sums. Launched with
/// kThreadsPerRow threads and (ceil(kCols / kVec / kThreadsPerRow), groups) blocks.
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow, 1)
    KILN_KERNEL_NAME(const norms::Elem* dy, const norms::Elem* h, const float* mean,
                     const float* rstd, float* partial, norms::Elem* dweight, norms::Elem* dbias,
                     int rows, int rows_per_group) {
  using namespace norms;
  const COLV c(kiln::block_index_x() * kThreadsPerRow + kiln::thread_index_x());
  if (!(c < COLV(kVecs))) return;  // (no barrier in this kernel)
  const int group = kiln::block_index_y();
  const int groups = kiln::grid_size_y();
  const int first = group * rows_per_group;
  const int last = rows - first < rows_per_group ? rows : first + rows_per_group;
  float dw[kVec], db[kVec];
#pragma unroll
  for (int j = 0; j < kVec; ++j) dw[j] = db[j] = 0.0f;
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
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    if constexpr (kWeightGrad) row[j] = dw[j];
    if constexpr (kBiasGrad) row[(long long)kWeightGrad * groups * kCols + j] = db[j];
  }
}
