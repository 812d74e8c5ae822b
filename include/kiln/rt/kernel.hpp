#pragma once
/// The one-call path: a kernel source and its Spec in, a launchable kernel out.
///
///   auto k = kiln::kernel("scale_rows.cu", spec, "scale_rows");   // find, compile, load
///   k.launch(rows, 128, In(d_in.data(), ROW(rows)), Out(d_out.data(), ROW(rows)));
///   k(grid, block, stream, args...);                               // the same, on `stream`
///
/// kiln::kernel finds the file as jit::load_kernel_source does: in KILN_KERNEL_PATH, among
/// sources embedded with kiln_embed_sources(), beside the C++ file that calls kiln::kernel
/// (the compiler's path of it), in kiln's own kernels/. It names the program after it,
/// adds the Spec's header as "spec.hpp", compiles for the device's target through the
/// memory and disk caches, loads the module on the device and looks the kernel up. Each
/// step throws kiln::Error (or kiln::CompileError) saying which step and what to do. A
/// launch checks its arguments as rt::launch does and costs what rt::launch costs.
///
/// A template kernel is named by its name expression ("scale<float, 4>"); kiln asks the
/// compiler for its lowered name.

#include <filesystem>
#include <memory>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include "../gen/spec.hpp"
#include "../jit/kernel_cache.hpp"
#include "../jit/sources.hpp"
#include "device.hpp"
#include "launch.hpp"
#include "module.hpp"

namespace kiln {
namespace rt {

/// A compiled kernel loaded on one device, ready to launch. Cheap to copy.
class JitKernel {
 public:
  JitKernel() = default;
  JitKernel(Function function, std::shared_ptr<const jit::Binary> binary)
      : function_(std::move(function)), binary_(std::move(binary)) {}

  /// Launches on the device's default stream; grid and block are counts or Dim3s.
  template <class... Args>
  void launch(Dim3 grid, Dim3 block, const Args&... args) const {
    launch_with(nullptr, function_, LaunchConfig(grid, block), args...);
  }
  /// Launches with a full LaunchConfig (dynamic shared memory, stream).
  template <class... Args>
  void launch(const LaunchConfig& config, const Args&... args) const {
    launch_with(nullptr, function_, config, args...);
  }
  /// Launches on `stream`.
  template <class... Args>
  void operator()(Dim3 grid, Dim3 block, StreamRef stream, const Args&... args) const {
    launch_with(nullptr, function_, LaunchConfig(grid, block, 0, stream), args...);
  }

  const std::string& name() const { return function_.name(); }
  const Function& function() const { return function_; }
  const Device& device() const { return function_.device(); }
  /// Registers, shared and local memory, the most threads a block may have.
  const FunctionAttributes& attributes() const { return function_.attributes(); }
  /// What the compiler produced: the binary, its PTX (NVIDIA), warnings, compile time.
  const jit::Binary& binary() const { return *binary_; }
  /// Lets launches use up to `bytes` of dynamic shared memory (see Function).
  void set_max_dynamic_shared(int bytes) { function_.set_max_dynamic_shared(bytes); }
  bool valid() const { return function_.valid(); }

 private:
  Function function_;
  std::shared_ptr<const jit::Binary> binary_;
};

namespace detail {

/// `program` with `spec`'s header added as "spec.hpp".
inline jit::Program with_spec(jit::Program program, const gen::Spec& spec) {
  program.headers.push_back({"spec.hpp", spec.header()});
  return program;
}

/// Compiles `program` (asking for the lowered name of a template kernel's name expression)
/// through the caches, loads it on `device` and looks `entry` up.
inline JitKernel load_kernel(jit::Program program, const std::string& entry, jit::Options options,
                             const Device& device) {
  if (entry.empty()) {
    throw Error("kiln: kiln::kernel needs the name of the kernel to launch from " + program.name);
  }
  const bool is_template = entry.find('<') != std::string::npos;
  if (is_template) program.name_expressions.push_back("&" + entry);
  if (options.target.empty()) options.target = device.arch();
  auto binary = jit::KernelCache::global().get(program, options);
  Module module = load_module(binary, device);
  Function f = is_template ? module.function_for("&" + entry) : module.function(entry);
  return JitKernel(std::move(f), std::move(binary));
}

}  // namespace detail
}  // namespace rt

/// The kernel `entry` of source file `source` ("scale_rows.cu", found as
/// jit::load_kernel_source finds it), with `spec`'s header as "spec.hpp", compiled with
/// `options` (an empty target: the device's) and loaded on `device`.
inline rt::JitKernel kernel(const std::string& source, const gen::Spec& spec,
                            const std::string& entry, const jit::Options& options = {},
                            const rt::Device& device = rt::Device::current(),
                            std::source_location caller = std::source_location::current()) {
  return rt::detail::load_kernel(
      rt::detail::with_spec(jit::program_from_file(source, jit::directory_of(caller)), spec), entry,
      options, device);
}

/// The same for a program given whole (source text and headers), with no Spec.
inline rt::JitKernel kernel(const jit::Program& program, const std::string& entry,
                            const jit::Options& options = {},
                            const rt::Device& device = rt::Device::current()) {
  return rt::detail::load_kernel(program, entry, options, device);
}

/// Compiles without loading: for a machine without the GPU (give options.target), or to
/// fill the cache ahead of time. The binary holds the PTX, log and compile time.
inline std::shared_ptr<const jit::Binary> compile(
    const std::string& source, const gen::Spec& spec, const jit::Options& options,
    std::source_location caller = std::source_location::current()) {
  if (options.target.empty()) {
    throw Error("kiln: kiln::compile of " + source +
                " needs options.target (sm_80, sm_86, sm_89, sm_90, sm_90a or gfx942); "
                "kiln::kernel takes the device's own");
  }
  return jit::KernelCache::global().get(
      rt::detail::with_spec(jit::program_from_file(source, jit::directory_of(caller)), spec),
      options);
}

}  // namespace kiln
