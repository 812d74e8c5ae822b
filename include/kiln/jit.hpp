#pragma once
/// kiln's run-time compilation: sources, options, the NVRTC and hipRTC backends, and the
/// memory + disk kernel cache.

#include "jit/compiler.hpp"
#include "jit/kernel_cache.hpp"
#include "jit/options.hpp"
#include "jit/program.hpp"
#include "jit/sources.hpp"
