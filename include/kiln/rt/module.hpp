#pragma once
/// Modules (a loaded binary) and the functions (kernels) in them.

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../jit/program.hpp"
#include "device.hpp"

namespace kiln::rt {

/// A kernel's resource use, as the driver reports it.
struct FunctionAttributes {
  int max_threads_per_block = 0;  ///< the most threads a block of this kernel may have
  int registers = 0;              ///< per thread
  int static_shared_bytes = 0;
  int local_bytes = 0;  ///< per thread (spills, local arrays)
  int max_dynamic_shared_bytes = 0;
};

class Module;

/// A kernel in a loaded module, on the module's device. Cheap to copy.
class Function {
 public:
  Function() = default;

  const std::string& name() const { return state_->name; }
  const Device& device() const { return state_->device; }
  void* handle() const { return state_->handle; }
  const FunctionAttributes& attributes() const { return state_->attributes; }
  /// Sizes of the kernel's parameters, in order, where the driver reports them (CUDA 12.4+);
  /// empty otherwise.
  const std::vector<std::size_t>& parameter_sizes() const { return state_->parameter_sizes; }
  bool knows_parameters() const { return state_->knows_parameters; }

  /// Lets the kernel use up to `bytes` of dynamic shared memory (above the 48 KiB default,
  /// up to the device's opt-in maximum). Throws naming the limit when it is too much.
  void set_max_dynamic_shared(int bytes) {
    const auto& p = device().properties();
    const int limit = int(p.shared_per_block_optin) - attributes().static_shared_bytes;
    if (bytes < 0 || bytes > limit) {
      throw Error("kiln: kernel " + name() + " cannot have " + std::to_string(bytes) +
                  " bytes of dynamic shared memory on " + p.name + ": the limit is " +
                  std::to_string(limit) + " (" + std::to_string(p.shared_per_block_optin) +
                  " per block less " + std::to_string(attributes().static_shared_bytes) +
                  " static)");
    }
    const DriverApi& api = driver();
    if (!api.function_set_max_dynamic_shared) {
      // HIP: kernels need no opt-in; anything within the device's limit may be used.
      state_->attributes.max_dynamic_shared_bytes = bytes;
      return;
    }
    ContextGuard g(device().context());
    api.check(api.function_set_max_dynamic_shared(handle(), bytes),
              "function_set_max_dynamic_shared", "raising the shared memory limit of " + name());
    state_->attributes.max_dynamic_shared_bytes = bytes;
  }

  /// Blocks of this kernel that fit on one multiprocessor at once. Asked of the driver once
  /// per shape, then remembered (a persistent kernel's launch asks at every call).
  int occupancy(int block_size, std::size_t dynamic_shared = 0) const {
    auto& memo = *state_->occupancy;
    std::lock_guard lock(memo.mutex);
    for (const auto& [k, v] : memo.blocks) {
      if (k.first == block_size && k.second == dynamic_shared) return v;
    }
    ContextGuard g(device().context());
    int blocks = 0;
    driver().check(driver().occupancy(&blocks, handle(), block_size, dynamic_shared), "occupancy",
                   "computing the occupancy of " + name());
    memo.blocks.emplace_back(std::pair(block_size, dynamic_shared), blocks);
    return blocks;
  }

  /// The most thread-block clusters of cluster[0] x [1] x [2] blocks of block[0] x [1] x [2]
  /// threads with `dynamic_shared` bytes each that the device runs at once: what a
  /// persistent kernel's grid of clusters should not exceed. 0 where the driver cannot tell
  /// (HIP, CUDA before 12). Asked of the driver once per shape, then remembered.
  int max_active_clusters(const unsigned* block, const unsigned* cluster,
                          std::size_t dynamic_shared) const {
    const DriverApi& api = driver();
    if (!api.max_active_clusters) return 0;
    const std::array<unsigned, 7> key{
        block[0], block[1], block[2], cluster[0], cluster[1], cluster[2], unsigned(dynamic_shared)};
    auto& memo = *state_->occupancy;
    std::lock_guard lock(memo.mutex);
    for (const auto& [k, v] : memo.clusters) {
      if (k == key) return v;
    }
    ContextGuard g(device().context());
    int clusters = 0;
    api.check(
        api.max_active_clusters(&clusters, handle(), block, cluster, unsigned(dynamic_shared)),
        "max_active_clusters",
        "computing how many clusters of " + std::to_string(cluster[0] * cluster[1] * cluster[2]) +
            " blocks of " + name() + " run at once");
    memo.clusters.emplace_back(key, clusters);
    return clusters;
  }

  /// The most blocks of block[0] x [1] x [2] threads with `dynamic_shared` bytes each that
  /// one thread-block cluster of this kernel may hold on its device: 8 is portable, and
  /// where the device runs more (16 on sm_90, for blocks small enough) the kernel is allowed
  /// them first (non-portable sizes), so the answer is the device's own. 0 where the driver
  /// cannot tell (HIP, CUDA before 12). Asked of the driver once per shape, then remembered.
  int max_cluster_blocks(const unsigned* block, std::size_t dynamic_shared) const {
    const DriverApi& api = driver();
    if (!api.max_cluster_size || !api.function_allow_non_portable_clusters) return 0;
    const std::array<unsigned, 4> key{block[0], block[1], block[2], unsigned(dynamic_shared)};
    auto& memo = *state_->occupancy;
    std::lock_guard lock(memo.mutex);
    for (const auto& [k, v] : memo.cluster_sizes) {
      if (k == key) return v;
    }
    ContextGuard g(device().context());
    if (!memo.non_portable) {
      api.check(api.function_allow_non_portable_clusters(handle()),
                "function_allow_non_portable_clusters",
                "allowing " + name() + " clusters of more than 8 blocks");
      memo.non_portable = true;
    }
    int blocks = 0;
    api.check(api.max_cluster_size(&blocks, handle(), block, unsigned(dynamic_shared)),
              "max_cluster_size", "asking how many blocks a cluster of " + name() + " may hold");
    memo.cluster_sizes.emplace_back(key, blocks);
    return blocks;
  }

  bool valid() const { return state_ != nullptr; }

 private:
  friend class Module;
  struct State {
    std::string name;
    Device device;
    void* handle = nullptr;
    FunctionAttributes attributes;
    std::vector<std::size_t> parameter_sizes;
    bool knows_parameters = false;
    std::shared_ptr<const void> module_keepalive;
    // The driver's occupancy answers, remembered: max_active_clusters' by (block, cluster,
    // shared bytes), occupancy's by (block size, shared bytes), max_cluster_blocks' by
    // (block, shared bytes); and whether the kernel is allowed non-portable cluster sizes.
    struct Occupancy {
      std::mutex mutex;
      std::vector<std::pair<std::array<unsigned, 7>, int>> clusters;
      std::vector<std::pair<std::pair<int, std::size_t>, int>> blocks;
      std::vector<std::pair<std::array<unsigned, 4>, int>> cluster_sizes;
      bool non_portable = false;
    };
    std::shared_ptr<Occupancy> occupancy;
  };
  explicit Function(std::shared_ptr<State> s) : state_(std::move(s)) {}
  std::shared_ptr<State> state_;
};

/// A binary loaded on one device. Shared: functions keep their module alive.
class Module {
 public:
  /// Loads `binary` (a cubin or hsaco) on `device`.
  Module(std::shared_ptr<const jit::Binary> binary, const Device& device)
      : state_(std::make_shared<State>(std::move(binary), device)) {}

  /// The kernel named `name` (an extern "C" name or a lowered name). Throws naming the
  /// kernel, the module and the device when it is missing.
  Function function(const std::string& name) const {
    std::lock_guard lock(state_->mutex);
    if (auto it = state_->functions.find(name); it != state_->functions.end()) {
      if (auto fs = it->second.lock()) return Function(std::move(fs));
    }
    const DriverApi& api = driver();
    ContextGuard g(state_->device.context());
    auto fs = std::make_shared<Function::State>(
        Function::State{name,
                        state_->device,
                        nullptr,
                        {},
                        {},
                        false,
                        state_,
                        std::make_shared<Function::State::Occupancy>()});
    int r = api.module_function(&fs->handle, state_->handle, name.c_str());
    if (r != 0) {
      std::string hint;
      if (!state_->binary->lowered_names.empty()) {
        hint =
            " (template kernels: look them up with function_for(\"&name<...>\"); this binary has";
        for (const auto& [expr, lowered] : state_->binary->lowered_names) hint += " " + expr;
        hint += ")";
      }
      api.check(r, "module_function",
                "looking up kernel '" + name + "' in a " + state_->binary->target +
                    " binary on device " + std::to_string(state_->device.ordinal()) + hint);
    }
    auto attr = [&](FunctionAttribute a) {
      int v = 0;
      api.check(api.function_attribute(&v, a, fs->handle), "function_attribute",
                "reading the attributes of " + name);
      return v;
    };
    fs->attributes = {
        attr(FunctionAttribute::max_threads_per_block), attr(FunctionAttribute::registers),
        attr(FunctionAttribute::static_shared_bytes), attr(FunctionAttribute::local_bytes),
        attr(FunctionAttribute::max_dynamic_shared_bytes)};
    if (api.function_param_info) {
      std::size_t offset = 0, size = 0;
      while (api.function_param_info(fs->handle, fs->parameter_sizes.size(), &offset, &size) == 0) {
        fs->parameter_sizes.push_back(size);
      }
      fs->knows_parameters = true;
    }
    state_->functions[name] = fs;
    return Function(fs);
  }
  /// The kernel whose name expression ("&scale<256>") was given when compiling.
  Function function_for(const std::string& name_expression) const {
    return function(state_->binary->lowered_name(name_expression));
  }

  const Device& device() const { return state_->device; }
  const jit::Binary& binary() const { return *state_->binary; }

 private:
  struct State {
    State(std::shared_ptr<const jit::Binary> b, const Device& d) : binary(std::move(b)), device(d) {
      if (!binary || binary->code.empty()) throw Error("kiln: cannot load an empty binary");
      const auto& arch = device.properties().arch;
      if (binary->target != arch && !(binary->target == "sm_90a" && arch == "sm_90")) {
        throw Error("kiln: a binary compiled for " + binary->target + " cannot load on device " +
                    std::to_string(device.ordinal()) + " (" + device.properties().name + ", " +
                    arch + "); compile it for " + arch);
      }
      ContextGuard g(device.context());
      driver().check(
          driver().module_load(&handle, binary->code.data()), "module_load",
          "loading a " + binary->target + " binary on device " + std::to_string(device.ordinal()));
    }
    ~State() {
      if (handle) {
        ContextGuard g(device.context());
        driver().module_unload(handle);
      }
    }
    std::shared_ptr<const jit::Binary> binary;
    Device device;
    void* handle = nullptr;
    std::mutex mutex;
    // Weak: a function keeps its module alive, not the other way round.
    std::map<std::string, std::weak_ptr<Function::State>> functions;
  };
  std::shared_ptr<State> state_;
};

/// The module of `binary` on `device`, loaded once per (binary, device) for the life of
/// the process: a binary compiled for one device is never used through another's module.
inline Module load_module(const std::shared_ptr<const jit::Binary>& binary, const Device& device) {
  static std::mutex m;
  static std::map<std::pair<const jit::Binary*, int>,
                  std::pair<std::shared_ptr<const jit::Binary>, Module>>
      loaded;
  std::lock_guard lock(m);
  auto key = std::make_pair(binary.get(), device.ordinal());
  if (auto it = loaded.find(key); it != loaded.end()) return it->second.second;
  Module mod(binary, device);
  loaded.emplace(key, std::make_pair(binary, mod));
  return mod;
}

}  // namespace kiln::rt
