#pragma once
/// Swizzles: a permutation of element offsets that spreads a shared-memory tile's
/// columns across banks. A swizzled tensor is indexed exactly like a plain one; only
/// the final offset changes.

#include "../detail/portability.hpp"

namespace kiln {

/// The identity: offsets are used as they are.
struct NoSwizzle {
  static constexpr bool is_identity = true;
  /// Runs of this many consecutive elements stay consecutive.
  static constexpr int contiguous = 1 << 30;
  KILN_HOST_DEVICE static constexpr int apply(int offset) { return offset; }
};

/// XORs the Bits bits of an element offset that start at bit Base + Shift into the
/// Bits bits that start at bit Base.
///
/// Example: a (ROW:8, COL8:8) tile of 16-byte chunks of halves (8 halves each) has
/// every row's chunk c at offset row*64 + c*8. Swizzle<3, 3, 3> moves chunk c of row r
/// to chunk c ^ r, so a column of chunks read by 8 threads hits 8 different banks.
template <int Bits, int Base, int Shift>
struct Swizzle {
  static_assert(Bits >= 0 && Base >= 0 && Shift >= Bits,
                "Swizzle<Bits, Base, Shift> needs Shift >= Bits so source and target bits "
                "do not overlap");
  static constexpr bool is_identity = Bits == 0;
  static constexpr int contiguous = 1 << Base;
  static constexpr int mask = ((1 << Bits) - 1) << (Base + Shift);
  KILN_HOST_DEVICE static constexpr int apply(int offset) {
    return offset ^ ((offset & mask) >> Shift);
  }
};

}  // namespace kiln
