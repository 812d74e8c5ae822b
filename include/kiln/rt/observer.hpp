#pragma once
/// A hook on every launch through kiln, for the profiler (kiln/prof), kept here so that the
/// driver layer does not depend on it.

#include <atomic>
#include <string>

namespace kiln::rt {

class Function;
struct LaunchConfig;

/// Facts about a launch that only its caller knows (a kernel factory): its parameters and
/// configuration as text, and the bytes and FLOPs it moves and does.
struct LaunchInfo {
  std::string params;
  std::string config;
  double bytes = 0;
  double flops = 0;
};

/// Told about every launch through kiln::rt::launch, on the launching thread, with the
/// kernel's context current.
class LaunchObserver {
 public:
  virtual ~LaunchObserver() = default;
  /// Just before the launch; returns a token handed back to after_launch.
  virtual void* before_launch(const Function& function, const LaunchConfig& config,
                              const LaunchInfo* info) = 0;
  /// Just after a successful launch of `function` with `config`; `host_us` is the time
  /// the launch call took.
  virtual void after_launch(const Function& function, const LaunchConfig& config, void* token,
                            double host_us) = 0;
  /// After a launch that failed (the token is not used again).
  virtual void launch_failed(void* token) = 0;
};

/// The installed observer, or null (the common case: one relaxed load per launch).
inline std::atomic<LaunchObserver*>& launch_observer() {
  static std::atomic<LaunchObserver*> observer{nullptr};
  return observer;
}

}  // namespace kiln::rt
