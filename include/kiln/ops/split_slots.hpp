#pragma once
/// The slots of split row ops (softmax's and the norms' `split` configs): 64-bit words in
/// global memory through which the blocks of a persistent grid exchange the sums of a
/// row's slices. Each launch needs its words zeroed before it starts (a zero word is one
/// no block has written yet); kiln keeps one buffer a stream and device for the calls on
/// that stream, and a lock that keeps it one launch's until that launch is queued:
///
///   kiln::ops::SplitSlots s = kiln::ops::split_slots(device, stream, words, "softmax");
///   launch(..., s.data);   // while s.lock is held
///
/// (Kernel factories' tuning runs keep buffers of their own and zero them with
/// zeroed_slots.)

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "../error.hpp"
#include "../rt/memory.hpp"
#include "../rt/stream.hpp"

namespace kiln::ops {

/// The first `words` words of `slots`, zeroed on `stream` (queued: the words' zeros then
/// mark what this launch's blocks have not written yet). `what` names the op in errors.
inline std::uint64_t* zeroed_slots(rt::DeviceBuffer<std::uint64_t>& slots, std::size_t words,
                                   rt::StreamRef stream, const std::string& what) {
  if (slots.size() < words) {
    throw Error("kiln: " + what + ": a split launch needs " + std::to_string(words) +
                " slot words, but its buffer holds " + std::to_string(slots.size()));
  }
  rt::ContextGuard g(slots.device().context());
  rt::driver().check(rt::driver().fill_bytes(slots.address(), 0, words * 8, stream.handle),
                     "fill_bytes", "zeroing the slots of a split " + what);
  return slots.data();
}

/// Slots zeroed for one split launch, and the lock that keeps them that launch's until it
/// is queued (split_slots).
struct SplitSlots {
  std::unique_lock<std::mutex> lock;
  std::uint64_t* data = nullptr;
};

/// kiln's slots for a split launch of `words` words on `stream` of `device`, zeroed on the
/// stream: one buffer a stream and device, kept for the process (a stream destroyed leaves
/// its buffer, 8 bytes a slice of the largest call, until the process ends) and grown as
/// needed. Calls on one stream share it, in stream order; while the returned lock is held
/// no other call zeroes or replaces it, so the caller launches before it lets the lock go
/// (two host threads on one stream would otherwise zero it twice and launch twice, the
/// second launch taking the first's sums). `what` names the op in errors.
inline SplitSlots split_slots(const rt::Device& device, rt::StreamRef stream, std::size_t words,
                              const std::string& what) {
  static std::mutex mutex;
  static std::map<std::pair<int, void*>, std::unique_ptr<rt::DeviceBuffer<std::uint64_t>>> slots;
  if (stream.device >= 0 && stream.device != device.ordinal()) {
    throw Error("kiln: " + what + ": the stream belongs to device " +
                std::to_string(stream.device) + ", the output to device " +
                std::to_string(device.ordinal()));
  }
  SplitSlots out{std::unique_lock<std::mutex>(mutex), nullptr};
  auto& buffer = slots[{device.ordinal(), stream.handle}];
  if (!buffer || buffer->size() < words) {
    if (buffer) {  // the launches queued before may still read the old buffer (rare: the
                   // lock is held meanwhile)
      rt::ContextGuard g(device.context());
      rt::driver().check(rt::driver().stream_synchronize(stream.handle), "stream_synchronize",
                         "before growing the slots of a split " + what);
    }
    buffer = std::make_unique<rt::DeviceBuffer<std::uint64_t>>(
        std::max(words, buffer ? 2 * buffer->size() : std::size_t(0)), device);
  }
  out.data = zeroed_slots(*buffer, words, stream, what);
  return out;
}

}  // namespace kiln::ops
