#pragma once
/// Streams and events, bound to the device they were created on: every operation runs
/// in that device's context, whatever is current in the calling thread.

#include <utility>

#include "device.hpp"

namespace kiln::rt {

/// A stream to enqueue work on, by handle; the null handle is the device's default stream.
struct StreamRef {
  void* handle = nullptr;
  int device = -1;  ///< -1: the default stream of whichever device the work runs on
};

/// An owned stream (non-blocking with the default stream). Movable, not copyable.
class Stream {
 public:
  /// A new stream on `device` (default: device 0).
  explicit Stream(const Device& device = Device(0)) : device_(device) {
    ContextGuard g(device_.context());
    driver().check(driver().stream_create(&handle_), "stream_create",
                   "creating a stream on device " + std::to_string(device_.ordinal()));
  }
  Stream(Stream&& o) noexcept : device_(o.device_), handle_(std::exchange(o.handle_, nullptr)) {}
  Stream& operator=(Stream&& o) noexcept {
    if (this != &o) {
      destroy();
      device_ = o.device_;
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { destroy(); }

  /// Waits until all work on the stream has finished.
  void synchronize() const {
    ContextGuard g(device_.context());
    driver().check(driver().stream_synchronize(handle_), "stream_synchronize",
                   "waiting for a stream of device " + std::to_string(device_.ordinal()));
  }
  void* handle() const { return handle_; }
  const Device& device() const { return device_; }
  operator StreamRef() const { return {handle_, device_.ordinal()}; }

 private:
  void destroy() noexcept {
    if (!handle_) return;
    ContextGuard g(device_.context());
    driver().stream_destroy(handle_);
    handle_ = nullptr;
  }
  Device device_;
  void* handle_ = nullptr;
};

/// An owned event, for timing and ordering. Movable, not copyable.
class Event {
 public:
  explicit Event(const Device& device = Device(0)) : device_(device) {
    ContextGuard g(device_.context());
    driver().check(driver().event_create(&handle_), "event_create",
                   "creating an event on device " + std::to_string(device_.ordinal()));
  }
  Event(Event&& o) noexcept : device_(o.device_), handle_(std::exchange(o.handle_, nullptr)) {}
  Event& operator=(Event&& o) noexcept {
    if (this != &o) {
      destroy();
      device_ = o.device_;
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { destroy(); }

  /// Records the event on `stream` (default: the default stream of the event's device).
  void record(StreamRef stream = {}) const {
    check_device(stream, "record");
    ContextGuard g(device_.context());
    driver().check(driver().event_record(handle_, stream.handle), "event_record");
  }
  void synchronize() const {
    ContextGuard g(device_.context());
    driver().check(driver().event_synchronize(handle_), "event_synchronize");
  }
  /// Milliseconds from `start` to this event (both recorded, on one device).
  float elapsed_ms_since(const Event& start) const {
    if (start.device_ != device_) {
      throw Error("kiln: cannot time between events of device " +
                  std::to_string(start.device_.ordinal()) + " and device " +
                  std::to_string(device_.ordinal()));
    }
    ContextGuard g(device_.context());
    float ms = 0;
    driver().check(driver().event_elapsed_ms(&ms, start.handle_, handle_), "event_elapsed_ms",
                   "timing between two events (were both recorded, and has the later finished?)");
    return ms;
  }
  void* handle() const { return handle_; }
  const Device& device() const { return device_; }

 private:
  void check_device(StreamRef s, const char* what) const {
    if (s.device >= 0 && s.device != device_.ordinal()) {
      throw Error(std::string("kiln: cannot ") + what + " an event of device " +
                  std::to_string(device_.ordinal()) + " on a stream of device " +
                  std::to_string(s.device));
    }
  }
  void destroy() noexcept {
    if (!handle_) return;
    ContextGuard g(device_.context());
    driver().event_destroy(handle_);
    handle_ = nullptr;
  }
  Device device_;
  void* handle_ = nullptr;
};

}  // namespace kiln::rt
