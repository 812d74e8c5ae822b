#pragma once
/// Typed dimensions, coordinates, layouts, tensors, compound indices and ranges.
/// Self-contained: compiles as host C++, under NVRTC and in HIP mode.

#include "dims/algorithms.hpp"
#include "dims/compound_index.hpp"
#include "dims/coords.hpp"
#include "dims/dim.hpp"
#include "dims/layout.hpp"
#include "dims/range.hpp"
#include "dims/swizzle.hpp"
#include "dims/tensor.hpp"
#include "dims/vector.hpp"
