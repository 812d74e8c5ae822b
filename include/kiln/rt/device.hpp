#pragma once
/// Devices: enumeration, properties, and the primary context kiln retains for each.

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "driver.hpp"

namespace kiln::rt {

/// What kiln knows about a device, read once through device attributes.
struct DeviceProperties {
  int ordinal = 0;
  Platform platform = Platform::cuda;
  std::string name;  ///< "NVIDIA H100 80GB HBM3"
  std::string arch;  ///< the compile target: "sm_90", "gfx942"
  int compute_major = 0, compute_minor = 0;
  int multiprocessors = 0;  ///< SMs (NVIDIA) or CUs (AMD)
  int warp_size = 0;
  int max_threads_per_block = 0;
  int max_threads_per_multiprocessor = 0;
  std::array<int, 3> max_block{};
  std::array<int, 3> max_grid{};
  std::size_t shared_per_block = 0;        ///< without opting in
  std::size_t shared_per_block_optin = 0;  ///< the most a kernel may opt in to
  std::size_t shared_per_multiprocessor = 0;
  int registers_per_multiprocessor = 0;
  int registers_per_block = 0;
  std::size_t l2_bytes = 0;
  int sm_clock_khz = 0;
  int memory_clock_khz = 0;
  int memory_bus_bits = 0;
  std::size_t total_memory = 0;

  /// Peak memory bandwidth in bytes per second implied by the memory clock and bus width
  /// (double data rate).
  double peak_bandwidth() const { return 2.0 * memory_clock_khz * 1e3 * memory_bus_bits / 8.0; }
};

namespace detail {

inline DeviceProperties read_properties(int ordinal) {
  const DriverApi& api = driver();
  DeviceProperties p;
  p.ordinal = ordinal;
  p.platform = api.platform;
  int dev = 0;
  api.check(api.device_get(&dev, ordinal), "device_get",
            "opening device " + std::to_string(ordinal));
  char name[256] = {};
  api.check(api.device_name(name, sizeof name, dev), "device_name", "reading device names");
  p.name = name;
  auto attr = [&](DeviceAttribute a) {
    int v = 0;
    api.check(api.device_attribute(&v, a, dev), "device_attribute",
              "reading the attributes of device " + std::to_string(ordinal));
    return v;
  };
  p.compute_major = attr(DeviceAttribute::compute_major);
  p.compute_minor = attr(DeviceAttribute::compute_minor);
  p.multiprocessors = attr(DeviceAttribute::multiprocessor_count);
  p.warp_size = attr(DeviceAttribute::warp_size);
  p.max_threads_per_block = attr(DeviceAttribute::max_threads_per_block);
  p.max_threads_per_multiprocessor = attr(DeviceAttribute::max_threads_per_multiprocessor);
  p.max_block = {attr(DeviceAttribute::max_block_x), attr(DeviceAttribute::max_block_y),
                 attr(DeviceAttribute::max_block_z)};
  p.max_grid = {attr(DeviceAttribute::max_grid_x), attr(DeviceAttribute::max_grid_y),
                attr(DeviceAttribute::max_grid_z)};
  p.shared_per_block = std::size_t(attr(DeviceAttribute::shared_memory_per_block));
  p.shared_per_block_optin = std::size_t(attr(DeviceAttribute::shared_memory_per_block_optin));
  p.shared_per_multiprocessor =
      std::size_t(attr(DeviceAttribute::shared_memory_per_multiprocessor));
  p.registers_per_multiprocessor = attr(DeviceAttribute::registers_per_multiprocessor);
  p.registers_per_block = attr(DeviceAttribute::registers_per_block);
  p.l2_bytes = std::size_t(attr(DeviceAttribute::l2_cache_bytes));
  p.sm_clock_khz = attr(DeviceAttribute::clock_khz);
  p.memory_clock_khz = attr(DeviceAttribute::memory_clock_khz);
  p.memory_bus_bits = attr(DeviceAttribute::memory_bus_width_bits);
  api.check(api.device_total_memory(&p.total_memory, dev), "device_total_memory");
  if (api.device_arch_name) {
    char arch[64] = {};
    api.check(api.device_arch_name(arch, sizeof arch, dev), "device_arch_name");
    p.arch = arch;
  } else {
    p.arch = "sm_" + std::to_string(p.compute_major) + std::to_string(p.compute_minor);
  }
  return p;
}

struct DeviceSlot {
  std::once_flag once;
  void* context = nullptr;
  DeviceProperties properties;
};

// One slot per ordinal, for the life of the process: each device's primary context is
// retained once and never released (releasing at exit races with other static
// destructors that still use it).
inline DeviceSlot& device_slot(int ordinal) {
  static std::mutex m;
  static std::vector<std::unique_ptr<DeviceSlot>> slots;
  std::lock_guard lock(m);
  if (slots.empty()) slots.resize(std::size_t(std::max(device_count(), 1)));
  auto& s = slots[std::size_t(ordinal)];
  if (!s) s = std::make_unique<DeviceSlot>();
  return *s;
}

}  // namespace detail

/// Makes `context` current in this thread for the guard's life, restoring the previous
/// one after (a no-op when it is current already).
class ContextGuard {
 public:
  explicit ContextGuard(void* context) {
    const DriverApi& api = driver();
    api.check(api.context_get_current(&previous_), "context_get_current");
    if (previous_ != context) {
      api.check(api.context_set_current(context), "context_set_current");
      switched_ = true;
    }
  }
  ContextGuard(const ContextGuard&) = delete;
  ContextGuard& operator=(const ContextGuard&) = delete;
  ~ContextGuard() {
    if (switched_) driver().context_set_current(previous_);
  }

 private:
  void* previous_ = nullptr;
  bool switched_ = false;
};

/// One GPU. Cheap to copy (it names a device; the primary context and properties are
/// shared per device).
class Device {
 public:
  /// Device `ordinal` (0 .. device_count()-1). Throws NoDeviceError when there is no
  /// driver or device, and kiln::Error for an ordinal out of range.
  explicit Device(int ordinal = 0) : ordinal_(ordinal) {
    int n = device_count();
    if (n == 0) {
      driver();  // throws NoDeviceError with the reason when there is no driver
      throw NoDeviceError("kiln: the " + std::string(to_string(driver().platform)) +
                          " driver reports no device; check nvidia-smi and CUDA_VISIBLE_DEVICES");
    }
    if (ordinal < 0 || ordinal >= n) {
      throw Error("kiln: there is no device " + std::to_string(ordinal) + "; this machine has " +
                  std::to_string(n) + " (ordinals 0.." + std::to_string(n - 1) + ")");
    }
    slot_ = &detail::device_slot(ordinal);
    std::call_once(slot_->once, [this] {
      const DriverApi& api = driver();
      int dev = 0;
      api.check(api.device_get(&dev, ordinal_), "device_get");
      api.check(api.primary_context_retain(&slot_->context, dev), "primary_context_retain",
                "retaining the primary context of device " + std::to_string(ordinal_));
      slot_->properties = detail::read_properties(ordinal_);
    });
  }

  /// The device whose context is current in this thread (device 0 when none is).
  static Device current() {
    void* ctx = nullptr;
    driver().context_get_current(&ctx);
    if (ctx) {
      for (int i = 0; i < device_count(); ++i) {
        Device d(i);
        if (d.context() == ctx) return d;
      }
    }
    return Device(0);
  }

  int ordinal() const { return ordinal_; }
  const DeviceProperties& properties() const { return slot_->properties; }
  /// The compile target for this device ("sm_90").
  const std::string& arch() const { return slot_->properties.arch; }
  /// The device's primary context (retained by kiln for the life of the process).
  void* context() const { return slot_->context; }
  /// Makes this device's primary context current in the calling thread.
  void make_current() const {
    driver().check(driver().context_set_current(context()), "context_set_current");
  }
  /// Waits until all work on this device (every stream) has finished.
  void synchronize() const {
    ContextGuard g(context());
    driver().check(driver().context_synchronize(), "context_synchronize",
                   "waiting for device " + std::to_string(ordinal_));
  }
  /// Free and total device memory, in bytes.
  std::pair<std::size_t, std::size_t> memory_info() const {
    ContextGuard g(context());
    std::size_t free = 0, total = 0;
    driver().check(driver().memory_info(&free, &total), "memory_info");
    return {free, total};
  }

  bool operator==(const Device& o) const { return ordinal_ == o.ordinal_; }
  bool operator!=(const Device& o) const { return ordinal_ != o.ordinal_; }

 private:
  int ordinal_;
  detail::DeviceSlot* slot_ = nullptr;
};

/// Every device, in ordinal order (empty where there is none).
inline std::vector<Device> devices() {
  std::vector<Device> out;
  for (int i = 0; i < device_count(); ++i) out.emplace_back(i);
  return out;
}

}  // namespace kiln::rt
