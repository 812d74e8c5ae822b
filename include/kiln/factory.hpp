#pragma once
/// Kernel factories: Factory (from a description), KernelFactory and its kernels, configs and
/// tuning policies, the tuner, the tuning database and the performance model. Includes
/// kiln/prof/environment.hpp, so that KILN_PROFILE=FILE profiles any program that includes this
/// (docs/profiling.md).

#include "factory/device_features.hpp"
#include "factory/factory.hpp"
#include "factory/features.hpp"
#include "factory/gen_json.hpp"
#include "factory/hash.hpp"
#include "factory/kernel.hpp"
#include "factory/kernel_factory.hpp"
#include "factory/model.hpp"
#include "factory/tune_policy.hpp"
#include "factory/tuner.hpp"
#include "factory/tuning_db.hpp"
#include "factory/tuning_json.hpp"
#include "factory/tuning_record.hpp"
#include "prof/environment.hpp"
