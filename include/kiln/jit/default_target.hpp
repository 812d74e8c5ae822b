#pragma once
/// The compile target of the current device, for Options with no target.

#include <string>

#include "../error.hpp"
#include "../rt/device.hpp"
#include "options.hpp"

namespace kiln::jit {

/// The compile target ("sm_90", "gfx942") of the device current in this thread (device 0
/// when no context is current). Throws kiln::Error when there is no driver or device, or
/// the device is one kiln does not compile for, saying to set Options::target.
inline std::string current_device_target() {
  if (rt::device_count() == 0) {
    const std::string why =
        rt::driver_available() ? std::string("the driver reports no device") : rt::detail::driver_state().error;
    throw Error("kiln: no compile target given and no GPU to take it from (" + why +
                "); set Options::target (sm_80, sm_86, sm_89, sm_90, sm_90a or gfx942)");
  }
  std::string target = rt::Device::current().arch();
  const auto& known = supported_targets();
  if (std::find(known.begin(), known.end(), target) == known.end()) {
    throw Error("kiln: the current device is " + target +
                ", which kiln does not compile for; set Options::target to a target the device runs");
  }
  return target;
}

}  // namespace kiln::jit
