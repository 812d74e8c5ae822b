#pragma once
/// The kernels kiln ships (sources in kernels/), each a kernel factory: softmax, LayerNorm and
/// RMSNorm, grouped convolution (kiln/ops/gemm.hpp, the GEMM, is included on its own).
/// Includes kiln/factory.hpp, so KILN_PROFILE=FILE works here too (docs/profiling.md).

#include "factory.hpp"
#include "ops/conv.hpp"
#include "ops/norm.hpp"
#include "ops/softmax.hpp"
