#pragma once
/// The compile target of the current device, and jit's default target: including this
/// header (kiln/rt.hpp and kiln/kiln.hpp do) makes an Options with no target compile for
/// the device current in the calling thread.

#include <algorithm>
#include <string>

#include "../error.hpp"
#include "../jit/options.hpp"
#include "../jit/target_resolver.hpp"
#include "device.hpp"

namespace kiln::rt {

/// The compile target ("sm_90", "gfx942") of the device current in this thread (device 0
/// when no context is current). Throws kiln::Error when there is no driver or device, or
/// the device is one kiln does not compile for, saying to set Options::target.
inline std::string current_device_target() {
  if (device_count() == 0) {
    const std::string why = driver_available() ? std::string("the driver reports no device")
                                               : detail::driver_state().error;
    throw Error("kiln: no compile target given and no GPU to take it from (" + why +
                "); set Options::target (sm_80, sm_86, sm_89, sm_90, sm_90a or gfx942)");
  }
  std::string target = Device::current().arch();
  const auto& known = jit::supported_targets();
  if (std::find(known.begin(), known.end(), target) == known.end()) {
    throw Error("kiln: the current device is " + target +
                ", which kiln does not compile for; set Options::target to a target the "
                "device runs");
  }
  return target;
}

namespace detail {
/// Installs current_device_target() as jit's default target when the program starts.
inline const bool current_device_target_installed =
    (jit::set_default_target_resolver(&current_device_target), true);
}  // namespace detail

}  // namespace kiln::rt
