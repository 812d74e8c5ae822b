#pragma once
/// kiln's driver layer: devices, memory, streams, events, modules and launches, over the
/// CUDA driver API or the HIP module API, both loaded at run time; and kiln::kernel, the
/// one call from a source and its Spec to a launchable kernel.

#include "rt/default_target.hpp"
#include "rt/device.hpp"
#include "rt/driver.hpp"
#include "rt/kernel.hpp"
#include "rt/launch.hpp"
#include "rt/memory.hpp"
#include "rt/module.hpp"
#include "rt/stream.hpp"
#include "rt/tensor_map.hpp"
