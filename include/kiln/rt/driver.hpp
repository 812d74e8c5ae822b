#pragma once
/// The process's GPU driver: CUDA where libcuda is present, else HIP (or as
/// KILN_PLATFORM=cuda|hip says), loaded once on first use.

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "../detail/environment.hpp"
#include "cuda_driver.hpp"
#include "driver_api.hpp"
// The HIP backend is built where KILN_ENABLE_HIP is defined (CMake: -DKILN_ENABLE_HIP=ON): the HIP
// headers clash with the CUDA runtime's vector types (which CUPTI's headers pull in), so a
// translation unit takes one or the other.
#if defined(KILN_ENABLE_HIP)
#include "hip_driver.hpp"
#endif

namespace kiln::rt {

namespace detail {
struct DriverState {
  std::unique_ptr<DriverApi> api;
  std::string error;  // why there is no driver
};

inline DriverState load_driver() {
  DriverState s;
  const std::string platform =
      kiln::detail::normalized(kiln::detail::env_setting("KILN_PLATFORM").value_or(""));
  if (!platform.empty() && platform != "cuda" && platform != "hip") {
    s.error = "KILN_PLATFORM=" + platform + " is not a platform; set it to cuda or hip";
    return s;
  }
  std::string errors;
  if (platform.empty() || platform == "cuda") {
    try {
      s.api = load_cuda_driver();
      return s;
    } catch (const Error& e) {
      errors += e.what();
    }
  }
#if defined(KILN_ENABLE_HIP)
  if (platform.empty() || platform == "hip") {
    try {
      s.api = load_hip_driver();
      return s;
    } catch (const Error& e) {
      errors += (errors.empty() ? "" : "\n") + std::string(e.what());
    }
  }
#else
  if (platform == "hip")
    errors += "this program was built without KILN_ENABLE_HIP, so kiln cannot use HIP";
#endif
  s.error = errors;
  return s;
}

inline DriverState& driver_state() {
  static DriverState state = load_driver();
  return state;
}
}  // namespace detail

/// The loaded driver. Throws NoDeviceError saying why there is none.
inline const DriverApi& driver() {
  auto& s = detail::driver_state();
  if (!s.api) throw NoDeviceError("kiln: no GPU driver could be used:\n" + s.error);
  return *s.api;
}

/// Whether a driver is loaded (false on a machine with no GPU driver).
inline bool driver_available() {
  return detail::driver_state().api != nullptr;
}

/// The number of devices; 0 where there is no driver or no device. Never throws.
inline int device_count() {
  if (!driver_available()) return 0;
  int n = 0;
  if (driver().device_count(&n) != 0) return 0;
  return n;
}

}  // namespace kiln::rt
