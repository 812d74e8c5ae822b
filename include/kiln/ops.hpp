#pragma once
/// The kernels kiln ships (sources in kernels/), each a kernel factory: softmax.
/// Includes kiln/factory.hpp, so KILN_PROFILE=FILE works here too (docs/profiling.md).

#include "factory.hpp"
#include "ops/softmax.hpp"
