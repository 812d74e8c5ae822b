#pragma once
/// The in-process profiler: every launch through kiln is recorded while a session runs.
///
///   kiln::prof::Session session;              // events backend (or Backend::cupti)
///   ... launches ...
///   kiln::prof::Profile p = session.finish();
///   std::puts(kiln::prof::top_table(p).c_str());
///
/// The CUPTI backend asks CUPTI for exact start and end times and also sees kernels kiln
/// did not launch (cuBLAS, cuDNN); the events backend brackets each launch with two device
/// events on its stream. By default (Backend::automatic) kiln uses CUPTI where it loads and
/// events elsewhere; KILN_PROFILE_BACKEND=events|cupti picks one where the program does not.
/// If CUPTI was asked for and cannot be used, kiln says why once and uses events.

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "../detail/enum_names.hpp"
#include "../detail/environment.hpp"
#include "../rt/launch.hpp"
#include "../rt/observer.hpp"
#include "cupti.hpp"
#include "record.hpp"
#include "registry.hpp"

namespace kiln::prof {

enum class Backend {
  events,     ///< two device events around each launch
  cupti,      ///< CUPTI's kernel activity records
  automatic,  ///< CUPTI where it can be used, else events (without a warning)
};

/// The backends' names, as KILN_PROFILE_BACKEND spells them.
inline constexpr auto backend_names = kiln::detail::enum_names<Backend>(
    {{Backend::automatic, "auto"}, {Backend::events, "events"}, {Backend::cupti, "cupti"}});

/// "auto", "events" or "cupti".
inline const char* to_string(Backend b) {
  return backend_names.name(b);
}

/// The backend KILN_PROFILE_BACKEND asks for (automatic when unset); throws on other values.
inline Backend backend_from_environment() {
  return kiln::detail::env_choice("KILN_PROFILE_BACKEND", backend_names, "a profiler backend")
      .value_or(Backend::automatic);
}

namespace detail {

// A launch seen by the profiler, kept small: the launch path pays for every byte.
struct Pending {
  rt::Function function;  // keeps the module alive until the record is resolved
  rt::LaunchConfig config{{1}, {1}};
  std::uint32_t info = 0;  // index into the profiler's interned LaunchInfos (0: none)
  bool failed = false;
  double host_us = 0;
  double host_launch_us = 0;
  void* start = nullptr;  // events backend
  void* end = nullptr;
  std::unique_ptr<KernelRecord> record;  // once timed (events returned to the pool)
};

// CUPTI's kernel records, joined to kiln's launches by device, kernel name and launch
// shape, in launch order (CUPTI's correlation ids grow with every launch). What no launch
// takes was launched by someone else.
class CuptiJoin {
 public:
  explicit CuptiJoin(std::vector<CuptiKernel> kernels)
      : kernels_(std::move(kernels)), taken_(kernels_.size(), false) {
    for (std::size_t i = 0; i < kernels_.size(); ++i) {
      const CuptiKernel& k = kernels_[i];
      by_shape_[shape(int(k.device), k.name, k.grid, k.block)].push_back(i);
    }
  }

  /// The oldest record not yet taken of a launch of this shape, or nullptr.
  const CuptiKernel* take(int device, const std::string& name, const std::array<unsigned, 3>& grid,
                          const std::array<unsigned, 3>& block) {
    auto& queue = by_shape_[shape(device, name, grid, block)];
    if (queue.empty()) return nullptr;
    const std::size_t i = queue.front();
    queue.pop_front();
    taken_[i] = true;
    return &kernels_[i];
  }

  /// The records no launch took, in CUPTI's order.
  std::vector<const CuptiKernel*> unmatched() const {
    std::vector<const CuptiKernel*> out;
    for (std::size_t i = 0; i < kernels_.size(); ++i) {
      if (!taken_[i]) out.push_back(&kernels_[i]);
    }
    return out;
  }

 private:
  static std::string shape(int dev, const std::string& name, const std::array<unsigned, 3>& g,
                           const std::array<unsigned, 3>& b) {
    return std::to_string(dev) + "|" + name + "|" + std::to_string(g[0]) + "," +
           std::to_string(g[1]) + "," + std::to_string(g[2]) + "|" + std::to_string(b[0]) + "," +
           std::to_string(b[1]) + "," + std::to_string(b[2]);
  }

  std::vector<CuptiKernel> kernels_;
  std::vector<bool> taken_;
  std::map<std::string, std::deque<std::size_t>> by_shape_;
};

}  // namespace detail

/// The process's profiler. Use Session (or KILN_PROFILE) rather than this directly.
class Profiler final : public rt::LaunchObserver {
 public:
  static Profiler& instance() {
    static Profiler p;
    return p;
  }

  /// Starts recording. Throws if a session is already running.
  void start(Backend backend) {
    std::lock_guard lock(mutex_);
    if (running_) {
      throw Error(
          "kiln: a profiling session is already running (another Session, or the whole run's "
          "under KILN_PROFILE or kiln profile); finish it first, or check "
          "Profiler::instance().running() before starting one");
    }
    backend_ = backend;
    host_start_ = std::chrono::steady_clock::now();
    if (backend == Backend::cupti || backend == Backend::automatic) {
      try {
        cupti_ = std::make_unique<detail::Cupti>();
        backend_ = Backend::cupti;
      } catch (const Error& e) {
        if (backend == Backend::cupti && !warned_cupti_) {
          std::fprintf(stderr, "kiln: profiling with device events instead of CUPTI: %s\n",
                       e.what());
          warned_cupti_ = true;
        }
        backend_ = Backend::events;
      }
    }
    running_ = true;
    cupti_on_.store(backend_ == Backend::cupti, std::memory_order_relaxed);
    infos_.assign(1, rt::LaunchInfo{});
    info_index_.clear();
    rt::launch_observer().store(this, std::memory_order_release);
  }

  /// Stops recording and returns everything recorded since start(). The session ends even
  /// when resolving the records fails (the error is rethrown).
  Profile stop() {
    rt::launch_observer().store(nullptr, std::memory_order_release);
    cupti_on_.store(false, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    if (!running_) throw Error("kiln: no profiling session is running");
    running_ = false;
    Profile p;
    try {
      p = resolve_locked();
    } catch (...) {
      release_locked();
      throw;
    }
    release_locked();
    return p;
  }

  bool running() const {
    std::lock_guard lock(mutex_);
    return running_;
  }
  /// The backend in use (events where CUPTI was asked for but could not be used).
  Backend backend() const {
    std::lock_guard lock(mutex_);
    return backend_;
  }

  // With events, tokens are record ids (odd numbers), not pointers: a session may end (and
  // its records go) between another thread's before_launch and after_launch. With CUPTI,
  // before_launch only hands the LaunchInfo (an even pointer) to after_launch, which records
  // the launch: one lock per launch.
  void* before_launch(const rt::Function& f, const rt::LaunchConfig& c,
                      const rt::LaunchInfo* info) override {
    if (cupti_on_.load(std::memory_order_relaxed)) return const_cast<rt::LaunchInfo*>(info);
    std::lock_guard lock(mutex_);
    if (!running_ || backend_ != Backend::events) return nullptr;
    const std::uint64_t id = first_id_ + pending_.size();
    detail::Pending& p = add_pending(f, c, info);
    p.host_us = host_now_us();
    const int dev = f.device().ordinal();
    ensure_base_event(dev);
    p.start = take_event(dev);
    p.end = take_event(dev);
    rt::driver().event_record(p.start, c.stream.handle);
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id << 1 | 1));  // odd: an id
  }
  void after_launch(const rt::Function& f, const rt::LaunchConfig& c, void* token,
                    double host_us) override {
    if (cupti_on_.load(std::memory_order_relaxed)) {
      // An odd token is an events session's id: that session ended since before_launch.
      if (reinterpret_cast<std::uintptr_t>(token) & 1) return;
      // host_start_ is safe to read unlocked: start() sets it before it installs the observer
      // (a release store this launch's acquire load of the observer saw).
      const double now = host_now_us();
      std::lock_guard lock(mutex_);
      if (!running_ || backend_ != Backend::cupti) return;
      detail::Pending& p = add_pending(f, c, static_cast<const rt::LaunchInfo*>(token));
      p.host_us = now - host_us;
      p.host_launch_us = host_us;
      return;
    }
    std::lock_guard lock(mutex_);
    detail::Pending* p = find(token);
    if (!p) return;
    p->host_launch_us = host_us;
    rt::driver().event_record(p->end, p->config.stream.handle);
  }
  void launch_failed(void* token) override {
    if (cupti_on_.load(std::memory_order_relaxed)) return;  // CUPTI: nothing was recorded
    std::lock_guard lock(mutex_);
    detail::Pending* p = find(token);
    if (!p) return;
    p->failed = true;
  }

 private:
  Profiler() = default;

  void release_locked() noexcept {
    cupti_.reset();
    for (auto& [device, events] : free_events_) {
      try {
        rt::ContextGuard g(rt::Device(device).context());
        for (void* e : events) rt::driver().event_destroy(e);
        if (base_events_.count(device)) rt::driver().event_destroy(base_events_[device].first);
      } catch (...) {
      }
    }
    free_events_.clear();
    base_events_.clear();
    first_id_ += pending_.size();
    pending_.clear();
    harvested_ = 0;
  }

  static double since_us(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  double host_now_us() const { return since_us(host_start_); }

  // A launch's LaunchInfo is copied once per distinct content: a factory's kernels hand the
  // same object to every launch, so the launch path compares instead of allocating.
  std::uint32_t intern(const rt::LaunchInfo* info) {
    if (!info) return 0;
    auto [it, fresh] = info_index_.try_emplace(info, 0u);
    if (!fresh) {
      const rt::LaunchInfo& known = infos_[it->second];
      if (known.params == info->params && known.config == info->config &&
          known.bytes == info->bytes && known.flops == info->flops) {
        return it->second;
      }
    }
    infos_.push_back(*info);
    it->second = std::uint32_t(infos_.size() - 1);
    return it->second;
  }
  detail::Pending& add_pending(const rt::Function& f, const rt::LaunchConfig& c,
                               const rt::LaunchInfo* info) {
    detail::Pending& p = pending_.emplace_back();
    p.function = f;
    p.config = c;
    p.info = intern(info);
    return p;
  }

  detail::Pending* find(void* token) {
    const auto bits = reinterpret_cast<std::uintptr_t>(token);
    if (!(bits & 1)) return nullptr;  // not an id (a CUPTI session's token, or none)
    const auto id = static_cast<std::uint64_t>(bits >> 1);
    if (!running_ || id < first_id_ || id - first_id_ >= pending_.size()) return nullptr;
    return &pending_[std::size_t(id - first_id_)];
  }

  // Times the oldest launches whose end event has completed and returns their events to
  // the pool, so a long session reuses a bounded number of events.
  void harvest() {
    while (harvested_ < pending_.size()) {
      detail::Pending& p = pending_[harvested_];
      if (!p.failed) {
        if (!p.end) break;  // launched, end not recorded yet
        rt::ContextGuard g(p.function.device().context());
        if (rt::driver().event_query(p.end) != 0) break;
        time_with_events(p);
      }
      ++harvested_;
    }
  }
  void time_with_events(detail::Pending& p) {
    p.record = std::make_unique<KernelRecord>(describe(p));
    const int dev = p.record->device;
    auto [base, base_host] = base_events_[dev];
    float from_base = 0, dur = 0;
    rt::driver().event_synchronize(p.end);
    rt::driver().event_elapsed_ms(&from_base, base, p.start);
    rt::driver().event_elapsed_ms(&dur, p.start, p.end);
    p.record->start_us = base_host + double(from_base) * 1e3;
    p.record->end_us = p.record->start_us + double(dur) * 1e3;
    free_events_[dev].push_back(p.start);
    free_events_[dev].push_back(p.end);
    p.start = p.end = nullptr;
    p.function = rt::Function();  // let its module go
  }

  void* take_event(int dev) {
    auto& pool = free_events_[dev];
    if (pool.empty()) harvest();
    if (!pool.empty()) {
      void* e = pool.back();
      pool.pop_back();
      return e;
    }
    void* e = nullptr;
    rt::driver().check(rt::driver().event_create(&e), "event_create", "making a profiler event");
    return e;
  }
  // A reference event per device, and the host time it was recorded at: device times are
  // measured from it and placed on the session's host clock.
  void ensure_base_event(int dev) {
    if (base_events_.count(dev)) return;
    void* e = take_event(dev);
    rt::driver().event_record(e, nullptr);
    double at =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - host_start_)
            .count();
    base_events_[dev] = {e, at};
  }

  // Turns the session's launches into a Profile: wait for the devices, join CUPTI's
  // records to kiln's launches, add the kernels others launched, describe the devices.
  Profile resolve_locked() {
    Profile out;
    out.backend = to_string(backend_ == Backend::cupti ? Backend::cupti : Backend::events);
    std::set<int> devices = devices_launched_on();
    for (int dev : devices) rt::Device(dev).synchronize();
    detail::CuptiJoin join(cupti_ ? cupti_->collect() : std::vector<detail::CuptiKernel>{});
    for (auto& p : pending_) {
      if (auto r = resolve_launch(p, join)) out.kernels.push_back(std::move(*r));
    }
    for (const detail::CuptiKernel* k : join.unmatched()) {
      out.kernels.push_back(external_record(*k));
      devices.insert(out.kernels.back().device);
    }
    for (int dev : devices) {
      rt::Device d(dev);
      out.devices.push_back({dev, d.properties().name, peaks_for(d.properties())});
    }
    return out;
  }

  // The devices of the session's launches.
  std::set<int> devices_launched_on() const {
    std::set<int> devices;
    for (const auto& p : pending_) {
      if (p.record) {
        devices.insert(p.record->device);
      } else if (p.function.valid()) {
        devices.insert(p.function.device().ordinal());
      }
    }
    return devices;
  }

  // The record of one launch of kiln's: timed already (harvested), timed now by its
  // events, or joined to CUPTI's record of it; nullopt for a failed launch or one CUPTI did
  // not report (which should not happen after a synchronize).
  std::optional<KernelRecord> resolve_launch(detail::Pending& p, detail::CuptiJoin& join) {
    if (p.failed) return std::nullopt;
    if (p.record) return std::move(*p.record);
    if (!cupti_) {
      rt::ContextGuard g(p.function.device().context());
      time_with_events(p);
      return std::move(*p.record);
    }
    KernelRecord r = describe(p);
    const detail::CuptiKernel* k = join.take(r.device, r.name, r.grid, r.block);
    if (!k) return std::nullopt;
    r.start_us = double(k->start_ns - cupti_->base_ns()) / 1e3;
    r.end_us = double(k->end_ns - cupti_->base_ns()) / 1e3;
    r.correlation = k->correlation;
    return r;
  }

  // The record of a kernel that CUPTI saw and kiln did not launch (cuBLAS, cuDNN, ...).
  KernelRecord external_record(const detail::CuptiKernel& k) const {
    KernelRecord r;
    r.name = k.name;
    r.device = int(k.device);
    r.stream = k.stream;
    r.grid = k.grid;
    r.block = k.block;
    r.registers = k.registers;
    r.static_shared_bytes = k.static_shared;
    r.shared_bytes = unsigned(k.dynamic_shared);
    r.start_us = double(k.start_ns - cupti_->base_ns()) / 1e3;
    r.end_us = double(k.end_ns - cupti_->base_ns()) / 1e3;
    r.external = true;
    r.correlation = k.correlation;
    return r;
  }

  KernelRecord describe(const detail::Pending& p) {
    KernelRecord r;
    const rt::Function& f = p.function;
    r.name = f.name();
    const rt::LaunchInfo& info = infos_[p.info];
    r.params = info.params;
    r.config = info.config;
    r.bytes = info.bytes;
    r.flops = info.flops;
    r.device = f.device().ordinal();
    r.stream = reinterpret_cast<std::uintptr_t>(p.config.stream.handle);
    r.grid = {p.config.grid.x, p.config.grid.y, p.config.grid.z};
    r.block = {p.config.block.x, p.config.block.y, p.config.block.z};
    r.shared_bytes = p.config.shared_bytes;
    r.static_shared_bytes = f.attributes().static_shared_bytes;
    r.registers = f.attributes().registers;
    r.host_us = p.host_us;
    r.host_launch_us = p.host_launch_us;
    const int threads = int(p.config.block.count());
    auto key = std::make_tuple(f.handle(), threads, p.config.shared_bytes);
    auto it = occupancy_.find(key);
    if (it == occupancy_.end()) {
      const auto& props = f.device().properties();
      const int warps = (threads + props.warp_size - 1) / props.warp_size;
      const int blocks = f.occupancy(threads, p.config.shared_bytes);
      const double most = double(props.max_threads_per_multiprocessor / props.warp_size);
      it = occupancy_.emplace(key, most > 0 ? double(blocks * warps) / most : 0.0).first;
    }
    r.occupancy = it->second;
    return r;
  }

  mutable std::mutex mutex_;
  bool running_ = false;
  bool warned_cupti_ = false;
  Backend backend_ = Backend::events;
  std::chrono::steady_clock::time_point host_start_;
  std::atomic<bool> cupti_on_{false};  // read without the lock on the launch path
  std::deque<detail::Pending> pending_;
  std::vector<rt::LaunchInfo> infos_{1};  // [0]: none
  std::unordered_map<const rt::LaunchInfo*, std::uint32_t> info_index_;
  std::uint64_t first_id_ = 1;  // the id of pending_.front()
  std::size_t harvested_ = 0;   // pending_[0, harvested_) are timed or failed
  std::map<int, std::vector<void*>> free_events_;
  std::map<int, std::pair<void*, double>> base_events_;
  std::map<std::tuple<void*, int, unsigned>, double> occupancy_;
  std::unique_ptr<detail::Cupti> cupti_;
};

/// A profiling session for one scope: records from construction to finish() (or the end
/// of the scope, where the records are dropped).
class Session {
 public:
  explicit Session(Backend backend = backend_from_environment()) {
    Profiler::instance().start(backend);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() {
    if (!finished_) {
      try {
        Profiler::instance().stop();
      } catch (...) {
      }
    }
  }
  /// Stops recording and returns the profile.
  Profile finish() {
    finished_ = true;
    return Profiler::instance().stop();
  }
  /// The backend in use (events where CUPTI was asked for but could not be used).
  Backend backend() const { return Profiler::instance().backend(); }

 private:
  bool finished_ = false;
};

}  // namespace kiln::prof
