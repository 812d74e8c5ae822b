#pragma once
/// The compile target of the current CUDA device (sm_XY), for Options with no target.
/// Asks the CUDA driver (libcuda.so.1, opened at run time) directly; the driver layer
/// (kiln/rt) has the full device API.

#include <cuda.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "../detail/dynamic_library.hpp"
#include "../error.hpp"

namespace kiln::jit {

namespace detail {
struct TargetQuery {
  ::kiln::detail::DynamicLibrary lib;
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuCtxGetDevice) ctx_get_device = nullptr;
  decltype(&::cuDeviceGet) device_get = nullptr;
  decltype(&::cuDeviceGetAttribute) attribute = nullptr;
  std::string error;  // why there is no driver, when there is none

  TargetQuery() {
    try {
      lib = ::kiln::detail::DynamicLibrary::open_first("the CUDA driver (libcuda.so.1)",
                                                       {"libcuda.so.1"}, "KILN_CUDA_LIBRARY");
      init = lib.get<decltype(init)>("cuInit");
      ctx_get_device = lib.get<decltype(ctx_get_device)>("cuCtxGetDevice");
      device_get = lib.get<decltype(device_get)>("cuDeviceGet");
      attribute = lib.get<decltype(attribute)>("cuDeviceGetAttribute");
      if (init(0) != CUDA_SUCCESS) error = "cuInit failed (no usable CUDA device)";
    } catch (const Error& e) {
      error = e.what();
    }
  }
};
}  // namespace detail

/// "sm_XY" for the device current in this thread (device 0 when no context is current).
/// Throws kiln::Error when there is no driver or device, or the device is one kiln does
/// not compile for, saying to set Options::target.
inline std::string current_device_target() {
  static detail::TargetQuery q;
  if (!q.error.empty()) {
    throw Error("kiln: no compile target given and no CUDA device to take it from (" + q.error +
                "); set Options::target (sm_80, sm_86, sm_89, sm_90, sm_90a or gfx942)");
  }
  CUdevice dev = 0;
  if (q.ctx_get_device(&dev) != CUDA_SUCCESS && q.device_get(&dev, 0) != CUDA_SUCCESS) {
    throw Error("kiln: no CUDA device found; set Options::target");
  }
  static std::mutex m;
  static std::unordered_map<int, std::string> known;
  std::lock_guard lock(m);
  if (auto it = known.find(int(dev)); it != known.end()) return it->second;
  int major = 0, minor = 0;
  q.attribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
  q.attribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
  std::string target = "sm_" + std::to_string(major) + std::to_string(minor);
  if (target != "sm_80" && target != "sm_86" && target != "sm_89" && target != "sm_90") {
    throw Error("kiln: the current device is " + target +
                ", which kiln does not compile for; set Options::target to one of sm_80, sm_86, "
                "sm_89, sm_90 if the device runs its code");
  }
  known.emplace(int(dev), target);
  return target;
}

}  // namespace kiln::jit
