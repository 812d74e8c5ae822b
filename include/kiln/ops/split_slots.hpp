#pragma once
/// The slots of split row ops (softmax's and the norms' `split` configs): 64-bit words in
/// global memory through which the blocks of a persistent grid exchange the sums of a
/// row's slices. A launch needs its words zero when it starts (a zero word is one no
/// block has written yet). kiln keeps two buffers a stream handle and device, used in
/// turns: a launch reads one and, as its blocks publish their words, zeroes the same words
/// of the other (the kernel's `next_slots`), which the next launch takes; so a call queues
/// no memset once the buffers are warm (on a stream whose split launches do not grow: a
/// launch of more words than the one before zeroes the difference). A lock keeps them one
/// launch's until that launch is queued:
///
///   kiln::ops::SplitSlots s = kiln::ops::split_slots(device, stream, words, "softmax");
///   launch(..., s.data(), s.next());
///   s.launched();   // then s goes out of scope: the launch is recorded as the buffers'
///                   // last use, the turn passes, and the lock is released
///
/// (Kernel factories' tuning runs keep pairs of their own: TuningSlots.)

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
/// mark what this launch's blocks have not written yet); those before `from` are left,
/// already zero. `what` names the op in errors.
inline std::uint64_t* zeroed_slots(rt::DeviceBuffer<std::uint64_t>& slots, std::size_t words,
                                   rt::StreamRef stream, const std::string& what,
                                   std::size_t from = 0) {
  if (slots.size() < words) {
    throw Error("kiln: " + what + ": a split launch needs " + std::to_string(words) +
                " slot words, but its buffer holds " + std::to_string(slots.size()));
  }
  if (from >= words) return slots.data();
  rt::ContextGuard g(slots.device().context());
  rt::driver().check(
      rt::driver().fill_bytes(slots.address() + from * 8, 0, (words - from) * 8, stream.handle),
      "fill_bytes", "zeroing the slots of a split " + what);
  return slots.data();
}

/// Which of two slot buffers a split launch takes, and how many leading words of each are
/// known to be zero (host bookkeeping alone; SlotPair holds the buffers). A launch of
/// `words` words reads the first `words` of its buffer, which must be zero, and zeroes the
/// first `words` of the other: after it those are zero and its own are not, and the turn
/// passes.
class SlotTurns {
 public:
  /// The buffer the next launch takes: 0 or 1.
  int turn() const { return turn_; }
  /// Whether the first `words` words of the turn's buffer must be zeroed before the launch.
  bool needs_zeroing(std::size_t words) const { return zeroed_[turn_] < words; }
  /// The leading words of the turn's buffer known to be zero.
  std::size_t known_zero() const { return zeroed_[turn_]; }
  /// They were zeroed (queued on the launch's stream, before it).
  void zeroed(std::size_t words) { zeroed_[turn_] = std::max(zeroed_[turn_], words); }
  /// A launch of `words` words was queued, reading the turn's buffer and zeroing the
  /// other's first `words`; the turn passes.
  void launched(std::size_t words) {
    zeroed_[1 - turn_] = std::max(zeroed_[1 - turn_], words);
    zeroed_[turn_] = 0;
    turn_ = 1 - turn_;
  }
  /// Nothing is known zero any more (a launch that may or may not have been queued).
  void forget() { zeroed_[0] = zeroed_[1] = 0; }

 private:
  std::size_t zeroed_[2] = {0, 0};
  int turn_ = 0;
};

/// Two slot buffers of `size()` words on one device, used in turns (SlotTurns): take()
/// gives a launch its slots (their words past those known zero zeroed on the launch's
/// stream) and the other buffer as its `next_slots`; launched() passes the turn, forget()
/// follows a launch that may not have been queued. Launches must be ordered one after
/// another (one stream, or events between streams). A launch of more words than the one
/// before zeroes the difference; launches of one size queue no memset after the first.
class SlotPair {
 public:
  SlotPair(std::size_t words, const rt::Device& device) : a_(words, device), b_(words, device) {}
  std::size_t size() const { return a_.size(); }
  const rt::Device& device() const { return a_.device(); }

  /// The slots and next slots of a launch of `words` words on `stream`. `what` names the
  /// op in errors.
  std::pair<std::uint64_t*, std::uint64_t*> take(std::size_t words, rt::StreamRef stream,
                                                 const std::string& what) {
    // (Fewer words than a launch needs are never known zero: zeroed_slots throws.)
    if (turns_.needs_zeroing(words)) {
      zeroed_slots(own_buffer(), words, stream, what, turns_.known_zero());
      turns_.zeroed(words);
    }
    return {own_buffer().data(), next_buffer().data()};
  }
  /// The buffers the next take() gives: its slots, and its next slots.
  rt::DeviceBuffer<std::uint64_t>& own_buffer() { return turns_.turn() == 0 ? a_ : b_; }
  rt::DeviceBuffer<std::uint64_t>& next_buffer() { return turns_.turn() == 0 ? b_ : a_; }
  /// The launch of the last take() of `words` words was queued.
  void launched(std::size_t words) { turns_.launched(words); }
  /// The launch of the last take() may not have been queued.
  void forget() { turns_.forget(); }

 private:
  rt::DeviceBuffer<std::uint64_t> a_, b_;
  SlotTurns turns_;
};

/// The slot pairs of a tuning run, one a word count: candidates timed in turn on one pair
/// would each zero words for the next launch of another, and those of more words than the
/// one before would queue a memset every time, which a call of one shape does not.
class TuningSlots {
 public:
  explicit TuningSlots(const rt::Device& device) : device_(device) {}
  /// Calls `launch(slots, next_slots)`, which queues a split launch of `words` words on
  /// `stream`, with the words' pair in turns. `what` names the op in errors.
  template <class Launch>
  void launch(std::size_t words, rt::StreamRef stream, const std::string& what, Launch&& launch) {
    std::unique_ptr<SlotPair>& pair = pairs_[words];
    if (!pair) pair = std::make_unique<SlotPair>(words, device_);
    const auto slots = pair->take(words, stream, what);
    try {
      launch(slots.first, slots.second);
    } catch (...) {
      pair->forget();
      throw;
    }
    pair->launched(words);
  }

 private:
  rt::Device device_;
  std::map<std::size_t, std::unique_ptr<SlotPair>> pairs_;
};

namespace detail {

/// A pair of slot buffers and the event recorded after the last launch that used them.
struct SlotBuffer {
  std::unique_ptr<SlotPair> pair;
  std::unique_ptr<rt::Event> last_use;  ///< null until a launch has used the buffers
};

/// kiln's slot buffers (split_slots) and the lock over them.
struct SlotCache {
  std::mutex mutex;
  std::map<std::pair<int, void*>, SlotBuffer> buffers;  ///< by (device, stream handle)
  /// Pairs replaced by larger ones, freed once their last use has finished (kept, never
  /// freed, where that is unknown); and buffers captured into graphs, kept for the process.
  std::vector<SlotBuffer> retired;
  std::vector<std::unique_ptr<rt::DeviceBuffer<std::uint64_t>>> captured;

  static SlotCache& get() {
    static SlotCache cache;
    return cache;
  }
  /// Frees the retired pairs whose last use has finished (the lock held).
  void free_finished() {
    std::erase_if(retired, [](const SlotBuffer& b) {
      if (!b.last_use) return false;
      rt::ContextGuard g(b.pair->device().context());
      return rt::driver().event_query(b.last_use->handle()) == 0;
    });
  }
};

}  // namespace detail

/// Slots for one split launch (data(), and next() for the kernel's next_slots), holding
/// kiln's slot lock until it is destroyed: launch with them before then, and call
/// launched() once the launch is queued. Its destructor records the launch as the buffers'
/// last use (on the stream it was taken for), which the next launch to take them waits
/// for, on whatever stream it runs; without launched() nothing of the buffers is assumed
/// zero any more.
class SplitSlots {
 public:
  SplitSlots() = default;
  SplitSlots(std::unique_lock<std::mutex> lock, std::pair<std::uint64_t*, std::uint64_t*> words,
             std::size_t count, detail::SlotBuffer* buffer, rt::StreamRef stream)
      : lock_(std::move(lock)),
        data_(words.first),
        next_(words.second),
        count_(count),
        buffer_(buffer),
        stream_(stream) {}
  SplitSlots(SplitSlots&& o) noexcept { take_from(o); }
  SplitSlots& operator=(SplitSlots&& o) noexcept {
    if (this != &o) {
      release();
      take_from(o);
    }
    return *this;
  }
  SplitSlots(const SplitSlots&) = delete;
  SplitSlots& operator=(const SplitSlots&) = delete;
  ~SplitSlots() { release(); }

  /// The zeroed words (null from a default-constructed SplitSlots).
  std::uint64_t* data() const { return data_; }
  /// The words the launch zeroes for the next one (null where there is none: a stream
  /// being captured, whose buffer is zeroed in the graph before each launch).
  std::uint64_t* next() const { return next_; }
  /// The launch was queued.
  void launched() { launched_ = true; }

 private:
  void take_from(SplitSlots& o) noexcept {
    lock_ = std::move(o.lock_);
    data_ = std::exchange(o.data_, nullptr);
    next_ = std::exchange(o.next_, nullptr);
    count_ = std::exchange(o.count_, 0);
    buffer_ = std::exchange(o.buffer_, nullptr);
    stream_ = o.stream_;
    launched_ = std::exchange(o.launched_, false);
  }
  void release() noexcept {
    if (buffer_) {
      if (launched_) {
        buffer_->pair->launched(count_);
      } else {
        buffer_->pair->forget();
      }
      bool recorded = false;
      try {
        rt::ContextGuard g(buffer_->pair->device().context());
        recorded = rt::driver().event_record(buffer_->last_use->handle(), stream_.handle) == 0;
      } catch (...) {
      }
      if (!recorded) {
        // Its last use unknown, the pair is neither reused nor freed.
        detail::SlotCache& cache = detail::SlotCache::get();
        for (auto it = cache.buffers.begin(); it != cache.buffers.end(); ++it) {
          if (&it->second != buffer_) continue;
          cache.retired.push_back({std::move(it->second.pair), nullptr});
          cache.buffers.erase(it);
          break;
        }
      }
      buffer_ = nullptr;
    }
    data_ = next_ = nullptr;
    launched_ = false;
    if (lock_.owns_lock()) lock_.unlock();
  }

  std::unique_lock<std::mutex> lock_;
  std::uint64_t* data_ = nullptr;
  std::uint64_t* next_ = nullptr;
  std::size_t count_ = 0;
  detail::SlotBuffer* buffer_ = nullptr;
  rt::StreamRef stream_{};
  bool launched_ = false;
};

/// kiln's slots for a split launch of `words` words on `stream` of `device`. Two buffers a
/// stream handle and device (SlotPair), kept for the process and grown as needed (the pair
/// it replaces is freed once its last launch has finished); before the launch takes them,
/// the stream waits for the launch that used them last, on whatever stream (a stream
/// destroyed and its handle reused, or the per-thread default stream of another thread,
/// shares a handle), and where the words of its buffer are not known zero they are zeroed
/// on the stream. While the returned SplitSlots lives, no other call takes or replaces
/// them: the caller launches, calls launched(), and lets it go. A stream being captured
/// into a graph gets a buffer of its own, zeroed in the graph, kept for the process, and
/// no next slots. `what` names the op in errors.
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
  // Launches in a graph replay with the same arguments, so they cannot take turns: they
  // need to be told apart.
  if (!rt::driver().stream_is_capturing) {
    throw Error("kiln: " + what + ": split rows need the driver to say whether a stream is " +
                "being captured (cuStreamIsCapturing / hipStreamIsCapturing), which this one " +
                "does not; use a newer driver, or a config of another strategy");
  }
  int capturing = 0;
  rt::driver().check(rt::driver().stream_is_capturing(stream.handle, &capturing),
                     "stream_is_capturing", "before a split " + what);
  if (capturing) {
    auto buffer = std::make_unique<rt::DeviceBuffer<std::uint64_t>>(words, device);
    std::uint64_t* data = zeroed_slots(*buffer, words, stream, what);
    cache.captured.push_back(std::move(buffer));
    return SplitSlots(std::move(lock), {data, nullptr}, words, nullptr, stream);
  }
  detail::SlotBuffer& b = cache.buffers[{device.ordinal(), stream.handle}];
  if (!b.pair || b.pair->size() < words) {
    auto grown = std::make_unique<SlotPair>(
        std::max(words, b.pair ? 2 * b.pair->size() : std::size_t(0)), device);
    if (b.pair) cache.retired.push_back({std::move(b.pair), std::move(b.last_use)});
    b.pair = std::move(grown);
  }
  if (b.last_use) {
    rt::driver().check(rt::driver().stream_wait_event(stream.handle, b.last_use->handle()),
                       "stream_wait_event", "ordering a split " + what + " after the last");
  } else {
    b.last_use = std::make_unique<rt::Event>(device);
  }
  const auto slots = b.pair->take(words, stream, what);
  return SplitSlots(std::move(lock), slots, words, &b, stream);
}

}  // namespace kiln::ops
