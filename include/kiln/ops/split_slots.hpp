#pragma once
/// The slots of split row ops (softmax's and the norms' `split` configs): 64-bit words in
/// global memory through which the blocks of a persistent grid exchange the sums of a
/// row's slices. Each launch needs its words zeroed before it starts (a zero word is one
/// no block has written yet); kiln keeps one buffer a stream handle and device for the
/// calls on that stream, and a lock that keeps it one launch's until that launch is queued:
///
///   kiln::ops::SplitSlots s = kiln::ops::split_slots(device, stream, words, "softmax");
///   launch(..., s.data());   // then s goes out of scope: the launch is recorded as the
///                            // buffer's last use, and the lock released
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
#include <vector>

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

namespace detail {

/// A slot buffer and the event recorded after the last launch that used it.
struct SlotBuffer {
  std::unique_ptr<rt::DeviceBuffer<std::uint64_t>> words;
  std::unique_ptr<rt::Event> last_use;  ///< null until a launch has used the buffer
};

/// kiln's slot buffers (split_slots) and the lock over them.
struct SlotCache {
  std::mutex mutex;
  std::map<std::pair<int, void*>, SlotBuffer> buffers;  ///< by (device, stream handle)
  /// Buffers replaced by larger ones, freed once their last use has finished (kept, never
  /// freed, where that is unknown); and those captured into graphs, kept for the process.
  std::vector<SlotBuffer> retired, captured;

  static SlotCache& get() {
    static SlotCache cache;
    return cache;
  }
  /// Frees the retired buffers whose last use has finished (the lock held).
  void free_finished() {
    std::erase_if(retired, [](const SlotBuffer& b) {
      if (!b.last_use) return false;
      rt::ContextGuard g(b.words->device().context());
      return rt::driver().event_query(b.last_use->handle()) == 0;
    });
  }
};

}  // namespace detail

/// Slots zeroed for one split launch (data()), holding kiln's slot lock until it is
/// destroyed: launch with data() before then. Its destructor records the launch as the
/// buffer's last use (on the stream it was zeroed on), which the next launch to zero the
/// buffer waits for, on whatever stream it runs.
class SplitSlots {
 public:
  SplitSlots() = default;
  SplitSlots(std::unique_lock<std::mutex> lock, std::uint64_t* data, detail::SlotBuffer* buffer,
             rt::StreamRef stream)
      : lock_(std::move(lock)), data_(data), buffer_(buffer), stream_(stream) {}
  SplitSlots(SplitSlots&& o) noexcept
      : lock_(std::move(o.lock_)),
        data_(std::exchange(o.data_, nullptr)),
        buffer_(std::exchange(o.buffer_, nullptr)),
        stream_(o.stream_) {}
  SplitSlots& operator=(SplitSlots&& o) noexcept {
    if (this != &o) {
      release();
      lock_ = std::move(o.lock_);
      data_ = std::exchange(o.data_, nullptr);
      buffer_ = std::exchange(o.buffer_, nullptr);
      stream_ = o.stream_;
    }
    return *this;
  }
  SplitSlots(const SplitSlots&) = delete;
  SplitSlots& operator=(const SplitSlots&) = delete;
  ~SplitSlots() { release(); }

  /// The zeroed words (null from a default-constructed SplitSlots).
  std::uint64_t* data() const { return data_; }

 private:
  void release() noexcept {
    if (buffer_) {
      bool recorded = false;
      try {
        rt::ContextGuard g(buffer_->words->device().context());
        recorded = rt::driver().event_record(buffer_->last_use->handle(), stream_.handle) == 0;
      } catch (...) {
      }
      if (!recorded) {
        // Its last use unknown, the buffer is neither reused nor freed.
        detail::SlotCache& cache = detail::SlotCache::get();
        for (auto it = cache.buffers.begin(); it != cache.buffers.end(); ++it) {
          if (&it->second != buffer_) continue;
          cache.retired.push_back({std::move(it->second.words), nullptr});
          cache.buffers.erase(it);
          break;
        }
      }
      buffer_ = nullptr;
    }
    data_ = nullptr;
    if (lock_.owns_lock()) lock_.unlock();
  }

  std::unique_lock<std::mutex> lock_;
  std::uint64_t* data_ = nullptr;
  detail::SlotBuffer* buffer_ = nullptr;
  rt::StreamRef stream_{};
};

/// kiln's slots for a split launch of `words` words on `stream` of `device`, zeroed on the
/// stream. One buffer a stream handle and device, kept for the process and grown as needed
/// (the one it replaces is freed once its last launch has finished); before zeroing it, the
/// stream waits for the launch that used it last, on whatever stream (a stream destroyed
/// and its handle reused, or the per-thread default stream of another thread, shares a
/// handle). While the returned SplitSlots lives, no other call zeroes or replaces it: the
/// caller launches before letting it go. A stream being captured into a graph gets a
/// buffer of its own, kept for the process (the graph's launches use it). `what` names the
/// op in errors.
inline SplitSlots split_slots(const rt::Device& device, rt::StreamRef stream, std::size_t words,
                              const std::string& what) {
  if (stream.device >= 0 && stream.device != device.ordinal()) {
    throw Error("kiln: " + what + ": the stream belongs to device " +
                std::to_string(stream.device) + ", the output to device " +
                std::to_string(device.ordinal()));
  }
  detail::SlotCache& cache = detail::SlotCache::get();
  std::unique_lock<std::mutex> lock(cache.mutex);
  rt::ContextGuard g(device.context());
  cache.free_finished();
  int capturing = 0;
  if (rt::driver().stream_is_capturing) {
    rt::driver().check(rt::driver().stream_is_capturing(stream.handle, &capturing),
                       "stream_is_capturing", "before a split " + what);
  }
  if (capturing) {
    auto buffer = std::make_unique<rt::DeviceBuffer<std::uint64_t>>(words, device);
    std::uint64_t* data = zeroed_slots(*buffer, words, stream, what);
    cache.captured.push_back({std::move(buffer), nullptr});
    return SplitSlots(std::move(lock), data, nullptr, stream);
  }
  detail::SlotBuffer& b = cache.buffers[{device.ordinal(), stream.handle}];
  if (!b.words || b.words->size() < words) {
    auto grown = std::make_unique<rt::DeviceBuffer<std::uint64_t>>(
        std::max(words, b.words ? 2 * b.words->size() : std::size_t(0)), device);
    if (b.words) cache.retired.push_back({std::move(b.words), std::move(b.last_use)});
    b.words = std::move(grown);
  }
  if (b.last_use) {
    rt::driver().check(rt::driver().stream_wait_event(stream.handle, b.last_use->handle()),
                       "stream_wait_event", "ordering a split " + what + " after the last");
  } else {
    b.last_use = std::make_unique<rt::Event>(device);
  }
  std::uint64_t* data = zeroed_slots(*b.words, words, stream, what);
  return SplitSlots(std::move(lock), data, &b, stream);
}

}  // namespace kiln::ops
