#pragma once
/// The HIP runtime's module API (libamdhip64), loaded at run time. HIP has no
/// cuGetProcAddress: entry points are found with dlsym under their plain names, and typed
/// from the hip_runtime_api.h kiln is built with, so each one has the signature that header
/// declares. Building needs the HIP headers (ROCm, or Debian's libamdhip64-dev); running
/// needs libamdhip64 only where HIP is used.

#ifndef __HIP_PLATFORM_AMD__
#define __HIP_PLATFORM_AMD__
#endif
// ROCm's headers are not clean under kiln's warning flags; quiet them for this include only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#include <hip/hip_runtime_api.h>
#pragma GCC diagnostic pop

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../detail/dynamic_library.hpp"
#include "driver_api.hpp"

namespace kiln::rt {

namespace hip_detail {

// The entry points kiln uses. HIP exports each under the name it is declared with, so one
// list gives both the member's type (from this header) and the symbol dlsym looks up.
// clang-format off
#define KILN_HIP_FUNCTIONS(X)                                                                     \
  X(hipInit) X(hipDriverGetVersion) X(hipRuntimeGetVersion) X(hipGetDeviceCount) X(hipDeviceGet) \
  X(hipDeviceGetName) X(hipDeviceGetAttribute) X(hipDeviceTotalMem) X(hipDevicePrimaryCtxRetain)  \
  X(hipDevicePrimaryCtxRelease) X(hipCtxSetCurrent) X(hipCtxGetCurrent) X(hipCtxSynchronize) X(hipFree) \
  X(hipMemGetInfo) X(hipHostFree) X(hipMemcpyHtoDAsync) X(hipMemcpyDtoHAsync)                     \
  X(hipMemcpyDtoDAsync) X(hipMemsetD8Async) X(hipMemsetD32Async) X(hipStreamCreateWithFlags)      \
  X(hipStreamDestroy) X(hipStreamSynchronize) X(hipStreamWaitEvent) X(hipEventCreate) X(hipEventRecord) \
  X(hipEventSynchronize) X(hipEventQuery) X(hipEventElapsedTime) X(hipEventDestroy) X(hipModuleLoadData)           \
  X(hipModuleUnload) X(hipModuleGetFunction) X(hipFuncGetAttribute)                               \
  X(hipModuleOccupancyMaxActiveBlocksPerMultiprocessor) X(hipModuleLaunchKernel)                  \
  X(hipGetErrorName) X(hipGetErrorString)
// clang-format on

// hipCtxSetCurrent/GetCurrent are deprecated in HIP but are its only way to bind the
// primary context to a thread, which DriverApi needs; naming them here is intended.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
struct Fns {
#define KILN_HIP_MEMBER(name) decltype(&::name) name;
  KILN_HIP_FUNCTIONS(KILN_HIP_MEMBER)
#undef KILN_HIP_MEMBER
  // These two have template overloads in C++: name the C entry points.
  decltype(static_cast<hipError_t (*)(void**, std::size_t)>(&::hipMalloc)) hipMalloc;
  decltype(static_cast<hipError_t (*)(void**, std::size_t, unsigned)>(
      &::hipHostMalloc)) hipHostMalloc;
  decltype(&::hipGetDeviceProperties) properties;          // may be null: see arch_name()
  decltype(&::hipStreamIsCapturing) hipStreamIsCapturing;  // may be null
};
#pragma GCC diagnostic pop

inline Fns fns{};

/// The library names tried, in order, when KILN_HIP_LIBRARY is not set.
inline std::vector<std::string> library_candidates() {
  return {"libamdhip64.so.7",
          "libamdhip64.so.6",
          "libamdhip64.so",
          "/opt/rocm/lib/libamdhip64.so.7",
          "/opt/rocm/lib/libamdhip64.so.6",
          "/opt/rocm/lib/libamdhip64.so"};
}

// Enumerator values are ABI: HIP only appends to these enums (retired entries become
// hipDeviceAttributeUnusedN in place), so the header's values hold for later libraries.
// clang-format off
inline hipDeviceAttribute_t to_hip(DeviceAttribute a) {
  switch (a) {
    case DeviceAttribute::compute_major: return hipDeviceAttributeComputeCapabilityMajor;
    case DeviceAttribute::compute_minor: return hipDeviceAttributeComputeCapabilityMinor;
    case DeviceAttribute::multiprocessor_count: return hipDeviceAttributeMultiprocessorCount;
    case DeviceAttribute::warp_size: return hipDeviceAttributeWarpSize;
    case DeviceAttribute::max_threads_per_block: return hipDeviceAttributeMaxThreadsPerBlock;
    case DeviceAttribute::max_threads_per_multiprocessor: return hipDeviceAttributeMaxThreadsPerMultiProcessor;
    case DeviceAttribute::max_block_x: return hipDeviceAttributeMaxBlockDimX;
    case DeviceAttribute::max_block_y: return hipDeviceAttributeMaxBlockDimY;
    case DeviceAttribute::max_block_z: return hipDeviceAttributeMaxBlockDimZ;
    case DeviceAttribute::max_grid_x: return hipDeviceAttributeMaxGridDimX;
    case DeviceAttribute::max_grid_y: return hipDeviceAttributeMaxGridDimY;
    case DeviceAttribute::max_grid_z: return hipDeviceAttributeMaxGridDimZ;
    case DeviceAttribute::shared_memory_per_block: return hipDeviceAttributeMaxSharedMemoryPerBlock;
    // ROCm 6 answers this; older runtimes may report hipErrorInvalidValue.
    case DeviceAttribute::shared_memory_per_block_optin: return hipDeviceAttributeSharedMemPerBlockOptin;
    // The AMD attribute: ROCm 5's header marks hipDeviceAttributeSharedMemPerMultiprocessor "Cuda only".
    case DeviceAttribute::shared_memory_per_multiprocessor: return hipDeviceAttributeMaxSharedMemoryPerMultiprocessor;
    case DeviceAttribute::registers_per_multiprocessor: return hipDeviceAttributeMaxRegistersPerMultiprocessor;
    case DeviceAttribute::registers_per_block: return hipDeviceAttributeMaxRegistersPerBlock;
    case DeviceAttribute::l2_cache_bytes: return hipDeviceAttributeL2CacheSize;
    case DeviceAttribute::clock_khz: return hipDeviceAttributeClockRate;
    case DeviceAttribute::memory_clock_khz: return hipDeviceAttributeMemoryClockRate;
    case DeviceAttribute::memory_bus_width_bits: return hipDeviceAttributeMemoryBusWidth;
    case DeviceAttribute::count_: break;
  }
  return hipDeviceAttributeCudaCompatibleEnd;  // not an attribute: hipErrorInvalidValue
}

inline hipFunction_attribute to_hip(FunctionAttribute a) {
  switch (a) {
    case FunctionAttribute::max_threads_per_block: return HIP_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK;
    case FunctionAttribute::registers: return HIP_FUNC_ATTRIBUTE_NUM_REGS;
    case FunctionAttribute::static_shared_bytes: return HIP_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES;
    case FunctionAttribute::local_bytes: return HIP_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES;
    case FunctionAttribute::max_dynamic_shared_bytes: return HIP_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
    case FunctionAttribute::count_: break;
  }
  return HIP_FUNC_ATTRIBUTE_MAX;
}
// clang-format on

/// "gfx942:sramecc+:xnack-" -> "gfx942": the target name compilers take.
inline std::string_view strip_arch_features(std::string_view gcn_arch_name) {
  return gcn_arch_name.substr(0, gcn_arch_name.find(':'));
}

// hipDeviceProp_t changed layout in ROCm 6, which exports the new one as
// hipGetDevicePropertiesR0600 (its header #defines hipGetDeviceProperties to that) and keeps
// ROCm 5's under the plain name and hipGetDevicePropertiesR0000. Reading gcnArchName at this
// header's offset from the wrong one would yield garbage, so kiln binds the symbol whose
// layout is this header's: its versioned name, else R0000 where this header has R0000's
// gcnArchName offset (ROCm 5 on LP64), else the plain name only when the library's major
// version is the header's (see load_hip_driver). Without one, arch_name() fails.
#define KILN_HIP_STRINGIFY_(x) #x
#define KILN_HIP_STRINGIFY(x) KILN_HIP_STRINGIFY_(x)
/// The header's own name for hipGetDeviceProperties ("hipGetDevicePropertiesR0600" from ROCm 6).
inline constexpr std::string_view header_properties_symbol =
    KILN_HIP_STRINGIFY(hipGetDeviceProperties);
#undef KILN_HIP_STRINGIFY
#undef KILN_HIP_STRINGIFY_
inline constexpr bool header_is_versioned = header_properties_symbol != "hipGetDeviceProperties";
inline constexpr bool header_has_r0000_layout =
    sizeof(void*) == 8 && offsetof(hipDeviceProp_t, gcnArchName) == 396;
/// The symbol tried first for device properties, or null where there is none to trust.
inline const char* versioned_properties_symbol() {
  if (header_is_versioned) return header_properties_symbol.data();
  return header_has_r0000_layout ? "hipGetDevicePropertiesR0000" : nullptr;
}

/// device_arch_name: gcnArchName without feature suffixes. hipErrorNotSupported where no
/// properties symbol with this header's layout was found; hipErrorInvalidValue where the name
/// does not fit in `length` (a truncated target name would be a different target).
inline int arch_name(char* out, int length, int device) {
  if (!fns.properties) return hipErrorNotSupported;
  if (!out || length <= 0) return hipErrorInvalidValue;
  // Larger than the header's struct, in case the library's layout grew at the end.
  alignas(std::max_align_t) unsigned char buffer[sizeof(hipDeviceProp_t) + 4096] = {};
  auto* props = reinterpret_cast<hipDeviceProp_t*>(buffer);
  if (hipError_t r = fns.properties(props, device); r != hipSuccess) return r;
  const auto arch = strip_arch_features(
      {props->gcnArchName, ::strnlen(props->gcnArchName, sizeof(props->gcnArchName))});
  if (arch.empty()) return hipErrorNotSupported;
  if (arch.size() >= static_cast<std::size_t>(length)) return hipErrorInvalidValue;
  std::memcpy(out, arch.data(), arch.size());
  out[arch.size()] = '\0';
  return hipSuccess;
}

// clang-format off
inline void* ptr(std::uint64_t a) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(a)); }
inline hipStream_t stream(void* s) { return static_cast<hipStream_t>(s); }
inline hipFunction_t function(void* f) { return static_cast<hipFunction_t>(f); }
// clang-format on

/// Calls `fn(&handle, args...)` and hands the handle back as void*.
template <class Handle, class Fn, class... Args>
int get_handle(void** out, Fn fn, Args... args) {
  Handle handle{};
  hipError_t r = fn(&handle, args...);
  *out = handle;
  return int(r);
}

/// Points every DriverApi entry at `fns`. Two stay null, which kiln reads as "not supported":
/// function_set_max_dynamic_shared (hipFuncSetAttribute takes a host-side kernel stub, not a
/// hipFunction_t; AMD GPUs need no opt-in for dynamic LDS) and function_param_info (HIP
/// cannot report parameter sizes).
inline void fill(DriverApi& api) {
  api.error_name = [](int c, const char** n) {
    *n = fns.hipGetErrorName(static_cast<hipError_t>(c));
    return int(hipSuccess);
  };
  api.error_string = [](int c, const char** t) {
    *t = fns.hipGetErrorString(static_cast<hipError_t>(c));
    return int(hipSuccess);
  };
  api.device_count = [](int* n) {
    // HIP reports no devices as hipErrorNoDevice; CUDA (and DriverApi) as success with 0.
    hipError_t r = fns.hipGetDeviceCount(n);
    if (r == hipErrorNoDevice) *n = 0;
    return r == hipErrorNoDevice ? int(hipSuccess) : int(r);
  };
  api.device_get = [](int* d, int i) {
    hipDevice_t dev = 0;
    hipError_t r = fns.hipDeviceGet(&dev, i);
    *d = int(dev);
    return int(r);
  };
  api.device_name = [](char* s, int n, int d) { return int(fns.hipDeviceGetName(s, n, d)); };
  api.device_attribute = [](int* v, DeviceAttribute a, int d) {
    return int(fns.hipDeviceGetAttribute(v, to_hip(a), d));
  };
  api.device_total_memory = [](std::size_t* b, int d) { return int(fns.hipDeviceTotalMem(b, d)); };
  api.device_arch_name = arch_name;
  api.primary_context_retain = [](void** c, int d) {
    return get_handle<hipCtx_t>(c, fns.hipDevicePrimaryCtxRetain, d);
  };
  api.primary_context_release = [](int d) { return int(fns.hipDevicePrimaryCtxRelease(d)); };
  api.context_set_current = [](void* c) {
    return int(fns.hipCtxSetCurrent(static_cast<hipCtx_t>(c)));
  };
  api.context_get_current = [](void** c) { return get_handle<hipCtx_t>(c, fns.hipCtxGetCurrent); };
  api.context_synchronize = [] { return int(fns.hipCtxSynchronize()); };
  api.memory_allocate = [](std::uint64_t* a, std::size_t n) {
    void* p = nullptr;
    hipError_t r = fns.hipMalloc(&p, n);
    *a = std::uint64_t(reinterpret_cast<std::uintptr_t>(p));
    return int(r);
  };
  api.memory_free = [](std::uint64_t a) { return int(fns.hipFree(ptr(a))); };
  api.memory_info = [](std::size_t* f, std::size_t* t) { return int(fns.hipMemGetInfo(f, t)); };
  api.host_allocate = [](void** p, std::size_t n) {
    return int(fns.hipHostMalloc(p, n, hipHostMallocPortable));
  };
  api.host_free = [](void* p) { return int(fns.hipHostFree(p)); };
  api.copy_to_device = [](std::uint64_t d, const void* s, std::size_t n, void* st) {
    // HIP declares the source non-const; it only reads it.
    return int(fns.hipMemcpyHtoDAsync(ptr(d), const_cast<void*>(s), n, stream(st)));
  };
  api.copy_to_host = [](void* d, std::uint64_t s, std::size_t n, void* st) {
    return int(fns.hipMemcpyDtoHAsync(d, ptr(s), n, stream(st)));
  };
  api.copy_device = [](std::uint64_t d, std::uint64_t s, std::size_t n, void* st) {
    return int(fns.hipMemcpyDtoDAsync(ptr(d), ptr(s), n, stream(st)));
  };
  api.fill_bytes = [](std::uint64_t d, unsigned char v, std::size_t n, void* st) {
    return int(fns.hipMemsetD8Async(ptr(d), v, n, stream(st)));
  };
  api.fill_words = [](std::uint64_t d, unsigned v, std::size_t n, void* st) {
    return int(fns.hipMemsetD32Async(ptr(d), static_cast<int>(v), n, stream(st)));  // same bits
  };
  api.stream_create = [](void** s) {
    return get_handle<hipStream_t>(s, fns.hipStreamCreateWithFlags, unsigned(hipStreamNonBlocking));
  };
  api.stream_destroy = [](void* s) { return int(fns.hipStreamDestroy(stream(s))); };
  api.stream_synchronize = [](void* s) { return int(fns.hipStreamSynchronize(stream(s))); };
  api.stream_wait_event = [](void* s, void* e) {
    return int(fns.hipStreamWaitEvent(stream(s), static_cast<hipEvent_t>(e), 0));
  };
  if (fns.hipStreamIsCapturing) {
    api.stream_is_capturing = [](void* s, int* capturing) {
      hipStreamCaptureStatus status = hipStreamCaptureStatusNone;
      const int r = int(fns.hipStreamIsCapturing(stream(s), &status));
      *capturing = status != hipStreamCaptureStatusNone ? 1 : 0;
      return r;
    };
  }
  api.event_create = [](void** e) { return get_handle<hipEvent_t>(e, fns.hipEventCreate); };
  api.event_record = [](void* e, void* s) {
    return int(fns.hipEventRecord(static_cast<hipEvent_t>(e), stream(s)));
  };
  api.event_synchronize = [](void* e) {
    return int(fns.hipEventSynchronize(static_cast<hipEvent_t>(e)));
  };
  api.event_query = [](void* e) { return int(fns.hipEventQuery(static_cast<hipEvent_t>(e))); };
  api.event_elapsed_ms = [](float* ms, void* a, void* b) {
    return int(fns.hipEventElapsedTime(ms, static_cast<hipEvent_t>(a), static_cast<hipEvent_t>(b)));
  };
  api.event_destroy = [](void* e) { return int(fns.hipEventDestroy(static_cast<hipEvent_t>(e))); };
  api.module_load = [](void** m, const void* image) {
    return get_handle<hipModule_t>(m, fns.hipModuleLoadData, image);
  };
  api.module_unload = [](void* m) { return int(fns.hipModuleUnload(static_cast<hipModule_t>(m))); };
  api.module_function = [](void** f, void* m, const char* name) {
    return get_handle<hipFunction_t>(f, fns.hipModuleGetFunction, static_cast<hipModule_t>(m),
                                     name);
  };
  api.function_attribute = [](int* v, FunctionAttribute a, void* f) {
    return int(fns.hipFuncGetAttribute(v, to_hip(a), function(f)));
  };
  api.occupancy = [](int* b, void* f, int block, std::size_t smem) {
    return int(fns.hipModuleOccupancyMaxActiveBlocksPerMultiprocessor(b, function(f), block, smem));
  };
  api.launch = [](void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                  unsigned bz, unsigned smem, void* s, void** params) {
    return int(fns.hipModuleLaunchKernel(function(f), gx, gy, gz, bx, by, bz, smem, stream(s),
                                         params, nullptr));
  };
}

}  // namespace hip_detail

/// Opens libamdhip64 (or KILN_HIP_LIBRARY), initializes HIP, and fills a DriverApi.
/// Throws NoDeviceError when the library is missing or hipInit fails (no GPU, no driver).
inline std::unique_ptr<DriverApi> load_hip_driver() {
  using namespace hip_detail;
  static ::kiln::detail::DynamicLibrary lib;
  if (!lib) {
    try {
      lib = ::kiln::detail::DynamicLibrary::open_first(
          "the HIP runtime (libamdhip64.so, from ROCm)", library_candidates(), "KILN_HIP_LIBRARY");
    } catch (const LibraryError& e) {
      throw NoDeviceError(std::string(e.what()) +
                          "\nNo HIP runtime: is this a machine with an AMD GPU and ROCm?");
    }
  }
  auto load = [&](auto& fn, const char* name, bool required = true) {
    void* p = lib.find(name);
    if (!p && required) {
      throw LibraryError(std::string("kiln: the HIP runtime ") + lib.path() + " has no " + name +
                         " (kiln was built with HIP " + std::to_string(HIP_VERSION_MAJOR) + "." +
                         std::to_string(HIP_VERSION_MINOR) + " headers); update ROCm");
    }
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
  };
#define KILN_HIP_LOAD(name) load(fns.name, #name);
  KILN_HIP_FUNCTIONS(KILN_HIP_LOAD)
#undef KILN_HIP_LOAD
  load(fns.hipMalloc, "hipMalloc");
  load(fns.hipHostMalloc, "hipHostMalloc");
  load(fns.hipStreamIsCapturing, "hipStreamIsCapturing", false);

  auto api = std::make_unique<DriverApi>();
  api->platform = Platform::hip;
  api->library = lib.path();
  fill(*api);
  if (hipError_t r = fns.hipInit(0); r != hipSuccess) {
    throw NoDeviceError(api->describe(r, "hipInit", "starting the HIP runtime") +
                        "\nNo usable AMD GPU: check rocminfo, access to /dev/kfd and /dev/dri (the "
                        "video and render groups), and HIP_VISIBLE_DEVICES.");
  }
  if (fns.hipDriverGetVersion(&api->driver_version) != hipSuccess) api->driver_version = 0;

  // Device properties: the symbol whose hipDeviceProp_t is this header's (see arch_name()).
  int runtime = 0;
  if (fns.hipRuntimeGetVersion(&runtime) != hipSuccess) runtime = 0;
  fns.properties = nullptr;
  if (const char* versioned = versioned_properties_symbol()) load(fns.properties, versioned, false);
  if (!fns.properties && !header_is_versioned && runtime / 10000000 == HIP_VERSION_MAJOR) {
    load(fns.properties, "hipGetDeviceProperties", false);
  }
  return api;
}

}  // namespace kiln::rt

#undef KILN_HIP_FUNCTIONS
