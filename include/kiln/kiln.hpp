#pragma once
/// The umbrella for host code: typed dimensions, the header generator, run-time
/// compilation and caching, the driver layer and the profiler.

#include "dims.hpp"
#include "gen.hpp"
#include "jit.hpp"
#include "prof.hpp"
#include "rt.hpp"
