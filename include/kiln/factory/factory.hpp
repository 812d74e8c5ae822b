#pragma once
/// A kernel factory from a description: a name, a kernel source, and three callables
/// (the configs, the header of a config, the launch of a config). Everything else is
/// optional; tuning needs no buffers of its own, as candidates are timed on the arguments
/// of the first call.
///
///   kiln::factory::Factory<Params, Config> transpose({
///       .name = "transpose",
///       .source = "transpose.cu",   // beside this file, or on KILN_KERNEL_PATH, or embedded
///       .configs = [](const Params&) { return std::vector<Config>{{32, 8}, {64, 16}}; },
///       .spec = [](const Params& p, const Config& c) { return make_spec(p, c); },
///       .launch = [](const Params& p, const Config& c) { return kiln::rt::LaunchConfig(...); },
///   });
///   transpose(stream, params, In(in.data(), ROW(rows), COL(cols)), Out(...));  // tunes, launches
///
/// Each callable may also take the device's properties as its last parameter
/// (`[](const Params&, const kiln::rt::DeviceProperties& d) {...}`). A Factory is a
/// KernelFactory: get(), tune(), build_all(), the tuning database and the profiler work
/// the same; subclass KernelFactory instead for what a description cannot say.

#include <functional>
#include <map>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../gen/spec.hpp"
#include "../jit/sources.hpp"
#include "kernel_factory.hpp"

namespace kiln::factory {

namespace detail {

/// A callable of `R(A...)` that also receives the device's properties, made from a
/// callable that takes them last or one that does not: `DeviceFn<int(const P&)>` holds a
/// `std::function<int(const P&, const rt::DeviceProperties&)>`. Empty by default.
template <class Signature>
class DeviceFn;

template <class R, class... A>
class DeviceFn<R(A...)> {
 public:
  using Function = std::function<R(A..., const rt::DeviceProperties&)>;
  DeviceFn() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, DeviceFn>>>
  DeviceFn(F f) {  // NOLINT(google-explicit-constructor): a lambda reads best as it is
    if constexpr (std::is_invocable_r_v<R, F&, A..., const rt::DeviceProperties&>) {
      fn_ = std::move(f);
    } else {
      static_assert(std::is_invocable_r_v<R, F&, A...>,
                    "a factory callable takes the arguments its field names (params, config, "
                    "...), and optionally const kiln::rt::DeviceProperties& last");
      fn_ = [f = std::move(f)](A... a, const rt::DeviceProperties&) mutable -> R {
        return f(std::forward<A>(a)...);
      };
    }
  }
  explicit operator bool() const { return bool(fn_); }
  R operator()(A... a, const rt::DeviceProperties& d) const {
    return fn_(std::forward<A>(a)..., d);
  }

 private:
  Function fn_;
};

}  // namespace detail

/// What a Factory is made from. Only name, source (or program), configs, spec and launch
/// are required.
template <class Params, class Config>
struct FactoryDescription {
  using KernelType = Kernel<Params, Config>;
  using TuningRun = typename KernelFactory<Params, Config>::TuningRun;

  /// The kernel family's name (a C++ identifier): the first part of every kernel's name.
  std::string name{};
  /// Bump it when the kernel source or the meaning of a config changes, so that tuning
  /// results of the old kernel are not used for the new one.
  int version = 1;
  /// The kernel source file, found as kiln::kernel finds it (KILN_KERNEL_PATH, embedded
  /// sources, beside the C++ file that makes the factory, kiln's kernels/). It includes
  /// "spec.hpp" and names its entry point KILN_KERNEL_NAME.
  std::string source{};
  /// Or the program whole, instead of `source`.
  jit::Program program{};
  /// Optional: more kernel source files, found as `source` is, for configs that compile a
  /// kernel of their own; `source_of` names the file a config compiles (`source` or one of
  /// these; default: `source`).
  std::vector<std::string> more_sources{};
  std::function<std::string(const Params&, const Config&)> source_of{};

  /// The candidate configs of a problem (at least one).
  detail::DeviceFn<std::vector<Config>(const Params&)> configs{};
  /// The header of a config, included by the source as "spec.hpp".
  detail::DeviceFn<gen::Spec(const Params&, const Config&)> spec{};
  /// Grid, block and dynamic shared memory of a config (the stream is given per launch).
  detail::DeviceFn<rt::LaunchConfig(const Params&, const Config&)> launch{};

  /// Optional: throws kiln::Error for a problem the kernel does not support.
  detail::DeviceFn<void(const Params&)> validate{};
  /// Optional: the config used untimed (KILN_TUNE=off); default: the first candidate.
  detail::DeviceFn<Config(const Params&, const std::vector<Config>&)> heuristic{};
  /// Optional: compile options; default: the device's target and nothing else.
  detail::DeviceFn<jit::Options(const Params&, const Config&)> options{};
  /// Optional: the kernel's name with its specialization; default: name, params, config.
  std::function<std::string(const Params&, const Config&)> kernel_name{};
  /// Optional: bytes one launch moves and FLOPs it does, for the profiler's roofline.
  std::function<double(const Params&)> bytes{};
  std::function<double(const Params&)> flops{};
  /// Optional: buffers of its own to time candidates on (see KernelFactory::tuning_run);
  /// default: the arguments of the first call.
  std::function<TuningRun(const Params&, const rt::Device&)> tuning_run{};
};

/// A KernelFactory made from a FactoryDescription.
template <class Params, class Config>
class Factory : public KernelFactory<Params, Config> {
  using Base = KernelFactory<Params, Config>;

 public:
  using Description = FactoryDescription<Params, Config>;
  using typename Base::TuningRun;

  /// Throws kiln::Error naming what the description lacks, or when the source is not found.
  explicit Factory(Description d, std::source_location caller = std::source_location::current())
      : Base(d.name, d.version, program_of(d, caller)), d_(std::move(d)) {
    for (const std::string& file : d_.more_sources) {
      more_programs_.emplace(file, jit::program_from_file(file, jit::directory_of(caller)));
    }
    std::string missing;
    if (!d_.configs) missing += " configs";
    if (!d_.spec) missing += " spec";
    if (!d_.launch) missing += " launch";
    if (!missing.empty()) {
      throw Error("kiln: factory " + d_.name + " is described without:" + missing +
                  "; a FactoryDescription needs .configs, .spec and .launch");
    }
  }

  void validate(const Params& p, const rt::DeviceProperties& d) const override {
    if (d_.validate) d_.validate(p, d);
  }
  std::vector<Config> configs(const Params& p, const rt::DeviceProperties& d) const override {
    return d_.configs(p, d);
  }
  Config heuristic(const Params& p, const std::vector<Config>& candidates,
                   const rt::DeviceProperties& d) const override {
    return d_.heuristic ? d_.heuristic(p, candidates, d) : Base::heuristic(p, candidates, d);
  }
  gen::Spec spec(const Params& p, const Config& c, const rt::DeviceProperties& d) const override {
    return d_.spec(p, c, d);
  }
  rt::LaunchConfig launch_config(const Params& p, const Config& c,
                                 const rt::DeviceProperties& d) const override {
    return d_.launch(p, c, d);
  }
  jit::Options options(const Params& p, const Config& c,
                       const rt::DeviceProperties& d) const override {
    if (!d_.options) return Base::options(p, c, d);
    jit::Options o = d_.options(p, c, d);
    if (o.target.empty()) o.target = d.arch;
    return o;
  }
  std::string kernel_name(const Params& p, const Config& c) const override {
    return d_.kernel_name ? d_.kernel_name(p, c) : Base::kernel_name(p, c);
  }
  const jit::Program& program_for(const Params& p, const Config& c) const override {
    if (!d_.source_of) return Base::program();
    const std::string file = d_.source_of(p, c);
    if (file == d_.source) return Base::program();
    auto it = more_programs_.find(file);
    if (it == more_programs_.end()) {
      throw Error("kiln: factory " + d_.name + " names the source '" + file +
                  "' for a config, but it is neither .source nor one of .more_sources");
    }
    return it->second;
  }
  double bytes(const Params& p) const override { return d_.bytes ? d_.bytes(p) : 0; }
  double flops(const Params& p) const override { return d_.flops ? d_.flops(p) : 0; }
  TuningRun tuning_run(const Params& p, const rt::Device& device) const override {
    return d_.tuning_run ? d_.tuning_run(p, device) : TuningRun{};
  }

 private:
  static jit::Program program_of(const Description& d, const std::source_location& caller) {
    if (!d.source.empty() && !d.program.source.empty()) {
      throw Error("kiln: factory " + d.name +
                  " is given both .source and .program; give one of them");
    }
    if (!d.program.source.empty()) return d.program;
    if (d.source.empty()) {
      throw Error("kiln: factory " + d.name +
                  " has no kernel source; give .source (a file name) or .program");
    }
    return jit::program_from_file(d.source, jit::directory_of(caller));
  }

  Description d_;
  std::map<std::string, jit::Program> more_programs_;
};

}  // namespace kiln::factory
