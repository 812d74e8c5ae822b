#pragma once
/// The umbrella that kernel sources include: typed dimensions and device helpers.
/// Includes no standard library or vendor header.

#include "detail/portability.hpp"
#include "device/thread.hpp"
#include "device/warp.hpp"
#include "dims.hpp"
