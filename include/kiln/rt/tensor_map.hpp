#pragma once
/// TMA tensor maps (sm_90): the description of a global tensor and of the box one TMA copy
/// moves, which kernels receive by value as a `const __grid_constant__
/// kiln::TmaDescriptor` parameter (kiln/device/tma.hpp).
///
///   // A (M: m, K: k) f16, row-major; boxes of (M:128, K:64) with the 128-byte swizzle
///   kiln::rt::TensorMap map = kiln::rt::make_tensor_map(
///       kiln::gen::DType::f16, a.address(),
///       {{"M", m, k, 128}, {"K", k, 1, 64}}, kiln::rt::TmaSwizzle::b128, device);
///   kernel.launch(config, map, ...);
///
/// Dimensions are listed as a typed tensor lists them: outermost first, the last one
/// contiguous (stride 1), strides in elements. Every rule of the hardware is checked
/// first, and a breach throws kiln::Error naming the dimension at fault and what would
/// work; the driver's own refusal throws DriverError.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../gen/dtype.hpp"
#include "device.hpp"
#include "driver.hpp"

namespace kiln::rt {

/// An encoded tensor map: 128 opaque bytes, 64-byte aligned (CUtensorMap; the kernel's
/// kiln::TmaDescriptor). Pass it to a launch by value.
struct alignas(64) TensorMap {
  std::byte bytes[128]{};
};
static_assert(sizeof(TensorMap) == 128, "a tensor map is 128 bytes");

/// How a box is stored in shared memory: plainly, or with its rows of 32, 64 or 128 bytes
/// swizzled (kiln::TmaSwizzle<T, Bytes> in device code).
enum class TmaSwizzle { none = 0, b32 = 32, b64 = 64, b128 = 128 };

/// One dimension of a tensor map: its name (for messages), size, stride in elements and
/// the box's extent along it.
struct TensorMapDim {
  std::string name;
  std::int64_t size = 0;
  std::int64_t stride = 0;
  std::int64_t box = 0;
};

namespace detail {
inline TensorMapElement tensor_map_element(gen::DType t) {
  switch (t) {
    case gen::DType::f16:
      return TensorMapElement::f16;
    case gen::DType::bf16:
      return TensorMapElement::bf16;
    case gen::DType::f32:
      return TensorMapElement::f32;
    case gen::DType::i8:
    case gen::DType::u8:
      return TensorMapElement::u8;
    case gen::DType::i16:
    case gen::DType::u16:
      return TensorMapElement::u16;
    case gen::DType::i32:
    case gen::DType::u32:
      return TensorMapElement::u32;
    default:
      return TensorMapElement::u64;
  }
}
}  // namespace detail

/// The tensor map of the tensor of `dims` (outermost first) of `dtype` elements at device
/// address `address`, copied in boxes of the dims' `box` extents, stored with `swizzle`.
/// Needs a CUDA device of sm_90 or later and a driver with cuTensorMapEncodeTiled.
inline TensorMap make_tensor_map(gen::DType dtype, std::uint64_t address,
                                 const std::vector<TensorMapDim>& dims, TmaSwizzle swizzle,
                                 const Device& device = Device::current()) {
  const std::string what = "kiln: tensor map: ";
  const DeviceProperties& p = device.properties();
  if (p.platform != Platform::cuda || p.compute_major < 9) {
    throw Error(what + "TMA needs an NVIDIA GPU of sm_90 or later; device " +
                std::to_string(device.ordinal()) + " is " + p.arch);
  }
  const DriverApi& api = driver();
  if (!api.tensor_map_encode_tiled) {
    throw Error(what + "this CUDA driver has no cuTensorMapEncodeTiled (CUDA 12 and later)");
  }
  if (dims.empty() || dims.size() > 5) {
    throw Error(what + "a tensor map has 1 to 5 dimensions, not " + std::to_string(dims.size()));
  }
  const std::int64_t element = gen::size_of(dtype);
  if (address % 16 != 0) {
    throw Error(what + "the tensor's address must be 16-byte aligned (it is " +
                std::to_string(address % 16) + " bytes past a multiple of 16)");
  }
  const TensorMapDim& inner = dims.back();
  if (inner.stride != 1) {
    throw Error(what + "the last dimension (" + inner.name +
                ") must be contiguous (stride 1), not of stride " + std::to_string(inner.stride) +
                "; list the dimensions outermost first");
  }
  const int swizzle_bytes = int(swizzle);
  for (const TensorMapDim& d : dims) {
    const std::string dim = "dimension " + d.name + ": ";
    if (d.size < 1 || d.size > (std::int64_t(1) << 32)) {
      throw Error(what + dim + "the size must be 1 to 2^32, not " + std::to_string(d.size));
    }
    if (d.box < 1 || d.box > 256) {
      throw Error(what + dim + "a box extent must be 1 to 256, not " + std::to_string(d.box));
    }
    if (&d != &inner) {
      const std::int64_t bytes = d.stride * element;
      if (d.stride < 1 || bytes % 16 != 0 || bytes >= (std::int64_t(1) << 40)) {
        throw Error(what + dim + "its stride of " + std::to_string(d.stride) + " elements (" +
                    std::to_string(bytes) +
                    " bytes) must be a positive multiple of 16 bytes below 2^40; pad the rows "
                    "to a multiple of " +
                    std::to_string(16 / std::max<std::int64_t>(1, element)) + " elements");
      }
    }
  }
  const std::int64_t inner_bytes = inner.box * element;
  if (inner_bytes % 16 != 0) {
    throw Error(what + "dimension " + inner.name + ": the box's contiguous extent of " +
                std::to_string(inner.box) + " elements (" + std::to_string(inner_bytes) +
                " bytes) must be a multiple of 16 bytes");
  }
  if (swizzle != TmaSwizzle::none && inner_bytes > swizzle_bytes) {
    throw Error(what + "dimension " + inner.name + ": with a " + std::to_string(swizzle_bytes) +
                "-byte swizzle the box's contiguous extent is at most " +
                std::to_string(swizzle_bytes) + " bytes, not " + std::to_string(inner_bytes));
  }
  // The driver numbers dimensions innermost first.
  const unsigned rank = unsigned(dims.size());
  std::uint64_t sizes[5] = {}, strides[5] = {};
  unsigned box[5] = {};
  for (unsigned i = 0; i < rank; ++i) {
    const TensorMapDim& d = dims[rank - 1 - i];
    sizes[i] = std::uint64_t(d.size);
    box[i] = unsigned(d.box);
    if (i > 0) strides[i - 1] = std::uint64_t(d.stride * element);
  }
  TensorMap map;
  ContextGuard g(device.context());
  api.check(api.tensor_map_encode_tiled(map.bytes, detail::tensor_map_element(dtype), rank, address,
                                        sizes, strides, box, swizzle_bytes),
            "cuTensorMapEncodeTiled", "encoding a tensor map");
  return map;
}

}  // namespace kiln::rt
