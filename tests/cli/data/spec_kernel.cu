// A kernel for the cli tests (kiln compile --spec): its dimensions, tensors, constants, code
// block, macro and entry-point name all come from "spec.hpp", the header of the kiln::gen::Spec
// that spec.json describes (kiln compile --spec hands it over as kiln's factories do).
#include "spec.hpp"

KILN_KERNEL void KILN_KERNEL_NAME(In in, Out out) {
  using namespace kiln;
  const ROW row(block_index());
  if (row >= out.size<ROW>()) return;
  for (COL col : range(COL(kCols)).split(thread_index(), block_size())) {
    *out[row][col] = ACTIVATION(*in[row][col] * kScale);
  }
}
