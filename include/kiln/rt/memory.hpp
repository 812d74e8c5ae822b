#pragma once
/// Device and pinned host memory: owned, typed, movable buffers bound to their device.

#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../dims/tensor.hpp"
#include "stream.hpp"

namespace kiln::rt {

namespace detail {
inline std::string mib(std::size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  return text;
}
}  // namespace detail

/// `count` elements of T in device memory. Movable, not copyable; freed on destruction.
template <class T>
class DeviceBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "DeviceBuffer holds trivially copyable elements");

 public:
  DeviceBuffer() = default;
  /// Allocates `count` elements on `device` (default: device 0). Throws DriverError naming
  /// the size asked for and the memory free when the allocation fails.
  explicit DeviceBuffer(std::size_t count, const Device& device = Device(0))
      : device_(device), count_(count) {
    if (count == 0) return;
    ContextGuard g(device_->context());
    const DriverApi& api = driver();
    int r = api.memory_allocate(&address_, bytes());
    if (r != 0) {
      std::size_t free = 0, total = 0;
      api.memory_info(&free, &total);
      api.check(r, "memory_allocate",
                "allocating " + detail::mib(bytes()) + " on device " +
                    std::to_string(device_->ordinal()) + " (" + detail::mib(free) + " of " +
                    detail::mib(total) + " free)");
    }
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : device_(o.device_),
        address_(std::exchange(o.address_, 0)),
        count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      device_ = o.device_;
      address_ = std::exchange(o.address_, 0);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }

  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }
  /// The device address, as the kernel sees it.
  T* data() const { return reinterpret_cast<T*>(static_cast<std::uintptr_t>(address_)); }
  std::uint64_t address() const { return address_; }
  const Device& device() const { return *device_; }

  // Every operation below takes an optional stream. Without one it is synchronous: it
  // first waits for all work already queued on the buffer's device (kiln's streams are
  // non-blocking, so the default stream alone would not wait for a kernel launched on
  // one), then runs and returns once it is done; the host memory may be reused at once.
  // With a stream it is queued there and returns at once: keep the host memory alive and
  // unchanged until the stream is synchronized.

  /// Copies host data in (host.size() must equal size()). Synchronous without a stream.
  void copy_from(std::span<const T> host, StreamRef stream = {}) {
    check_size(host.size(), "copy_from");
    ContextGuard g(device_->context());
    check_stream(stream, "copy into");
    wait_before(stream);
    driver().check(
        driver().copy_to_device(address_, host.data(), bytes(), stream.handle), "copy_to_device",
        "copying " + detail::mib(bytes()) + " to device " + std::to_string(device_->ordinal()));
    wait_after(stream);
  }
  /// Copies the buffer out to host memory (host.size() must equal size()). Synchronous
  /// without a stream.
  void copy_to(std::span<T> host, StreamRef stream = {}) const {
    check_size(host.size(), "copy_to");
    ContextGuard g(device_->context());
    check_stream(stream, "copy out of");
    wait_before(stream);
    driver().check(
        driver().copy_to_host(host.data(), address_, bytes(), stream.handle), "copy_to_host",
        "copying " + detail::mib(bytes()) + " from device " + std::to_string(device_->ordinal()));
    wait_after(stream);
  }
  /// The buffer's contents in a new vector; synchronous (it waits for all work queued on
  /// the device first, so it sees what a kernel on any stream wrote).
  std::vector<T> to_vector() const {
    std::vector<T> out(count_);
    copy_to(out);
    return out;
  }
  /// Copies another device buffer of the same size in. Synchronous without a stream (it
  /// waits for the work queued on both buffers' devices first).
  void copy_from(const DeviceBuffer& other, StreamRef stream = {}) {
    check_size(other.size(), "copy_from");
    if (!stream.handle && other.device_ && other.device_->ordinal() != device_->ordinal()) {
      ContextGuard og(other.device_->context());
      other.wait_before(stream);
    }
    ContextGuard g(device_->context());
    check_stream(stream, "copy into");
    wait_before(stream);
    driver().check(driver().copy_device(address_, other.address_, bytes(), stream.handle),
                   "copy_device");
    wait_after(stream);
  }
  /// Sets every byte to `byte` (0xff poisons floats with NaN). Synchronous without a
  /// stream.
  void fill_bytes(unsigned char byte, StreamRef stream = {}) {
    ContextGuard g(device_->context());
    check_stream(stream, "fill");
    wait_before(stream);
    driver().check(driver().fill_bytes(address_, byte, bytes(), stream.handle), "fill_bytes");
    wait_after(stream);
  }
  /// Sets every element to `value`: for 1- and 4-byte types, or any value whose bytes are
  /// all equal (zero, for one). Synchronous without a stream.
  void fill(const T& value, StreamRef stream = {}) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &value, sizeof(T));
    bool uniform = true;
    for (std::size_t i = 1; i < sizeof(T); ++i) uniform = uniform && b[i] == b[0];
    if (uniform) return fill_bytes(b[0], stream);
    if constexpr (sizeof(T) == 4) {
      unsigned word = 0;
      std::memcpy(&word, &value, 4);
      ContextGuard g(device_->context());
      check_stream(stream, "fill");
      wait_before(stream);
      driver().check(driver().fill_words(address_, word, count_, stream.handle), "fill_words");
      wait_after(stream);
    } else {
      throw Error(
          "kiln: DeviceBuffer::fill takes 1- or 4-byte elements, or values whose bytes are "
          "all equal; fill a " +
          std::to_string(sizeof(T)) + "-byte type with a kernel");
    }
  }

  /// A typed view of the buffer for kernel arguments: tensor<Extent<I, dynamic>,
  /// Extent<K, 32>>(I(rows)). Throws when the view needs more elements than the buffer has.
  template <class... Es, class... Rt>
  auto tensor(Rt... runtime_sizes) const {
    using View = Tensor<T, Es...>;
    View v(data(), runtime_sizes...);
    std::size_t needed = 0;
    int sizes[sizeof...(Es)] = {}, strides[sizeof...(Es)] = {};
    v.to_arrays(sizes, strides);
    for (std::size_t i = 0; i < sizeof...(Es); ++i)
      needed += std::size_t(sizes[i] - 1) * std::size_t(strides[i]);
    if (count_ == 0 || needed + 1 > count_) {
      throw Error("kiln: a tensor view over this DeviceBuffer needs " + std::to_string(needed + 1) +
                  " elements, but the buffer holds " + std::to_string(count_));
    }
    return v;
  }

 private:
  void check_size(std::size_t n, const char* what) const {
    if (n != count_) {
      throw Error(std::string("kiln: DeviceBuffer::") + what + " got " + std::to_string(n) +
                  " elements for a buffer of " + std::to_string(count_));
    }
  }
  void check_stream(StreamRef s, const char* what) const {
    if (s.device >= 0 && s.device != device_->ordinal()) {
      throw Error(std::string("kiln: cannot ") + what + " a buffer of device " +
                  std::to_string(device_->ordinal()) + " on a stream of device " +
                  std::to_string(s.device));
    }
  }
  // Without a stream: all work queued on the device (current context) finishes first...
  void wait_before(StreamRef s) const {
    if (!s.handle) driver().check(driver().context_synchronize(), "context_synchronize");
  }
  // ...and the operation itself, queued on the default stream, before the call returns.
  void wait_after(StreamRef s) const {
    if (!s.handle) driver().check(driver().stream_synchronize(nullptr), "stream_synchronize");
  }
  void release() noexcept {
    if (!address_) return;
    ContextGuard g(device_->context());
    driver().memory_free(address_);
    address_ = 0;
  }

  std::optional<Device> device_;
  std::uint64_t address_ = 0;
  std::size_t count_ = 0;
};

namespace detail {
template <class T>
struct IsDeviceBuffer : std::false_type {};
template <class T>
struct IsDeviceBuffer<DeviceBuffer<T>> : std::true_type {};
}  // namespace detail

/// Whether T is a DeviceBuffer (of any element type): a kernel argument passed as its
/// device pointer, and memory a factory tuning on a call's arguments saves and restores.
template <class T>
inline constexpr bool is_device_buffer = detail::IsDeviceBuffer<std::remove_cvref_t<T>>::value;

/// `count` elements of T in page-locked host memory (fast, asynchronous copies).
template <class T>
class PinnedBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "PinnedBuffer holds trivially copyable elements");

 public:
  explicit PinnedBuffer(std::size_t count) : count_(count) {
    if (count == 0) return;
    ContextGuard g(Device(0).context());
    void* p = nullptr;
    driver().check(driver().host_allocate(&p, count * sizeof(T)), "host_allocate",
                   "allocating " + detail::mib(count * sizeof(T)) + " of pinned host memory");
    data_ = static_cast<T*>(p);
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { release(); }

  T* data() const { return data_; }
  std::size_t size() const { return count_; }
  T& operator[](std::size_t i) const { return data_[i]; }
  std::span<T> span() const { return {data_, count_}; }
  operator std::span<T>() const { return span(); }
  operator std::span<const T>() const { return {data_, count_}; }

 private:
  void release() noexcept {
    if (data_) driver().host_free(data_);
    data_ = nullptr;
  }
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace kiln::rt
