#pragma once
/// Saving and restoring the device memory a call's arguments may write, so that a factory
/// can time candidates on the arguments of the call that asked for the kernel (as Triton's
/// restore_value does) without leaving the call's outputs or in-place inputs clobbered.
///
///   ArgumentSnapshot saved(device);
///   saved.take(args...);      // copies of every writable buffer and tensor argument
///   ... candidates run on args ...
///   saved.restore();          // the arguments as they were
///
/// What is saved: every rt::DeviceBuffer argument (its whole size), and every typed tensor
/// view with non-const elements (the span its sizes and strides reach). Raw pointers carry
/// no size and are not saved: pass outputs that a kernel also reads as buffers or tensor
/// views. Read-only tensor views are not saved.

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../../dims/tensor.hpp"
#include "../../rt/device.hpp"
#include "../../rt/memory.hpp"

namespace kiln::factory::detail {

template <class T>
struct IsWritableView : std::false_type {};
template <class T, class... Es>
struct IsWritableView<BasicTensor<T, NoSwizzle, Es...>> : std::bool_constant<!std::is_const_v<T>> {
};

/// The bytes a tensor view reaches from its data pointer: one past its largest offset.
template <class View>
std::size_t view_span_bytes(const View& v) {
  constexpr int rank = View::layout_type::rank;
  int sizes[rank] = {}, strides[rank] = {};
  v.to_arrays(sizes, strides);
  std::size_t last = 0;
  for (int i = 0; i < rank; ++i) {
    if (sizes[i] <= 0) return 0;
    last += std::size_t(sizes[i] - 1) * std::size_t(strides[i] < 0 ? 0 : strides[i]);
  }
  return (last + 1) * sizeof(typename View::element_type);
}

class ArgumentSnapshot {
 public:
  explicit ArgumentSnapshot(const rt::Device& device) : device_(device) {}
  ArgumentSnapshot(const ArgumentSnapshot&) = delete;
  ArgumentSnapshot& operator=(const ArgumentSnapshot&) = delete;

  /// Copies the writable memory of `args` aside (once; later calls do nothing) and waits
  /// for the copies.
  template <class... Args>
  void take(const Args&... args) {
    if (taken_) return;
    taken_ = true;
    (save(args), ...);
    sync();
  }
  bool taken() const { return taken_; }
  /// Copies everything taken back where it came from, and waits for the copies.
  void restore() {
    for (const auto& s : saved_) copy(s.address, s.copy->address(), s.copy->size());
    sync();
  }

 private:
  struct Saved {
    std::uint64_t address;
    std::unique_ptr<rt::DeviceBuffer<unsigned char>> copy;
  };

  template <class A>
  void save(const A& a) {
    using T = std::remove_cvref_t<A>;
    if constexpr (rt::is_device_buffer<T>) {
      save_range(a.address(), a.size() * sizeof(*a.data()));
    } else if constexpr (IsWritableView<T>::value) {
      save_range(std::uint64_t(reinterpret_cast<std::uintptr_t>(a.data())), view_span_bytes(a));
    }
  }
  void save_range(std::uint64_t address, std::size_t bytes) {
    if (address == 0 || bytes == 0) return;
    for (const auto& s : saved_) {
      if (s.address == address && s.copy->size() >= bytes) return;  // the same memory twice
    }
    auto copy = std::make_unique<rt::DeviceBuffer<unsigned char>>(bytes, device_);
    this->copy(copy->address(), address, bytes);
    saved_.push_back({address, std::move(copy)});
  }
  void copy(std::uint64_t dst, std::uint64_t src, std::size_t bytes) const {
    const rt::DriverApi& api = rt::driver();
    rt::ContextGuard g(device_.context());
    api.check(api.copy_device(dst, src, bytes, nullptr), "copy_device",
              "saving or restoring a kernel argument while tuning");
  }
  void sync() const {
    const rt::DriverApi& api = rt::driver();
    rt::ContextGuard g(device_.context());
    api.check(api.stream_synchronize(nullptr), "stream_synchronize");
  }

  rt::Device device_;
  bool taken_ = false;
  std::vector<Saved> saved_;
};

}  // namespace kiln::factory::detail
