#pragma once
/// kiln's profiler: sessions (or KILN_PROFILE=FILE), reports, traces, the roofline, the
/// hardware registry and the benchmark harness.

#include "prof/bench.hpp"
#include "prof/counters.hpp"
#include "prof/environment.hpp"
#include "prof/profiler.hpp"
#include "prof/record.hpp"
#include "prof/registry.hpp"
#include "prof/report.hpp"
#include "prof/roofline.hpp"
#include "prof/stats.hpp"
#include "prof/trace.hpp"
