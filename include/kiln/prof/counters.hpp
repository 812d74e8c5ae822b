#pragma once
/// Hardware counters per kernel through CUPTI's Range Profiler and Profiler Host API (the
/// CUDA 12.6+ interface: cupti_range_profiler.h, cupti_profiler_host.h), CUPTI loaded at
/// run time like the activity backend (libcupti.so.13, or KILN_CUPTI_LIBRARY).
///
///   kiln::prof::Profile p = kiln::prof::profile_with_counters([&] { work(); });
///
/// Counters are collected in a pass of their own, never in the timing pass: the work runs
/// once under the timing Session (profiler.hpp) and once more under a CounterSession, whose
/// ranges (one per kernel: CUPTI's auto range) are joined to the timing records in launch
/// order, per device. The counter pass replays each kernel as often as the metrics need
/// (CUPTI's kernel replay: memory saved and restored around each replay, kernels
/// serialized), so its times are not the kernels' times; gpu__time_duration.sum is the
/// duration of one replay. The work must launch the same kernels in the same order both
/// times (profile_with_counters says where it did not).
///
/// Where counters cannot be collected (CUPTI missing or too old, no GPU, counters restricted
/// to administrators: CUPTI_ERROR_INSUFFICIENT_PRIVILEGES, ERR_NVGPUCTRPERM), kiln prints
/// one warning naming the cause and the fix, the profile keeps its timing records, and
/// Profile::counters_note says why. An unknown metric name is an error (kiln::Error, with
/// the close names), before any work runs.
///
/// The GPU part is CounterSession and detail::RangeProfiler; the rest (the metric catalog,
/// failure messages, attach_counters) works without a GPU.

#if !defined(KILN_ENABLE_HIP)
#include <cupti_profiler_host.h>
#include <cupti_profiler_target.h>
#include <cupti_range_profiler.h>
#include <cupti_target.h>
#define KILN_PROF_HAS_RANGE_PROFILER 1
#else
#define KILN_PROF_HAS_RANGE_PROFILER 0
#endif

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../detail/dynamic_library.hpp"
#include "../error.hpp"
#include "../rt/device.hpp"
#include "cupti.hpp"
#include "derived.hpp"
#include "metrics.hpp"
#include "names.hpp"
#include "profiler.hpp"
#include "record.hpp"

namespace kiln::prof {

/// What a counter pass collects.
struct CounterOptions {
  std::vector<std::string> metrics = default_metrics();
  /// Kernels counted per device (CUPTI's ranges per pass); those past it are dropped, and
  /// the note says how many.
  std::size_t max_kernels = 2000;
  /// Devices counted (ordinals); empty: every device.
  std::vector<int> devices;
};

/// One kernel's counters, as the range profiler gave them.
struct CounterRange {
  int device = 0;
  std::size_t index = 0;  ///< the range's number on its device: launch order
  std::string name;       ///< the range's name: the kernel's name
  std::map<std::string, double> values;
};

/// What a counter pass produced.
struct CounterResult {
  std::vector<CounterRange> ranges;
  std::string note;        ///< why counters are missing or partial (empty: none missing)
  std::size_t passes = 0;  ///< replays per kernel (0: not collected)
};

namespace detail {

/// The warning for counters refused by the driver (CUPTI_ERROR_INSUFFICIENT_PRIVILEGES,
/// which Nsight tools report as ERR_NVGPUCTRPERM).
inline std::string counters_privilege_message(std::string_view call) {
  return "GPU performance counters are restricted to administrators on this machine (" +
         std::string(call) +
         " returned CUPTI_ERROR_INSUFFICIENT_PRIVILEGES, ERR_NVGPUCTRPERM). Run as root, or "
         "let every user read them: load the nvidia kernel module with the option "
         "NVreg_RestrictProfilingToAdminUsers=0 (in the module's modprobe options, then reload "
         "the module or reboot)";
}

/// The warning for a CUPTI that could not be loaded or lacks the Range Profiler, from the
/// loader's error (the libraries it tried and why each failed, or the missing symbol).
inline std::string counters_library_message(std::string_view loader_error) {
  std::string tried;
  std::size_t at = 0;
  while (at < loader_error.size()) {
    std::size_t end = loader_error.find('\n', at);
    if (end == std::string_view::npos) end = loader_error.size();
    const std::string_view line = loader_error.substr(at, end - at);
    if (line.starts_with("  ")) tried += (tried.empty() ? "" : "; ") + std::string(line.substr(2));
    at = end + 1;
  }
  if (tried.empty()) tried = loader_error;
  // Not a missing library: a sanitizer build (see ProfilerApi::load), whose message says
  // what to do.
  if (loader_error.find("Sanitizer, which ends any process") != std::string_view::npos) {
    return std::string(loader_error);
  }
  return "CUPTI's profiler could not be loaded (" + tried +
         "). Install CUPTI 12.6 or later (the CUDA toolkit's libcupti.so.13) and add its "
         "directory to LD_LIBRARY_PATH, or set KILN_CUPTI_LIBRARY to its full path";
}

/// The whole warning line for `cause`.
inline std::string counters_warning(std::string_view cause) {
  return "kiln: hardware counters are not collected: " + std::string(cause) +
         ". Timing continues without counters.";
}

/// Prints counters_warning(cause) to stderr unless this cause was printed before; returns
/// whether it printed.
inline bool warn_counters_once(const std::string& cause) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard lock(mutex);
  if (!warned.insert(cause).second) return false;
  std::fprintf(stderr, "%s\n", counters_warning(cause).c_str());
  return true;
}

/// Whether the name of a counter range and the name of a timed kernel are the same kernel
/// (as recorded, or demangled); a range without a name (or numbered only) matches any.
inline bool same_kernel(const std::string& range, const std::string& kernel) {
  if (range.empty() || range.find_first_not_of("0123456789") == std::string::npos) return true;
  return range == kernel || demangle(range) == demangle(kernel);
}

}  // namespace detail

/// Joins a counter pass's ranges to the timing pass's records: per device, the records in
/// launch order (CUPTI's correlation ids where every record has one, else start times)
/// take the ranges in order while the names agree (detail::same_kernel). Sets each joined
/// record's counters and returns how many were joined; where a device's kernels stop
/// agreeing, or one pass has more, `profile.counters_note` says so.
inline std::size_t attach_counters(Profile& profile, const std::vector<CounterRange>& ranges) {
  std::map<int, std::vector<const CounterRange*>> by_device;
  for (const CounterRange& r : ranges) by_device[r.device].push_back(&r);
  for (auto& [device, list] : by_device) {
    std::stable_sort(list.begin(), list.end(), [](const CounterRange* a, const CounterRange* b) {
      return a->index < b->index;
    });
  }
  std::map<int, std::vector<KernelRecord*>> records;
  for (KernelRecord& k : profile.kernels) records[k.device].push_back(&k);
  std::size_t joined = 0;
  std::string notes;
  for (auto& [device, list] : records) {
    const bool correlated = std::all_of(list.begin(), list.end(),
                                        [](const KernelRecord* k) { return k->correlation != 0; });
    std::stable_sort(list.begin(), list.end(), [&](const KernelRecord* a, const KernelRecord* b) {
      return correlated ? a->correlation < b->correlation : a->start_us < b->start_us;
    });
    const auto it = by_device.find(device);
    const std::vector<const CounterRange*> none;
    const std::vector<const CounterRange*>& counted = it == by_device.end() ? none : it->second;
    std::size_t i = 0;
    for (; i < list.size() && i < counted.size(); ++i) {
      if (!detail::same_kernel(counted[i]->name, list[i]->name)) {
        notes += fmt::format(
            "{}GPU {}: kernel {} of the timing pass is {} but the counter pass's is {}; "
            "counters are attached to the {} kernels before it only (the work must launch the "
            "same kernels in the same order in both passes)",
            notes.empty() ? "" : "; ", device, i + 1, short_name(list[i]->name),
            short_name(counted[i]->name), i);
        break;
      }
      list[i]->counters = counted[i]->values;
      ++joined;
    }
    if (i == std::min(list.size(), counted.size()) && list.size() != counted.size()) {
      notes += fmt::format(
          "{}GPU {}: the timing pass has {} kernels and the counter pass {}; the first {} have "
          "counters",
          notes.empty() ? "" : "; ", device, list.size(), counted.size(), i);
    }
  }
  if (!notes.empty()) {
    profile.counters_note += (profile.counters_note.empty() ? "" : "; ") + notes;
  }
  return joined;
}

#if KILN_PROF_HAS_RANGE_PROFILER
namespace detail {

/// CUPTI's Profiler Host and Range Profiler functions, from the library cupti.hpp loads.
struct ProfilerApi {
  ::kiln::detail::DynamicLibrary lib;
  decltype(&::cuptiGetResultString) result_string = nullptr;
  // Profiler Host API (no GPU needed).
  decltype(&::cuptiProfilerHostInitialize) host_initialize = nullptr;
  decltype(&::cuptiProfilerHostDeinitialize) host_deinitialize = nullptr;
  decltype(&::cuptiProfilerHostGetBaseMetrics) host_base_metrics = nullptr;
  decltype(&::cuptiProfilerHostGetSubMetrics) host_sub_metrics = nullptr;
  decltype(&::cuptiProfilerHostGetMetricProperties) host_metric_properties = nullptr;
  decltype(&::cuptiProfilerHostConfigAddMetrics) host_add_metrics = nullptr;
  decltype(&::cuptiProfilerHostGetConfigImageSize) host_config_image_size = nullptr;
  decltype(&::cuptiProfilerHostGetConfigImage) host_config_image = nullptr;
  decltype(&::cuptiProfilerHostGetNumOfPasses) host_passes = nullptr;
  decltype(&::cuptiProfilerHostEvaluateToGpuValues) host_evaluate = nullptr;
  // Target side.
  decltype(&::cuptiProfilerInitialize) initialize = nullptr;
  decltype(&::cuptiProfilerDeInitialize) deinitialize = nullptr;
  decltype(&::cuptiDeviceGetChipName) chip_name = nullptr;
  decltype(&::cuptiProfilerGetCounterAvailability) counter_availability = nullptr;
  decltype(&::cuptiRangeProfilerEnable) enable = nullptr;
  decltype(&::cuptiRangeProfilerDisable) disable = nullptr;
  decltype(&::cuptiRangeProfilerGetCounterDataSize) counter_data_size = nullptr;
  decltype(&::cuptiRangeProfilerCounterDataImageInitialize) counter_data_initialize = nullptr;
  decltype(&::cuptiRangeProfilerSetConfig) set_config = nullptr;
  decltype(&::cuptiRangeProfilerStart) start = nullptr;
  decltype(&::cuptiRangeProfilerStop) stop = nullptr;
  decltype(&::cuptiRangeProfilerDecodeData) decode = nullptr;
  decltype(&::cuptiRangeProfilerGetCounterDataInfo) counter_data_info = nullptr;
  decltype(&::cuptiRangeProfilerCounterDataGetRangeInfo) range_info = nullptr;

  /// The library, loaded once per value of KILN_CUPTI_LIBRARY (so a test can point it
  /// elsewhere). Throws kiln::LibraryError saying what is missing.
  static std::shared_ptr<const ProfilerApi> get() {
    static std::mutex mutex;
    static std::map<std::string, std::shared_ptr<const ProfilerApi>> loaded;
    static std::map<std::string, std::string> failed;
    const char* forced = std::getenv("KILN_CUPTI_LIBRARY");
    const std::string key = forced ? forced : "";
    std::lock_guard lock(mutex);
    if (auto it = loaded.find(key); it != loaded.end()) return it->second;
    if (auto it = failed.find(key); it != failed.end()) throw LibraryError(it->second);
    try {
      auto api = std::make_shared<ProfilerApi>();
      api->load();
      return loaded[key] = std::move(api);
    } catch (const Error& e) {
      failed[key] = e.what();
      throw LibraryError(e.what());
    }
  }

  /// Initializes CUPTI's profiler interface (cuptiProfilerInitialize) for the caller, once
  /// for all callers at a time: the first acquire initializes, the last release
  /// deinitializes. The target-side calls (cuptiDeviceGetChipName included: it ends the
  /// process without it) need it; the host API does not.
  CUptiResult acquire() const {
    std::lock_guard lock(init_mutex_);
    if (users_ == 0) {
      auto p = CUpti_Profiler_Initialize_Params{};
      p.structSize = CUpti_Profiler_Initialize_Params_STRUCT_SIZE;
      if (CUptiResult r = initialize(&p); r != CUPTI_SUCCESS) return r;
    }
    ++users_;
    return CUPTI_SUCCESS;
  }
  void release() const noexcept {
    std::lock_guard lock(init_mutex_);
    if (users_ == 0 || --users_ > 0) return;
    auto p = CUpti_Profiler_DeInitialize_Params{};
    p.structSize = CUpti_Profiler_DeInitialize_Params_STRUCT_SIZE;
    deinitialize(&p);
  }

  /// `r` as text: "CUPTI_ERROR_INSUFFICIENT_PRIVILEGES".
  std::string text(CUptiResult r) const {
    const char* t = nullptr;
    if (result_string) result_string(r, &t);
    return t ? t : "CUPTI error " + std::to_string(int(r));
  }

 private:
  mutable std::mutex init_mutex_;
  mutable int users_ = 0;

  void load() {
    lib = ::kiln::detail::DynamicLibrary::open_first(
        "CUPTI (libcupti.so.13, from the CUDA toolkit)", cupti_library_candidates(),
        "KILN_CUPTI_LIBRARY");
#if defined(__SANITIZE_ADDRESS__)
#define KILN_PROF_UNDER_SANITIZER "AddressSanitizer"
#elif defined(__SANITIZE_THREAD__)
#define KILN_PROF_UNDER_SANITIZER "ThreadSanitizer"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_PROF_UNDER_SANITIZER "AddressSanitizer"
#elif __has_feature(thread_sanitizer)
#define KILN_PROF_UNDER_SANITIZER "ThreadSanitizer"
#endif
#endif
#if defined(KILN_PROF_UNDER_SANITIZER)
    // CUPTI's profiler opens libnvperf_host.so with RTLD_DEEPBIND, which the sanitizers'
    // runtimes answer by ending the process: say so instead, and let timing go on.
    throw Error(
        "CUPTI's range profiler could not be loaded: this program is built "
        "with " KILN_PROF_UNDER_SANITIZER
        ", which ends any process that loads CUPTI's libnvperf_host.so (it is "
        "opened with RTLD_DEEPBIND); collect counters from a build without the sanitizer");
#endif
    auto get = [&](auto& f, const char* name) { f = lib.get<std::decay_t<decltype(f)>>(name); };
    get(result_string, "cuptiGetResultString");
    get(host_initialize, "cuptiProfilerHostInitialize");
    get(host_deinitialize, "cuptiProfilerHostDeinitialize");
    get(host_base_metrics, "cuptiProfilerHostGetBaseMetrics");
    get(host_sub_metrics, "cuptiProfilerHostGetSubMetrics");
    get(host_metric_properties, "cuptiProfilerHostGetMetricProperties");
    get(host_add_metrics, "cuptiProfilerHostConfigAddMetrics");
    get(host_config_image_size, "cuptiProfilerHostGetConfigImageSize");
    get(host_config_image, "cuptiProfilerHostGetConfigImage");
    get(host_passes, "cuptiProfilerHostGetNumOfPasses");
    get(host_evaluate, "cuptiProfilerHostEvaluateToGpuValues");
    get(initialize, "cuptiProfilerInitialize");
    get(deinitialize, "cuptiProfilerDeInitialize");
    get(chip_name, "cuptiDeviceGetChipName");
    get(counter_availability, "cuptiProfilerGetCounterAvailability");
    get(enable, "cuptiRangeProfilerEnable");
    get(disable, "cuptiRangeProfilerDisable");
    get(counter_data_size, "cuptiRangeProfilerGetCounterDataSize");
    get(counter_data_initialize, "cuptiRangeProfilerCounterDataImageInitialize");
    get(set_config, "cuptiRangeProfilerSetConfig");
    get(start, "cuptiRangeProfilerStart");
    get(stop, "cuptiRangeProfilerStop");
    get(decode, "cuptiRangeProfilerDecodeData");
    get(counter_data_info, "cuptiRangeProfilerGetCounterDataInfo");
    get(range_info, "cuptiRangeProfilerCounterDataGetRangeInfo");
  }
};

/// A CUPTI parameter struct, zeroed, with its size set.
template <class P>
P cupti_params(std::size_t size) {
  P p{};
  p.structSize = size;
  return p;
}

/// A CUPTI call that failed: which, and CUPTI's result.
struct CuptiFailure : Error {
  CuptiFailure(const std::string& call, CUptiResult r, const std::string& text)
      : Error(r == CUPTI_ERROR_INSUFFICIENT_PRIVILEGES
                  ? counters_privilege_message(call)
                  : "CUPTI's range profiler failed in " + call + ": " + text),
        result(r) {}
  CUptiResult result;
};

inline void cupti_check(const ProfilerApi& api, CUptiResult r, const char* call) {
  if (r != CUPTI_SUCCESS) throw CuptiFailure(call, r, api.text(r));
}

/// A Profiler Host object for one chip ("GH100"): metric lists, config images and the
/// evaluation of counter data. Works without a GPU (the counter availability image, which
/// only a GPU can give, is optional).
class HostObject {
 public:
  HostObject(std::shared_ptr<const ProfilerApi> api, std::string chip,
             const std::vector<std::uint8_t>& availability = {})
      : api_(std::move(api)), chip_(std::move(chip)) {
    auto p = detail::cupti_params<CUpti_Profiler_Host_Initialize_Params>(
        CUpti_Profiler_Host_Initialize_Params_STRUCT_SIZE);
    p.profilerType = CUPTI_PROFILER_TYPE_RANGE_PROFILER;
    p.pChipName = chip_.c_str();
    p.pCounterAvailabilityImage = availability.empty() ? nullptr : availability.data();
    cupti_check(*api_, api_->host_initialize(&p), "cuptiProfilerHostInitialize");
    object_ = p.pHostObject;
  }
  HostObject(const HostObject&) = delete;
  HostObject& operator=(const HostObject&) = delete;
  ~HostObject() {
    auto p = detail::cupti_params<CUpti_Profiler_Host_Deinitialize_Params>(
        CUpti_Profiler_Host_Deinitialize_Params_STRUCT_SIZE);
    p.pHostObject = object_;
    api_->host_deinitialize(&p);
  }

  const std::string& chip() const { return chip_; }
  const ProfilerApi& api() const { return *api_; }

  /// Whether CUPTI knows `name` (with its rollup) for this chip.
  bool known(const std::string& name) const {
    auto p = detail::cupti_params<CUpti_Profiler_Host_GetMetricProperties_Params>(
        CUpti_Profiler_Host_GetMetricProperties_Params_STRUCT_SIZE);
    p.pHostObject = object_;
    p.pMetricName = name.c_str();
    return api_->host_metric_properties(&p) == CUPTI_SUCCESS;
  }

  /// Every base metric of the chip ("dram__bytes_read"), without CUPTI's group prefixes.
  const std::vector<std::string>& base_metrics() const {
    if (!bases_.empty()) return bases_;
    std::set<std::string> names;
    for (auto type :
         {CUPTI_METRIC_TYPE_COUNTER, CUPTI_METRIC_TYPE_RATIO, CUPTI_METRIC_TYPE_THROUGHPUT}) {
      auto p = detail::cupti_params<CUpti_Profiler_Host_GetBaseMetrics_Params>(
          CUpti_Profiler_Host_GetBaseMetrics_Params_STRUCT_SIZE);
      p.pHostObject = object_;
      p.metricType = type;
      if (api_->host_base_metrics(&p) != CUPTI_SUCCESS) continue;
      for (std::size_t i = 0; i < p.numMetrics; ++i) {
        const std::string full = p.ppMetricNames[i];
        const auto dot = full.rfind('.');
        names.insert(dot == std::string::npos ? full : full.substr(dot + 1));
      }
    }
    bases_.assign(names.begin(), names.end());
    return bases_;
  }

  /// The full names of `base`'s rollups and submetrics ("dram__bytes_read.sum", ...).
  std::vector<std::string> full_names(const std::string& base) const {
    auto props = detail::cupti_params<CUpti_Profiler_Host_GetMetricProperties_Params>(
        CUpti_Profiler_Host_GetMetricProperties_Params_STRUCT_SIZE);
    props.pHostObject = object_;
    props.pMetricName = base.c_str();
    if (api_->host_metric_properties(&props) != CUPTI_SUCCESS) return {};
    auto p = detail::cupti_params<CUpti_Profiler_Host_GetSubMetrics_Params>(
        CUpti_Profiler_Host_GetSubMetrics_Params_STRUCT_SIZE);
    p.pHostObject = object_;
    p.metricType = props.metricType;
    p.pMetricName = base.c_str();
    if (api_->host_sub_metrics(&p) != CUPTI_SUCCESS) return {};
    std::vector<std::string> out;
    for (std::size_t i = 0; i < p.numOfSubmetrics; ++i) out.push_back(base + p.ppSubMetrics[i]);
    return out;
  }

  /// The configuration image for `metrics` and the number of passes (replays per kernel)
  /// they need.
  std::pair<std::vector<std::uint8_t>, std::size_t> config(
      const std::vector<std::string>& metrics) const {
    std::vector<const char*> names;
    for (const std::string& m : metrics) names.push_back(m.c_str());
    auto add = detail::cupti_params<CUpti_Profiler_Host_ConfigAddMetrics_Params>(
        CUpti_Profiler_Host_ConfigAddMetrics_Params_STRUCT_SIZE);
    add.pHostObject = object_;
    add.ppMetricNames = names.data();
    add.numMetrics = names.size();
    cupti_check(*api_, api_->host_add_metrics(&add), "cuptiProfilerHostConfigAddMetrics");
    auto size = detail::cupti_params<CUpti_Profiler_Host_GetConfigImageSize_Params>(
        CUpti_Profiler_Host_GetConfigImageSize_Params_STRUCT_SIZE);
    size.pHostObject = object_;
    cupti_check(*api_, api_->host_config_image_size(&size), "cuptiProfilerHostGetConfigImageSize");
    std::vector<std::uint8_t> image(size.configImageSize);
    auto get = detail::cupti_params<CUpti_Profiler_Host_GetConfigImage_Params>(
        CUpti_Profiler_Host_GetConfigImage_Params_STRUCT_SIZE);
    get.pHostObject = object_;
    get.configImageSize = image.size();
    get.pConfigImage = image.data();
    cupti_check(*api_, api_->host_config_image(&get), "cuptiProfilerHostGetConfigImage");
    auto passes = detail::cupti_params<CUpti_Profiler_Host_GetNumOfPasses_Params>(
        CUpti_Profiler_Host_GetNumOfPasses_Params_STRUCT_SIZE);
    passes.configImageSize = image.size();
    passes.pConfigImage = image.data();
    cupti_check(*api_, api_->host_passes(&passes), "cuptiProfilerHostGetNumOfPasses");
    return {std::move(image), passes.numOfPasses};
  }

  /// The values of `metrics` in range `range` of a decoded counter data image.
  std::vector<double> evaluate(const std::vector<std::uint8_t>& image, std::size_t range,
                               const std::vector<std::string>& metrics) const {
    std::vector<const char*> names;
    for (const std::string& m : metrics) names.push_back(m.c_str());
    std::vector<double> values(metrics.size());
    auto p = detail::cupti_params<CUpti_Profiler_Host_EvaluateToGpuValues_Params>(
        CUpti_Profiler_Host_EvaluateToGpuValues_Params_STRUCT_SIZE);
    p.pHostObject = object_;
    p.pCounterDataImage = image.data();
    p.counterDataImageSize = image.size();
    p.rangeIndex = range;
    p.ppMetricNames = names.data();
    p.numMetrics = names.size();
    p.pMetricValues = values.data();
    cupti_check(*api_, api_->host_evaluate(&p), "cuptiProfilerHostEvaluateToGpuValues");
    return values;
  }

 private:
  std::shared_ptr<const ProfilerApi> api_;
  std::string chip_;
  CUpti_Profiler_Host_Object* object_ = nullptr;
  mutable std::vector<std::string> bases_;
};

}  // namespace detail

/// The metric names CUPTI's Profiler Host API knows for one chip. A name is known where the
/// host API gives its properties; the close names of an unknown one come from the chip's
/// base metrics (their rollups where the base is right, e.g. ".sum" for ".summ").
class CuptiMetricCatalog final : public MetricCatalog {
 public:
  explicit CuptiMetricCatalog(std::shared_ptr<const detail::HostObject> host)
      : host_(std::move(host)) {}
  std::string source() const override { return "CUPTI's metric list for " + host_->chip(); }
  bool known(const std::string& name) const override { return host_->known(name); }
  std::vector<std::string> suggestions(const std::string& name) const override {
    const auto dot = name.find('.');
    const std::string base = name.substr(0, dot);
    const std::string rollup = dot == std::string::npos ? "" : name.substr(dot);
    const std::vector<std::string>& bases = host_->base_metrics();
    if (std::binary_search(bases.begin(), bases.end(), base)) {
      return close_names(name, host_->full_names(base));  // the base is right, the rollup not
    }
    std::vector<std::string> out;
    for (const std::string& b : close_names(base, bases)) {
      // The same rollup where the close base has it, else the base's first full name.
      if (!rollup.empty() && host_->known(b + rollup)) {
        out.push_back(b + rollup);
      } else if (const auto full = host_->full_names(b); !full.empty()) {
        out.push_back(full.front());
      } else {
        out.push_back(b);
      }
    }
    return out;
  }

 private:
  std::shared_ptr<const detail::HostObject> host_;
};

namespace detail {

/// The range profiler on one device's context: auto ranges (one per kernel), kernel
/// replay. Throws CuptiFailure or kiln::Error where a step fails.
class RangeProfiler {
 public:
  RangeProfiler(std::shared_ptr<const ProfilerApi> api, int device, const CounterOptions& options)
      : api_(std::move(api)), device_(device), metrics_(options.metrics) {
    const ProfilerApi& a = *api_;
    rt::Device d(device);
    context_ = static_cast<CUcontext>(d.context());
    rt::ContextGuard guard(d.context());

    auto chip = detail::cupti_params<CUpti_Device_GetChipName_Params>(
        CUpti_Device_GetChipName_Params_STRUCT_SIZE);
    chip.deviceIndex = std::size_t(device);
    cupti_check(a, a.chip_name(&chip), "cuptiDeviceGetChipName");

    auto avail = detail::cupti_params<CUpti_Profiler_GetCounterAvailability_Params>(
        CUpti_Profiler_GetCounterAvailability_Params_STRUCT_SIZE);
    avail.ctx = context_;
    cupti_check(a, a.counter_availability(&avail), "cuptiProfilerGetCounterAvailability");
    std::vector<std::uint8_t> availability(avail.counterAvailabilityImageSize);
    avail.pCounterAvailabilityImage = availability.data();
    cupti_check(a, a.counter_availability(&avail), "cuptiProfilerGetCounterAvailability");

    host_ = std::make_shared<const HostObject>(api_, chip.pChipName, availability);
    check_metrics(metrics_, CuptiMetricCatalog(host_), "the counter metrics");
    auto [config, passes] = host_->config(metrics_);
    config_ = std::move(config);
    passes_ = passes;

    auto enable = detail::cupti_params<CUpti_RangeProfiler_Enable_Params>(
        CUpti_RangeProfiler_Enable_Params_STRUCT_SIZE);
    enable.ctx = context_;
    cupti_check(a, a.enable(&enable), "cuptiRangeProfilerEnable");
    object_ = enable.pRangeProfilerObject;
    try {
      std::vector<const char*> names;
      for (const std::string& m : metrics_) names.push_back(m.c_str());
      auto size = detail::cupti_params<CUpti_RangeProfiler_GetCounterDataSize_Params>(
          CUpti_RangeProfiler_GetCounterDataSize_Params_STRUCT_SIZE);
      size.pRangeProfilerObject = object_;
      size.pMetricNames = names.data();
      size.numMetrics = names.size();
      size.maxNumOfRanges = options.max_kernels;
      size.maxNumRangeTreeNodes = std::uint32_t(options.max_kernels);
      cupti_check(a, a.counter_data_size(&size), "cuptiRangeProfilerGetCounterDataSize");
      counter_data_.assign(size.counterDataSize, 0);
      auto init = detail::cupti_params<CUpti_RangeProfiler_CounterDataImage_Initialize_Params>(
          CUpti_RangeProfiler_CounterDataImage_Initialize_Params_STRUCT_SIZE);
      init.pRangeProfilerObject = object_;
      init.counterDataSize = counter_data_.size();
      init.pCounterData = counter_data_.data();
      cupti_check(a, a.counter_data_initialize(&init),
                  "cuptiRangeProfilerCounterDataImageInitialize");

      auto set = detail::cupti_params<CUpti_RangeProfiler_SetConfig_Params>(
          CUpti_RangeProfiler_SetConfig_Params_STRUCT_SIZE);
      set.pRangeProfilerObject = object_;
      set.configSize = config_.size();
      set.pConfig = config_.data();
      set.counterDataImageSize = counter_data_.size();
      set.pCounterDataImage = counter_data_.data();
      set.range = CUPTI_AutoRange;
      set.replayMode = CUPTI_KernelReplay;
      set.maxRangesPerPass = options.max_kernels;
      set.numNestingLevels = 1;
      set.minNestingLevel = 1;
      set.passIndex = 0;
      set.targetNestingLevel = 1;
      cupti_check(a, a.set_config(&set), "cuptiRangeProfilerSetConfig");

      auto start = detail::cupti_params<CUpti_RangeProfiler_Start_Params>(
          CUpti_RangeProfiler_Start_Params_STRUCT_SIZE);
      start.pRangeProfilerObject = object_;
      cupti_check(a, a.start(&start), "cuptiRangeProfilerStart");
    } catch (...) {
      disable();
      throw;
    }
  }
  RangeProfiler(const RangeProfiler&) = delete;
  RangeProfiler& operator=(const RangeProfiler&) = delete;
  ~RangeProfiler() { disable(); }

  std::size_t passes() const { return passes_; }

  /// Stops counting and returns each kernel's counters, in launch order; `dropped` gets the
  /// number of kernels past max_kernels.
  std::vector<CounterRange> finish(std::size_t& dropped) {
    const ProfilerApi& a = *api_;
    rt::ContextGuard guard(context_);
    rt::Device(device_).synchronize();
    auto stop = detail::cupti_params<CUpti_RangeProfiler_Stop_Params>(
        CUpti_RangeProfiler_Stop_Params_STRUCT_SIZE);
    stop.pRangeProfilerObject = object_;
    cupti_check(a, a.stop(&stop), "cuptiRangeProfilerStop");
    auto decode = detail::cupti_params<CUpti_RangeProfiler_DecodeData_Params>(
        CUpti_RangeProfiler_DecodeData_Params_STRUCT_SIZE);
    decode.pRangeProfilerObject = object_;
    cupti_check(a, a.decode(&decode), "cuptiRangeProfilerDecodeData");
    dropped = decode.numOfRangeDropped;
    auto info = detail::cupti_params<CUpti_RangeProfiler_GetCounterDataInfo_Params>(
        CUpti_RangeProfiler_GetCounterDataInfo_Params_STRUCT_SIZE);
    info.pCounterDataImage = counter_data_.data();
    info.counterDataImageSize = counter_data_.size();
    cupti_check(a, a.counter_data_info(&info), "cuptiRangeProfilerGetCounterDataInfo");
    std::vector<CounterRange> out;
    for (std::size_t i = 0; i < info.numTotalRanges; ++i) {
      auto range = detail::cupti_params<CUpti_RangeProfiler_CounterData_GetRangeInfo_Params>(
          CUpti_RangeProfiler_CounterData_GetRangeInfo_Params_STRUCT_SIZE);
      range.pCounterDataImage = counter_data_.data();
      range.counterDataImageSize = counter_data_.size();
      range.rangeIndex = i;
      range.rangeDelimiter = "/";
      cupti_check(a, a.range_info(&range), "cuptiRangeProfilerCounterDataGetRangeInfo");
      CounterRange r;
      r.device = device_;
      r.index = i;
      r.name = range.rangeName ? range.rangeName : "";
      const std::vector<double> values = host_->evaluate(counter_data_, i, metrics_);
      for (std::size_t m = 0; m < metrics_.size(); ++m) r.values[metrics_[m]] = values[m];
      out.push_back(std::move(r));
    }
    disable();
    return out;
  }

 private:
  void disable() noexcept {
    if (!object_) return;
    auto p = detail::cupti_params<CUpti_RangeProfiler_Disable_Params>(
        CUpti_RangeProfiler_Disable_Params_STRUCT_SIZE);
    p.pRangeProfilerObject = object_;
    api_->disable(&p);
    object_ = nullptr;
  }

  std::shared_ptr<const ProfilerApi> api_;
  int device_ = 0;
  CUcontext context_ = nullptr;
  std::vector<std::string> metrics_;
  std::shared_ptr<const HostObject> host_;
  std::vector<std::uint8_t> config_, counter_data_;
  std::size_t passes_ = 0;
  CUpti_RangeProfiler_Object* object_ = nullptr;
};

}  // namespace detail
#endif  // KILN_PROF_HAS_RANGE_PROFILER

/// The catalog metric names are checked against on `chip` (CUPTI's chip name, "GH100" for
/// sm_90): CUPTI's, where its host API loads, else the built-in table (saying why).
inline std::unique_ptr<MetricCatalog> metric_catalog(const std::string& chip = "GH100") {
#if KILN_PROF_HAS_RANGE_PROFILER
  try {
    auto host = std::make_shared<const detail::HostObject>(detail::ProfilerApi::get(), chip);
    return std::make_unique<CuptiMetricCatalog>(std::move(host));
  } catch (const Error& e) {
    return std::make_unique<BuiltinMetricCatalog>(e.what());
  }
#else
  (void)chip;
  return std::make_unique<BuiltinMetricCatalog>("this build has no CUPTI (KILN_ENABLE_HIP)");
#endif
}

/// CUPTI's chip name of GPU `device` ("GH100" for an H100 or H200), or nullopt where CUPTI
/// or the GPU is missing.
inline std::optional<std::string> device_chip(int device) {
#if KILN_PROF_HAS_RANGE_PROFILER
  try {
    if (device < 0 || device >= rt::device_count()) return std::nullopt;
    static std::mutex mutex;
    static std::map<int, std::string> known;
    std::lock_guard lock(mutex);
    if (auto it = known.find(device); it != known.end()) return it->second;
    auto api = detail::ProfilerApi::get();
    if (api->acquire() != CUPTI_SUCCESS) return std::nullopt;
    auto p = detail::cupti_params<CUpti_Device_GetChipName_Params>(
        CUpti_Device_GetChipName_Params_STRUCT_SIZE);
    p.deviceIndex = std::size_t(device);
    const bool ok = api->chip_name(&p) == CUPTI_SUCCESS && p.pChipName;
    std::string chip = ok ? p.pChipName : "";
    api->release();
    if (!ok) return std::nullopt;
    return known[device] = std::move(chip);
  } catch (const Error&) {
    return std::nullopt;
  }
#else
  (void)device;
  return std::nullopt;
#endif
}

/// Checks `metrics` against the catalog of GPU 0's chip (GH100, sm_90, where there is no
/// GPU): check_metrics(), throwing kiln::Error with the close names of each unknown one.
inline void check_metrics_for_device(const std::vector<std::string>& metrics,
                                     std::string_view origin, int device = 0) {
  check_metrics(metrics, *metric_catalog(device_chip(device).value_or("GH100")), origin);
}

/// How many times each kernel is replayed to collect `metrics` on `chip`: the cost of the
/// counter pass, from CUPTI's host API (no GPU needed). Throws kiln::Error where CUPTI
/// cannot be loaded or refuses a metric.
inline std::size_t counter_passes(const std::vector<std::string>& metrics,
                                  const std::string& chip = "GH100") {
#if KILN_PROF_HAS_RANGE_PROFILER
  detail::HostObject host(detail::ProfilerApi::get(), chip);
  return host.config(metrics).second;
#else
  (void)metrics;
  (void)chip;
  throw Error("kiln: this build has no CUPTI (KILN_ENABLE_HIP): counter passes are unknown");
#endif
}

/// A counter pass: from construction to finish(), every kernel on the counted devices is
/// replayed by CUPTI until its metrics are collected. Only one at a time, and not inside a
/// timing Session (its replays would be timed too). Where counters cannot be collected, the
/// session is inactive: one warning names the cause and the fix, and finish() returns no
/// ranges with the note. Throws kiln::Error only for metric names the device does not know.
class CounterSession {
 public:
  explicit CounterSession(CounterOptions options = {}) : options_(std::move(options)) {
#if KILN_PROF_HAS_RANGE_PROFILER
    if (options_.metrics.empty()) {
      throw Error("kiln: a counter pass needs at least one metric (CounterOptions::metrics)");
    }
    std::shared_ptr<const detail::ProfilerApi> api;
    try {
      api = detail::ProfilerApi::get();
    } catch (const Error& e) {
      // Bad names are refused even where counters cannot be collected.
      check_metrics(options_.metrics, BuiltinMetricCatalog(e.what()), "the counter metrics");
      fail(detail::counters_library_message(e.what()));
      return;
    }
    if (options_.devices.empty()) {
      for (int d = 0; d < rt::device_count(); ++d) options_.devices.push_back(d);
    }
    if (options_.devices.empty()) {
      check_metrics(options_.metrics, *metric_catalog("GH100"), "the counter metrics");
      fail("there is no GPU here (no NVIDIA driver, or no device)");
      return;
    }
    if (CUptiResult r = api->acquire(); r != CUPTI_SUCCESS) {
      fail(detail::CuptiFailure("cuptiProfilerInitialize", r, api->text(r)).what());
      return;
    }
    api_ = api;
    try {
      for (int d : options_.devices) {
        profilers_.push_back(std::make_unique<detail::RangeProfiler>(api, d, options_));
        passes_ = std::max(passes_, profilers_.back()->passes());
      }
    } catch (const detail::CuptiFailure& e) {
      profilers_.clear();
      fail(e.what());
      return;
    } catch (...) {
      release();  // the destructor does not run when the constructor throws
      throw;
    }
#else
    fail("this build has no CUPTI (KILN_ENABLE_HIP)");
#endif
  }
  CounterSession(const CounterSession&) = delete;
  CounterSession& operator=(const CounterSession&) = delete;
  ~CounterSession() {
    release();
  }

  /// Whether counters are being collected.
  bool active() const {
    return note_.empty();
  }
  /// Why not (empty while active).
  const std::string& note() const {
    return note_;
  }

  /// Stops counting; returns every counted kernel's counters and why any are missing.
  CounterResult finish() {
    CounterResult out;
    out.note = note_;
#if KILN_PROF_HAS_RANGE_PROFILER
    out.passes = passes_;
    try {
      for (auto& p : profilers_) {
        std::size_t dropped = 0;
        std::vector<CounterRange> ranges = p->finish(dropped);
        if (dropped > 0) {
          out.note += fmt::format(
              "{}{} kernels past the first {} on a device were not counted "
              "(raise CounterOptions::max_kernels)",
              out.note.empty() ? "" : "; ", dropped, options_.max_kernels);
        }
        out.ranges.insert(out.ranges.end(), std::make_move_iterator(ranges.begin()),
                          std::make_move_iterator(ranges.end()));
      }
    } catch (const detail::CuptiFailure& e) {
      detail::warn_counters_once(e.what());
      out.note += (out.note.empty() ? "" : "; ") + std::string(e.what());
    }
    profilers_.clear();
#endif
    return out;
  }

 private:
  void release() noexcept {
#if KILN_PROF_HAS_RANGE_PROFILER
    profilers_.clear();
    if (api_) {
      api_->release();
      api_.reset();
    }
#endif
  }
  void fail(const std::string& cause) {
    note_ = cause;
    detail::warn_counters_once(cause);
  }

  CounterOptions options_;
  std::string note_;
#if KILN_PROF_HAS_RANGE_PROFILER
  std::shared_ptr<const detail::ProfilerApi> api_;
  std::vector<std::unique_ptr<detail::RangeProfiler>> profilers_;
  std::size_t passes_ = 0;
#endif
};

/// A counter pass as JSON (what KILN_PROFILE_COUNTERS writes, and `kiln profile --counters`
/// reads back): {"format": "kiln-counters", "version": 1, "metrics": [...], "passes": N,
/// "note": "...", "ranges": [{"device", "index", "name", "values": {metric: value}}]}.
inline nlohmann::json counters_to_json(const CounterResult& result,
                                       const std::vector<std::string>& metrics) {
  nlohmann::json ranges = nlohmann::json::array();
  for (const CounterRange& r : result.ranges) {
    ranges.push_back(
        {{"device", r.device}, {"index", r.index}, {"name", r.name}, {"values", r.values}});
  }
  return {{"format", "kiln-counters"}, {"version", 1},        {"metrics", metrics},
          {"passes", result.passes},   {"note", result.note}, {"ranges", std::move(ranges)}};
}

/// Reads counters_to_json()'s form back; `metrics` gets its metric list. Throws kiln::Error
/// naming `origin` and what is wrong where the JSON is not that form.
inline CounterResult counters_from_json(const nlohmann::json& j, std::vector<std::string>& metrics,
                                        std::string_view origin = "the counters file") {
  auto bad = [&](const std::string& what) {
    return Error("kiln: " + std::string(origin) + " is not a kiln counter pass (" + what +
                 "); it is written by a program run with KILN_PROFILE_COUNTERS=FILE");
  };
  if (!j.is_object() || j.value("format", "") != "kiln-counters") {
    throw bad("no \"format\": \"kiln-counters\"");
  }
  if (j.value("version", 0) != 1)
    throw bad("version " + j.value("version", nlohmann::json()).dump());
  CounterResult out;
  try {
    metrics = j.at("metrics").get<std::vector<std::string>>();
    out.passes = j.value("passes", std::size_t(0));
    out.note = j.value("note", "");
    for (const nlohmann::json& r : j.at("ranges")) {
      CounterRange range;
      range.device = r.at("device").get<int>();
      range.index = r.at("index").get<std::size_t>();
      range.name = r.at("name").get<std::string>();
      range.values = r.at("values").get<std::map<std::string, double>>();
      out.ranges.push_back(std::move(range));
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  return out;
}

/// Joins a counter pass read back (counters_from_json) to a timing profile: the metrics,
/// the note and each kernel's counters (attach_counters). Returns how many were joined.
inline std::size_t attach_counter_pass(Profile& profile, const CounterResult& result,
                                       const std::vector<std::string>& metrics) {
  profile.metrics = metrics;
  profile.counters_note = result.note;
  return attach_counters(profile, result.ranges);
}

/// What profile_with_counters() does.
struct ProfileOptions {
  Backend backend = backend_from_environment();  ///< the timing pass's backend
  /// The metrics; nullopt: those of KILN_PROFILE_METRICS (none where it is unset: timing only).
  std::optional<std::vector<std::string>> metrics;
  CounterOptions counters;  ///< its metrics are replaced by the above
};

/// Runs `work` under a timing Session, then, where metrics are asked for, once more under a
/// CounterSession, and returns the timing records with each kernel's counters attached
/// (attach_counters). `work` must launch the same kernels in the same order each time and
/// leave the data as it needs it for the second run. Unknown metric names throw kiln::Error
/// before `work` runs; counters that cannot be collected leave a warning and
/// Profile::counters_note, and the timing records as they are.
template <class Work>
Profile profile_with_counters(Work&& work, ProfileOptions options = {}) {
  std::vector<std::string> metrics =
      options.metrics ? *options.metrics
                      : metrics_from_environment().value_or(std::vector<std::string>{});
  if (!metrics.empty()) {
    check_metrics_for_device(metrics,
                             options.metrics ? "ProfileOptions::metrics" : "KILN_PROFILE_METRICS");
  }
  Profile profile;
  {
    Session timing(options.backend);
    work();
    profile = timing.finish();
  }
  if (metrics.empty()) return profile;
  CounterOptions counter_options = options.counters;
  counter_options.metrics = metrics;
  CounterSession counting(counter_options);
  if (counting.active()) work();
  attach_counter_pass(profile, counting.finish(), metrics);
  return profile;
}

}  // namespace kiln::prof
