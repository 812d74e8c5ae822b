// out[col][row] = in[row][col]: a tiled transpose of a (ROW: rows, COL: cols) f32 matrix
// into a (COL: cols, ROW: rows) one, both row-major with run-time sizes.
//
// The host (describe_transpose() in main.cpp) generates spec.hpp per config with:
//   tensors      In (ROW: dynamic, COL: dynamic), read-only; Out (COL: dynamic, ROW: dynamic):
//                the host's own In and Out types; Tile (ROW: kTile, COL: kTile): shared
//                memory, plain, padded or swizzled
//   folds        ROW_TILE = Fold<ROW, kTile>, COL_TILE = Fold<COL, kTile>
//   indices      Blocks (ROW_TILE: dynamic, COL_TILE: dynamic): one block per tile;
//                LoadThreads (ROW: kBlockRows, COL: kTile);
//                StoreThreads (COL: kBlockRows, ROW: kTile)
//   constants    kTile, kBlockRows, kTileFloats (the shared tile's size, padding included)
//   KILN_KERNEL_NAME, e.g. transpose__4001_6000__8_padded_32 (params, then config, as JSON)
//
// Each block moves one (ROW: kTile, COL: kTile) tile through shared memory. It reads `in`
// with consecutive threads on consecutive columns and writes `out` with consecutive
// threads on consecutive rows, so both global accesses are coalesced; the shared tile is
// read down its columns, which the padding or the swizzle spreads across banks.
#include "spec.hpp"

// KILN_KERNEL is extern "C" __global__ (on CUDA and HIP alike).
KILN_KERNEL void KILN_KERNEL_NAME(In in, Out out) {
  using namespace kiln;
  KILN_SHARED float tile_data[kTileFloats];
  const Tile tile(tile_data);

  // (ROW: rows, COL: cols) -> per block (ROW: kTile, COL: kTile) at `origin`.
  const ROW rows = in.size<ROW>();
  const COL cols = in.size<COL>();
  const Blocks block(block_index(), ROW_TILE((rows.get() + kTile - 1) / kTile),
                     COL_TILE((cols.get() + kTile - 1) / kTile));
  const auto origin = block.coords();  // Coords<ROW, COL> in elements: folds are unfolded

  // Load: the block as (ROW: kBlockRows, COL: kTile); each thread takes every
  // kBlockRows-th row of the tile.
  const LoadThreads load(thread_index());
  for (ROW r : range(ROW(kTile)).split(load.get<ROW>().get(), kBlockRows)) {
    const auto at = r + load.get<COL>();
    if (in[origin + at].in_bounds()) *tile[at] = *in[origin + at];
  }
  sync_threads();

  // Store: the same block as (COL: kBlockRows, ROW: kTile). The same coordinates index the
  // tile and `out`: the transpose is in the two tensors' layouts, not in the index code.
  const StoreThreads store(thread_index());
  for (COL c : range(COL(kTile)).split(store.get<COL>().get(), kBlockRows)) {
    const auto at = c + store.get<ROW>();
    if (out[origin + at].in_bounds()) *out[origin + at] = *tile[at];
  }
}
