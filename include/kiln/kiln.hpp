#pragma once
/// The umbrella for host code: every public part of kiln. Typed dimensions, the header
/// generator, run-time compilation and caching, the driver layer, the profiler (with
/// KILN_PROFILE=FILE, docs/profiling.md), kernel factories and the kernels kiln ships.
/// Kernel sources include kiln/device.hpp instead.
///
/// fmt is used header-only (as kiln::kiln's CMake target has it); defining it here lets a
/// program that includes this umbrella before any fmt header build with a plain
/// `g++ -std=c++20 -I<kiln>/include -I<cuda>/include app.cpp` (README, "Use it without CMake").

#ifndef FMT_HEADER_ONLY
#define FMT_HEADER_ONLY 1
#endif

#include "dims.hpp"
#include "factory.hpp"
#include "gen.hpp"
#include "jit.hpp"
#include "ops.hpp"
#include "prof.hpp"
#include "rt.hpp"
