#pragma once
/// The umbrella that kernel sources include: typed dimensions and device helpers (threads,
/// warps, blocks, shared-memory carving, asynchronous copies). Includes no standard library
/// or vendor header. Tensor-core fragments and ldmatrix need the 16-bit float types, so
/// kernels that use them include kiln/device/ldmatrix.hpp (or mma.hpp) themselves.

#include "detail/portability.hpp"
#include "device/async_copy.hpp"
#include "device/block.hpp"
#include "device/grid_dependency.hpp"
#include "device/math.hpp"
#include "device/shared_memory.hpp"
#include "device/thread.hpp"
#include "device/warp.hpp"
#include "dims.hpp"
