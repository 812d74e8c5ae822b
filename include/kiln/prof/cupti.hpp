#pragma once
/// CUPTI's activity API, loaded at run time (libcupti.so.13 or .12, or KILN_CUPTI_LIBRARY):
/// exact kernel start and end times from the GPU, for kernels kiln launched and for kernels
/// it did not (cuBLAS, cuDNN, ...).

#if !defined(KILN_ENABLE_HIP)
#include <cupti_activity.h>
#define KILN_PROF_HAS_CUPTI 1
#else
// CUPTI's headers bring the CUDA runtime's vector types, which clash with HIP's.
#define KILN_PROF_HAS_CUPTI 0
#endif

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../detail/dynamic_library.hpp"
#include "../error.hpp"

namespace kiln::prof::detail {

/// A kernel as CUPTI reported it.
struct CuptiKernel {
  std::string name;
  std::uint64_t start_ns = 0, end_ns = 0;
  std::uint32_t device = 0, stream = 0, correlation = 0;
  std::array<unsigned, 3> grid{}, block{};
  int registers = 0, static_shared = 0, dynamic_shared = 0;
};

/// Where CUPTI is looked for (KILN_CUPTI_LIBRARY, where set, replaces the list): the CUDA
/// toolkit of CUDA_PATH / CUDA_HOME, the loader's search path, /usr/local/cuda.
inline std::vector<std::string> cupti_library_candidates() {
  std::vector<std::string> candidates;
  for (const char* var : {"CUDA_PATH", "CUDA_HOME"}) {
    if (const char* v = std::getenv(var); v && *v) {
      candidates.push_back(std::string(v) + "/lib64/libcupti.so.13");
      candidates.push_back(std::string(v) + "/extras/CUPTI/lib64/libcupti.so.13");
    }
  }
  for (const char* c : {"libcupti.so.13", "/usr/local/cuda/lib64/libcupti.so.13",
                        "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13", "libcupti.so.12",
                        "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.12"}) {
    candidates.emplace_back(c);
  }
  return candidates;
}

#if KILN_PROF_HAS_CUPTI
/// One profiling session's use of CUPTI. The library stays loaded and its buffer callbacks
/// registered for the rest of the process once used (CUPTI keeps threads and callbacks
/// that outlive a session; unloading it would leave them pointing at nothing).
class Cupti {
 public:
  /// Starts recording kernel activity. Throws kiln::Error saying why when it cannot
  /// (missing library, or another profiler holds CUPTI).
  Cupti() {
    Api& api = Api::get();
    {
      std::lock_guard lock(api.mutex);
      api.session = this;
    }
    try {
      api.check(api.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL),
                "cuptiActivityEnable(CONCURRENT_KERNEL)");
      // Kernel activity only: kiln joins CUPTI's records to its own launches by kernel, launch
      // shape and order (see Profiler), which costs far less per launch than CUPTI's external
      // correlation (it needs every driver call recorded).
      api.check(api.timestamp(&base_ns_), "cuptiGetTimestamp");
    } catch (...) {
      stop_recording();
      throw;
    }
  }
  Cupti(const Cupti&) = delete;
  Cupti& operator=(const Cupti&) = delete;
  ~Cupti() { stop_recording(); }

  /// CUPTI's clock when recording began, in nanoseconds.
  std::uint64_t base_ns() const { return base_ns_; }

  /// Delivers every finished record; returns the kernels in launch (correlation) order.
  std::vector<CuptiKernel> collect() {
    Api& api = Api::get();
    api.flush(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    std::lock_guard lock(api.mutex);
    std::vector<CuptiKernel> out = std::move(kernels_);
    kernels_.clear();
    std::sort(out.begin(), out.end(), [](const CuptiKernel& a, const CuptiKernel& b) {
      return a.correlation < b.correlation;
    });
    return out;
  }

 private:
  struct Api {
    ::kiln::detail::DynamicLibrary lib;
    decltype(&::cuptiActivityRegisterCallbacks) register_callbacks = nullptr;
    decltype(&::cuptiActivityEnable) enable = nullptr;
    decltype(&::cuptiActivityDisable) disable = nullptr;
    decltype(&::cuptiActivityFlushAll) flush = nullptr;
    decltype(&::cuptiActivityGetNextRecord) next = nullptr;

    decltype(&::cuptiGetTimestamp) timestamp = nullptr;
    decltype(&::cuptiGetResultString) result_string = nullptr;
    std::mutex mutex;
    Cupti* session = nullptr;  // where records go

    // Loaded once; a failure is remembered and rethrown to every later session.
    static Api& get() {
      static std::string error;
      static Api* api = []() -> Api* {
        auto* a = new Api();  // never freed: CUPTI may call back until the process ends
        try {
          a->load();
          return a;
        } catch (const Error& e) {
          error = e.what();
          delete a;
          return nullptr;
        }
      }();
      if (!api) throw Error(error);
      return *api;
    }
    void load() {
      lib = ::kiln::detail::DynamicLibrary::open_first(
          "CUPTI (libcupti.so.13, from the CUDA toolkit)", cupti_library_candidates(),
          "KILN_CUPTI_LIBRARY");
      register_callbacks = lib.get<decltype(register_callbacks)>("cuptiActivityRegisterCallbacks");
      enable = lib.get<decltype(enable)>("cuptiActivityEnable");
      disable = lib.get<decltype(disable)>("cuptiActivityDisable");
      flush = lib.get<decltype(flush)>("cuptiActivityFlushAll");
      next = lib.get<decltype(next)>("cuptiActivityGetNextRecord");

      timestamp = lib.get<decltype(timestamp)>("cuptiGetTimestamp");
      result_string = lib.get<decltype(result_string)>("cuptiGetResultString");
      check(register_callbacks(&buffer_requested, &buffer_completed),
            "cuptiActivityRegisterCallbacks");
    }
    void check(CUptiResult r, const char* what) const {
      if (r == CUPTI_SUCCESS) return;
      const char* text = nullptr;
      result_string(r, &text);
      throw Error(std::string("kiln: ") + what +
                  " failed: " + (text ? text : "error " + std::to_string(int(r))) +
                  (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED
                       ? " (another profiler holds CUPTI)"
                       : ""));
    }
  };

  void stop_recording() noexcept {
    Api& api = Api::get();
    api.disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);

    api.flush(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    std::lock_guard lock(api.mutex);
    api.session = nullptr;
  }

  static void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
    constexpr size_t bytes = size_t(8) << 20;
    *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, bytes));
    *size = *buffer ? bytes : 0;
    *max_records = 0;
  }
  static void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t,
                                        size_t valid) {
    Api& api = Api::get();
    {
      std::lock_guard lock(api.mutex);
      if (api.session && valid > 0) api.session->parse(api, buffer, valid);
    }
    std::free(buffer);
  }
  // Called with api.mutex held.
  void parse(Api& api, uint8_t* buffer, size_t valid) {
    CUpti_Activity* record = nullptr;
    while (api.next(buffer, valid, &record) == CUPTI_SUCCESS) {
      if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL ||
          record->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        CuptiKernel out;
        out.name = k->name ? k->name : "?";
        out.start_ns = k->start;
        out.end_ns = k->end;
        out.device = k->deviceId;
        out.stream = k->streamId;
        out.correlation = k->correlationId;
        out.grid = {unsigned(k->gridX), unsigned(k->gridY), unsigned(k->gridZ)};
        out.block = {unsigned(k->blockX), unsigned(k->blockY), unsigned(k->blockZ)};
        out.registers = int(k->registersPerThread);
        out.static_shared = int(k->staticSharedMemory);
        out.dynamic_shared = int(k->dynamicSharedMemory);
        kernels_.push_back(std::move(out));
      }
    }
  }

  std::uint64_t base_ns_ = 0;
  std::vector<CuptiKernel> kernels_;
};
#else
class Cupti {
 public:
  Cupti() { throw Error("kiln: CUPTI is not available in a build with KILN_ENABLE_HIP"); }
  std::uint64_t base_ns() const { return 0; }
  std::vector<CuptiKernel> collect() { return {}; }
};
#endif

}  // namespace kiln::prof::detail
