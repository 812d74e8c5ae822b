#pragma once
/// CUPTI's activity API, loaded at run time (libcupti.so.13 or .12, or KILN_CUPTI_LIBRARY):
/// exact kernel start and end times from the GPU, for kernels kiln launched (joined through
/// external correlation ids) and for kernels it did not (cuBLAS, cuDNN, ...).

#if !defined(KILN_ENABLE_HIP)
#include <cupti_activity.h>
#define KILN_PROF_HAS_CUPTI 1
#else
// CUPTI's headers bring the CUDA runtime's vector types, which clash with HIP's.
#define KILN_PROF_HAS_CUPTI 0
#endif

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

#if KILN_PROF_HAS_CUPTI
class Cupti {
 public:
  /// Loads CUPTI and starts recording kernel activity. Throws kiln::Error saying why when
  /// it cannot (missing library, or another profiler holds CUPTI).
  Cupti() {
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
    lib_ = ::kiln::detail::DynamicLibrary::open_first(
        "CUPTI (libcupti.so.13, from the CUDA toolkit)", candidates, "KILN_CUPTI_LIBRARY");
    register_ = lib_.get<decltype(register_)>("cuptiActivityRegisterCallbacks");
    enable_ = lib_.get<decltype(enable_)>("cuptiActivityEnable");
    disable_ = lib_.get<decltype(disable_)>("cuptiActivityDisable");
    flush_ = lib_.get<decltype(flush_)>("cuptiActivityFlushAll");
    next_ = lib_.get<decltype(next_)>("cuptiActivityGetNextRecord");
    push_ = lib_.get<decltype(push_)>("cuptiActivityPushExternalCorrelationId");
    pop_ = lib_.get<decltype(pop_)>("cuptiActivityPopExternalCorrelationId");
    timestamp_ = lib_.get<decltype(timestamp_)>("cuptiGetTimestamp");
    result_string_ = lib_.get<decltype(result_string_)>("cuptiGetResultString");
    self() = this;
    check(register_(&buffer_requested, &buffer_completed), "cuptiActivityRegisterCallbacks");
    check(enable_(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)");
    check(enable_(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION),
          "cuptiActivityEnable(EXTERNAL_CORRELATION)");
    check(timestamp_(&base_ns_), "cuptiGetTimestamp");
  }
  Cupti(const Cupti&) = delete;
  Cupti& operator=(const Cupti&) = delete;
  ~Cupti() {
    disable_(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    disable_(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
    flush_(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    self() = nullptr;
  }

  /// Tags the next launches on this thread with `id` (kiln's record), until pop().
  void push(std::uint64_t id) const { push_(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id); }
  void pop() const {
    std::uint64_t id = 0;
    pop_(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &id);
  }
  /// CUPTI's clock when recording began, in nanoseconds.
  std::uint64_t base_ns() const { return base_ns_; }

  /// Delivers every finished record; returns the kernels, and fills `external_ids` with
  /// CUPTI correlation id -> kiln id.
  std::vector<CuptiKernel> collect(std::unordered_map<std::uint32_t, std::uint64_t>& external_ids) {
    flush_(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    std::lock_guard lock(mutex_);
    for (const auto& [c, e] : correlations_) external_ids[c] = e;
    correlations_.clear();
    return std::move(kernels_);
  }

 private:
  void check(CUptiResult r, const char* what) const {
    if (r == CUPTI_SUCCESS) return;
    const char* text = nullptr;
    result_string_(r, &text);
    throw Error(std::string("kiln: ") + what +
                " failed: " + (text ? text : "error " + std::to_string(int(r))) +
                (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED
                     ? " (another profiler holds CUPTI)"
                     : ""));
  }
  static Cupti*& self() {
    static Cupti* instance = nullptr;
    return instance;
  }
  static void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
    constexpr size_t bytes = size_t(8) << 20;
    *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, bytes));
    *size = *buffer ? bytes : 0;
    *max_records = 0;
  }
  static void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t,
                                        size_t valid) {
    Cupti* c = self();
    if (c && valid > 0) c->parse(buffer, valid);
    std::free(buffer);
  }
  void parse(uint8_t* buffer, size_t valid) {
    std::lock_guard lock(mutex_);
    CUpti_Activity* record = nullptr;
    while (next_(buffer, valid, &record) == CUPTI_SUCCESS) {
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
      } else if (record->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
        const auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(record);
        if (e->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0)
          correlations_[e->correlationId] = e->externalId;
      }
    }
  }

  ::kiln::detail::DynamicLibrary lib_;
  decltype(&::cuptiActivityRegisterCallbacks) register_ = nullptr;
  decltype(&::cuptiActivityEnable) enable_ = nullptr;
  decltype(&::cuptiActivityDisable) disable_ = nullptr;
  decltype(&::cuptiActivityFlushAll) flush_ = nullptr;
  decltype(&::cuptiActivityGetNextRecord) next_ = nullptr;
  decltype(&::cuptiActivityPushExternalCorrelationId) push_ = nullptr;
  decltype(&::cuptiActivityPopExternalCorrelationId) pop_ = nullptr;
  decltype(&::cuptiGetTimestamp) timestamp_ = nullptr;
  decltype(&::cuptiGetResultString) result_string_ = nullptr;
  std::uint64_t base_ns_ = 0;
  std::mutex mutex_;
  std::vector<CuptiKernel> kernels_;
  std::unordered_map<std::uint32_t, std::uint64_t> correlations_;
};

#else
class Cupti {
 public:
  Cupti() { throw Error("kiln: CUPTI is not available in a build with KILN_ENABLE_HIP"); }
  void push(std::uint64_t) const {}
  void pop() const {}
  std::uint64_t base_ns() const { return 0; }
  std::vector<CuptiKernel> collect(std::unordered_map<std::uint32_t, std::uint64_t>&) { return {}; }
};
#endif

}  // namespace kiln::prof::detail
