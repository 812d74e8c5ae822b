#pragma once
/// A memo for values that are expensive to make (a kernel: tuned, compiled, loaded): a hit
/// costs a hash and a shared lock; many threads asking for one key at once make it once
/// (the others wait); different keys are made in parallel; a failed make is not kept, so
/// a later call tries again. Values live as long as the memo, even when replaced.

#include <future>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kiln::factory::detail {

template <class Key, class Value, class Hash, class Equal>
class Memo {
 public:
  /// The value of `key` if it is made, else null.
  const Value* find(const Key& key) const {
    std::shared_lock lock(mutex_);
    auto it = map_.find(key);
    return it != map_.end() && it->second.value ? it->second.value.get() : nullptr;
  }

  /// The value of `key`, made by `make()` (returning std::shared_ptr<const Value>) if no
  /// thread has made it. With `replace`, it is made again even if it was made: the earlier
  /// value stays what find() and get() return until the new one is made, and stays if the
  /// new make fails (the error then reaches only this caller). A replace that finds a make
  /// in progress waits for it, then makes its own.
  template <class Make>
  const Value& get(const Key& key, Make&& make, bool replace = false) {
    if (!replace) {
      if (const Value* v = find(key)) return *v;
    }
    for (;;) {
      std::promise<const Value*> promise;
      std::shared_future<const Value*> pending;
      {
        std::unique_lock lock(mutex_);
        auto it = map_.find(key);
        if (it != map_.end() && it->second.value && !replace) return *it->second.value;
        if (it != map_.end() && it->second.pending.valid()) {
          pending = it->second.pending;  // someone is making it
        } else {
          map_[key].pending = promise.get_future().share();
        }
      }
      if (pending.valid()) {
        if (!replace) return *pending.get();  // rethrows the maker's error
        try {
          pending.get();
        } catch (...) {  // that make's error is its caller's; make ours
        }
        continue;
      }
      try {
        std::shared_ptr<const Value> made = make();
        const Value* raw = made.get();
        {
          std::unique_lock lock(mutex_);
          Slot& slot = map_[key];
          if (slot.value) retired_.push_back(std::move(slot.value));
          slot.value = std::move(made);
          slot.pending = {};
        }
        promise.set_value(raw);
        return *raw;
      } catch (...) {
        promise.set_exception(std::current_exception());
        std::unique_lock lock(mutex_);
        auto it = map_.find(key);
        if (it != map_.end()) {
          if (it->second.value) {
            it->second.pending = {};  // a failed replace: the earlier value stays
          } else {
            map_.erase(it);
          }
        }
        throw;
      }
    }
  }

  std::size_t size() const {
    std::shared_lock lock(mutex_);
    return map_.size();
  }

 private:
  struct Slot {
    std::shared_ptr<const Value> value;        // null until first made
    std::shared_future<const Value*> pending;  // valid while a make is in progress
  };
  mutable std::shared_mutex mutex_;
  std::unordered_map<Key, Slot, Hash, Equal> map_;
  std::vector<std::shared_ptr<const Value>> retired_;  // replaced values outlive the replace
};

}  // namespace kiln::factory::detail
