#pragma once
/// A kernel a factory made: compiled for one Params and Config, loaded on one device,
/// launched with the factory's grid, block and shared memory.
///
///   const auto& k = factory.get(params, device);
///   k(stream, in, out, rows);      // launch on `stream`, seen by the profiler as k.name()

#include <string>
#include <utility>

#include "../rt/launch.hpp"
#include "../rt/module.hpp"
#include "../rt/observer.hpp"
#include "tune_policy.hpp"

namespace kiln::factory {

template <class Params, class Config>
class Kernel {
 public:
  Kernel(Params params, Config config, std::string name, rt::Function function,
         rt::LaunchConfig launch, rt::LaunchInfo info, Selection selected_by)
      : params_(std::move(params)),
        config_(std::move(config)),
        name_(std::move(name)),
        function_(std::move(function)),
        launch_(launch),
        info_(std::move(info)),
        selected_by_(selected_by) {}

  const Params& params() const { return params_; }
  const Config& config() const { return config_; }
  /// The kernel's name with its specialization ("softmax__f16__cols4096__t256v8").
  const std::string& name() const { return name_; }
  const rt::Function& function() const { return function_; }
  const rt::Device& device() const { return function_.device(); }
  /// The grid, block and dynamic shared memory the factory chose (on the default stream).
  const rt::LaunchConfig& launch_config() const { return launch_; }
  /// What the profiler is told about each launch: params and config as JSON, bytes, FLOPs.
  const rt::LaunchInfo& launch_info() const { return info_; }
  /// How the config was chosen.
  Selection selected_by() const { return selected_by_; }

  /// Launches the kernel on `stream` with `args` as its parameters.
  template <class... Args>
  void operator()(rt::StreamRef stream, const Args&... args) const {
    rt::LaunchConfig c = launch_;
    c.stream = stream;
    rt::launch_with(&info_, function_, c, args...);
  }

  /// Launches with another grid, block or shared memory size than the factory's.
  template <class... Args>
  void launch(const rt::LaunchConfig& config, const Args&... args) const {
    rt::launch_with(&info_, function_, config, args...);
  }
  /// The same, telling the profiler `info` (params, bytes, FLOPs) instead of this kernel's
  /// own: for a launch over another problem size than params() (a run-time row count).
  template <class... Args>
  void launch(const rt::LaunchConfig& config, const rt::LaunchInfo& info,
              const Args&... args) const {
    rt::launch_with(&info, function_, config, args...);
  }

 private:
  Params params_;
  Config config_;
  std::string name_;
  rt::Function function_;
  rt::LaunchConfig launch_;
  rt::LaunchInfo info_;
  Selection selected_by_;
};

}  // namespace kiln::factory
