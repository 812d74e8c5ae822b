#pragma once
/// Shared memory as typed tiles: one dynamic shared-memory buffer carved into tensors
/// whose footprints come from their types (Tensor::storage_size), and rings of tiles for
/// multi-stage pipelines.
///
///   KILN_DIM(I); KILN_DIM(K); KILN_DIM(J);
///   using ATile = kiln::Tensor<float, kiln::Extent<I, 64>, kiln::Extent<K, 32>>;
///   using BTile = kiln::Tensor<float, kiln::Extent<K, 32>, kiln::Extent<J, 64>>;
///   using ARing = kiln::Ring<ATile, 3>;          // (RING_STAGE: 3 wrapping) x (I:64, K:32)
///   // host: the launch's dynamic shared memory
///   int bytes = kiln::shared_bytes<ARing, BTile>();
///   // device
///   kiln::SharedCarver smem(kiln::dynamic_shared_memory());
///   ARing a = smem.take<ARing>();                // 3 x (I:64, K:32), each 16-byte aligned
///   BTile b = smem.take<BTile>();                // (K:32, J:64)
///   ATile next = a[kiln::RING_STAGE(k + 2)];          // stage (k + 2) mod 3
///   ATile same = a.stage(kiln::ring_reduce(at + 2, 3));  // at kept in [0, 3): no modulo
///
/// Tiles are carved in the order taken, each at the next multiple of Align bytes (16 by
/// default) from the buffer's start; shared_bytes() walks the same arithmetic, so the
/// host and the kernel agree on the size.

#include "../dims/dim.hpp"
#include "../dims/tensor.hpp"

namespace kiln {

/// The stage of a multi-stage pipeline; a Ring indexes its tiles by it, modulo the
/// number of stages. Named RING_STAGE so that it does not meet a user's own STAGE
/// dimension under `using namespace kiln`.
KILN_DIM(RING_STAGE);

namespace detail {

KILN_HOST_DEVICE constexpr int align_up(int bytes, int align) {
  return (bytes + align - 1) / align * align;
}

// The footprint in bytes of a tile type (a Tensor or a Ring of them).
template <class Tile>
KILN_HOST_DEVICE constexpr int tile_bytes() {
  return Tile::storage_size() * int(sizeof(typename Tile::element_type));
}

// The byte offset at which a tile of `bytes` bytes goes, the carve having reached `end`.
KILN_HOST_DEVICE constexpr int carve_start(int end, int align) {
  return align_up(end, align);
}

}  // namespace detail

/// Stages copies of one tile type, indexed by a RING_STAGE value modulo Stages: ring[RING_STAGE(k)]
/// is the tile of stage k mod Stages, so a pipeline writes stage k + Stages - 1 while it
/// reads stage k and the wrap is in the type (Module<Stage, Stages>), not in the loop.
/// Each stage starts at a multiple of 16 bytes from the ring's start, so 16-byte copies
/// into any stage stay aligned.
///
///   Ring<(I:64, K:32) f32, 3>: 3 x 2048 floats; ring[RING_STAGE(4)] is stage 1
///
/// Parameters:
///   Tile    a Tensor type with static sizes and strides (typically in shared memory)
///   Stages  the number of stages, > 0
///   Stage   the dimension that counts stages (kiln::RING_STAGE unless given)
template <class Tile, int Stages, class Stage = RING_STAGE>
class Ring {
  static_assert(Stages > 0, "a ring holds at least one stage");
  static_assert(is_dim<Stage>, "a ring's stages are counted by a typed dimension");

 public:
  using tile_type = Tile;
  using element_type = typename Tile::element_type;
  using stage_type = Module<Stage, Stages>;
  static constexpr int stages = Stages;
  /// Elements from one stage's start to the next (the tile's footprint, rounded up to 16
  /// bytes).
  static constexpr int stage_stride =
      detail::align_up(detail::tile_bytes<Tile>(), 16) / int(sizeof(element_type));
  static_assert(stage_stride * int(sizeof(element_type)) % 16 == 0,
                "a ring's stage stride must be a whole number of elements per 16 bytes");

  KILN_HOST_DEVICE constexpr explicit Ring(element_type* data) : data_(data) {}

  /// Elements the whole ring spans (what SharedCarver and shared_bytes carve).
  KILN_HOST_DEVICE static constexpr int storage_size() { return stage_stride * Stages; }

  /// The tile of stage `s` modulo Stages (s: any fold of Stage; negative values wrap too).
  template <class D>
  KILN_HOST_DEVICE constexpr Tile operator[](D s) const {
    static_assert(is_dim<D> && same_dimension<D, Stage>,
                  "a ring is indexed by a value of its stage dimension");
    return Tile(data_ + dim_cast<stage_type>(s).get() * stage_stride);
  }

  /// The tile of stage `s` where the caller keeps s in [0, Stages) (ring_reduce): no
  /// modulo on the way, where operator[] reduces its stage again.
  KILN_HOST_DEVICE constexpr Tile stage(int s) const { return Tile(data_ + s * stage_stride); }

  KILN_HOST_DEVICE constexpr element_type* data() const { return data_; }

 private:
  element_type* data_;
};

/// The stage of position `pos` in a ring of `stages` stages, for 0 <= pos < 2 * stages: a
/// pipeline that keeps its own position reduced (below `stages`, moved on by ring_advance)
/// and names the stages up to `stages` - 1 past it. One unsigned minimum of pos and
/// pos - stages (which wraps to a larger unsigned value where pos < stages), where a modulo
/// is a division for a ring whose stages are not a power of 2.
///
///   int at = 0;                                    // the pipeline's position, reduced
///   ATile t = ring.stage(kiln::ring_reduce(at + 2, 3));
///   at = kiln::ring_advance(at, 1, 3);
KILN_HOST_DEVICE constexpr int ring_reduce(int pos, int stages) {
  const unsigned u = unsigned(pos);
  const unsigned wrapped = u - unsigned(stages);
  return int(u < wrapped ? u : wrapped);
}

/// Reduced position `at` of a ring of `stages` stages moved on by `by`
/// (-stages < by <= stages), reduced again.
KILN_HOST_DEVICE constexpr int ring_advance(int at, int by, int stages) {
  return ring_reduce(at + by + (by < 0 ? stages : 0), stages);
}

/// Bytes of a buffer that holds Tiles... carved in order by SharedCarver::take with the
/// same alignment (`align` bytes, 16 by default): the dynamic shared memory to launch with.
template <class... Tiles>
KILN_HOST_DEVICE constexpr int shared_bytes(int align = 16) {
  int end = 0;
  ((end = detail::carve_start(end, align) + detail::tile_bytes<Tiles>()), ...);
  return end;
}

/// Hands out consecutive, aligned typed tiles of one buffer (dynamic shared memory, or
/// any buffer aligned to the largest Align used).
class SharedCarver {
 public:
  KILN_HOST_DEVICE constexpr explicit SharedCarver(void* base)
      : base_(static_cast<unsigned char*>(base)) {}

  /// The next tile of type Tile (a Tensor with static sizes and strides, or a Ring), at
  /// the next multiple of Align bytes.
  template <class Tile, int Align = 16>
  KILN_HOST_DEVICE Tile take() {
    static_assert(Align > 0 && (Align & (Align - 1)) == 0, "alignment: a power of 2");
    using T = typename Tile::element_type;
    static_assert(Align % alignof(T) == 0 || alignof(T) % Align == 0,
                  "alignment: a multiple of the element type's");
    const int start = detail::carve_start(end_, Align);
    end_ = start + detail::tile_bytes<Tile>();
    return Tile(reinterpret_cast<T*>(base_ + start));
  }

  /// Bytes carved so far (including alignment padding).
  KILN_HOST_DEVICE constexpr int used_bytes() const { return end_; }

 private:
  unsigned char* base_;
  int end_ = 0;
};

/// *p in one load of its whole width (T of 4, 8 or 16 bytes, p aligned to them): a
/// vector of f16 or bf16 read back from shared memory through its elements takes one
/// narrow load each.
template <class T>
KILN_HOST_DEVICE KILN_FORCEINLINE T load_whole(const T* p) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8 || sizeof(T) == 16,
                "load_whole reads 4, 8 or 16 bytes");
  struct alignas(sizeof(T)) Words {
    unsigned w[sizeof(T) / 4];
  };
  return __builtin_bit_cast(T, *reinterpret_cast<const Words*>(p));
}

#if KILN_GPU_COMPILER
/// The block's dynamic shared memory (the launch's shared-memory bytes), 16-byte aligned.
KILN_DEVICE KILN_FORCEINLINE void* dynamic_shared_memory() {
  extern KILN_SHARED __attribute__((aligned(16))) unsigned char kiln_dynamic_shared[];
  return kiln_dynamic_shared;
}
#endif

}  // namespace kiln
