#pragma once
/// The driver entry points kiln uses, in one shape for CUDA and HIP.
///
/// Each backend (cuda_driver.hpp, hip_driver.hpp) opens its library at run time and fills a
/// DriverApi with small wrappers over its own typed functions, so the rest of kiln/rt is
/// written once. Handles are opaque pointers, device addresses 64-bit integers, and
/// results plain ints (CUresult or hipError_t; 0 is success on both).

#include <cstddef>
#include <cstdint>
#include <string>

#include "../detail/enum_names.hpp"
#include "../error.hpp"

namespace kiln::rt {

enum class Platform { cuda, hip };

inline constexpr auto platform_names =
    kiln::detail::enum_names<Platform>({{Platform::cuda, "CUDA"}, {Platform::hip, "HIP"}});

inline const char* to_string(Platform p) {
  return platform_names.name(p);
}

/// A driver call failed. The message holds the API name, the driver's error name and
/// text, and what kiln was doing.
class DriverError : public Error {
 public:
  DriverError(const std::string& message, int code) : Error(message), code_(code) {}
  /// The driver's result code (CUresult or hipError_t).
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// No driver library, or no device: programs can ask device_count() first.
class NoDeviceError : public Error {
 public:
  using Error::Error;
};

/// Device attributes kiln reads, by meaning; each backend maps them to its codes.
enum class DeviceAttribute {
  compute_major,
  compute_minor,
  multiprocessor_count,
  warp_size,
  max_threads_per_block,
  max_threads_per_multiprocessor,
  max_block_x,
  max_block_y,
  max_block_z,
  max_grid_x,
  max_grid_y,
  max_grid_z,
  shared_memory_per_block,
  shared_memory_per_block_optin,
  shared_memory_per_multiprocessor,
  registers_per_multiprocessor,
  registers_per_block,
  l2_cache_bytes,
  clock_khz,
  memory_clock_khz,
  memory_bus_width_bits,
  count_
};

/// Kernel attributes kiln reads.
enum class FunctionAttribute {
  max_threads_per_block,
  registers,
  static_shared_bytes,
  local_bytes,
  max_dynamic_shared_bytes,
  count_
};

/// Element types of a TMA tensor map (the driver's CUtensorMapDataType, by meaning).
enum class TensorMapElement { u8, u16, u32, u64, f16, bf16, f32 };

struct DriverApi {
  Platform platform = Platform::cuda;
  std::string library;  ///< the library loaded
  int driver_version = 0;

  int (*device_count)(int* count) = nullptr;
  int (*device_get)(int* device, int ordinal) = nullptr;
  int (*device_name)(char* name, int length, int device) = nullptr;
  int (*device_attribute)(int* value, DeviceAttribute attribute, int device) = nullptr;
  int (*device_total_memory)(std::size_t* bytes, int device) = nullptr;
  /// The architecture name for compilers ("gfx942"); null on CUDA (built from the
  /// compute capability there).
  int (*device_arch_name)(char* name, int length, int device) = nullptr;

  int (*primary_context_retain)(void** context, int device) = nullptr;
  int (*primary_context_release)(int device) = nullptr;
  int (*context_set_current)(void* context) = nullptr;
  int (*context_get_current)(void** context) = nullptr;
  /// Waits for all work of the current context.
  int (*context_synchronize)() = nullptr;

  int (*memory_allocate)(std::uint64_t* address, std::size_t bytes) = nullptr;
  int (*memory_free)(std::uint64_t address) = nullptr;
  int (*memory_info)(std::size_t* free, std::size_t* total) = nullptr;
  int (*host_allocate)(void** pointer, std::size_t bytes) = nullptr;  ///< pinned
  int (*host_free)(void* pointer) = nullptr;
  int (*copy_to_device)(std::uint64_t dst, const void* src, std::size_t bytes,
                        void* stream) = nullptr;
  int (*copy_to_host)(void* dst, std::uint64_t src, std::size_t bytes, void* stream) = nullptr;
  int (*copy_device)(std::uint64_t dst, std::uint64_t src, std::size_t bytes,
                     void* stream) = nullptr;
  int (*fill_bytes)(std::uint64_t dst, unsigned char value, std::size_t bytes,
                    void* stream) = nullptr;
  int (*fill_words)(std::uint64_t dst, unsigned value, std::size_t words, void* stream) = nullptr;

  int (*stream_create)(void** stream) = nullptr;  ///< non-blocking with the default stream
  int (*stream_destroy)(void* stream) = nullptr;
  int (*stream_synchronize)(void* stream) = nullptr;
  /// Makes `stream`'s later work wait for what `event` recorded (no host wait).
  int (*stream_wait_event)(void* stream, void* event) = nullptr;
  /// Sets *capturing to 1 while `stream` is being captured into a graph, else 0. May be
  /// null (a driver without graphs).
  int (*stream_is_capturing)(void* stream, int* capturing) = nullptr;
  int (*event_create)(void** event) = nullptr;
  int (*event_record)(void* event, void* stream) = nullptr;
  int (*event_synchronize)(void* event) = nullptr;
  /// 0 when the event has completed, nonzero (not ready) otherwise.
  int (*event_query)(void* event) = nullptr;
  int (*event_elapsed_ms)(float* ms, void* start, void* end) = nullptr;
  int (*event_destroy)(void* event) = nullptr;

  int (*module_load)(void** module, const void* image) = nullptr;
  int (*module_unload)(void* module) = nullptr;
  int (*module_function)(void** function, void* module, const char* name) = nullptr;
  int (*function_attribute)(int* value, FunctionAttribute attribute, void* function) = nullptr;
  int (*function_set_max_dynamic_shared)(void* function, int bytes) = nullptr;
  /// Lets `function` launch in thread-block clusters of more than 8 blocks, sizes that are
  /// not portable (CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED); null where the
  /// driver has no clusters (HIP).
  int (*function_allow_non_portable_clusters)(void* function) = nullptr;
  int (*occupancy)(int* blocks, void* function, int block_size,
                   std::size_t dynamic_shared) = nullptr;
  /// Offset and size of parameter `index`; null where the driver cannot tell (then
  /// kiln cannot check argument sizes). Returns nonzero past the last parameter.
  int (*function_param_info)(void* function, std::size_t index, std::size_t* offset,
                             std::size_t* size) = nullptr;
  int (*launch)(void* function, unsigned grid_x, unsigned grid_y, unsigned grid_z, unsigned block_x,
                unsigned block_y, unsigned block_z, unsigned shared_bytes, void* stream,
                void** params) = nullptr;
  /// A cooperative launch (cuLaunchCooperativeKernel): every block of the grid runs at
  /// once, or the launch fails (too large); null where the driver has none.
  int (*launch_cooperative)(void* function, unsigned grid_x, unsigned grid_y, unsigned grid_z,
                            unsigned block_x, unsigned block_y, unsigned block_z,
                            unsigned shared_bytes, void* stream, void** params) = nullptr;
  /// A launch with attributes (cuLaunchKernelEx): in thread-block clusters of cluster[0] x
  /// [1] x [2] blocks where that is more than one block, and, where `programmatic`, allowed
  /// to start before the kernel before it in the stream ends (programmatic stream
  /// serialization); null where the driver has none (HIP, CUDA < 12).
  int (*launch_ex)(void* function, const unsigned* grid, const unsigned* block,
                   const unsigned* cluster, bool programmatic, unsigned shared_bytes, void* stream,
                   void** params) = nullptr;
  /// The most clusters of cluster[0] x [1] x [2] blocks of block[0] x [1] x [2] threads
  /// with `shared_bytes` of dynamic shared memory each that the device runs at once
  /// (cuOccupancyMaxActiveClusters); null where the driver has none.
  int (*max_active_clusters)(int* clusters, void* function, const unsigned* block,
                             const unsigned* cluster, unsigned shared_bytes) = nullptr;
  /// The most blocks of block[0] x [1] x [2] threads with `shared_bytes` of dynamic shared
  /// memory each that one cluster of `function` may hold on the device
  /// (cuOccupancyMaxPotentialClusterSize: more than 8 only where the function is allowed
  /// non-portable sizes); null where the driver has none.
  int (*max_cluster_size)(int* blocks, void* function, const unsigned* block,
                          unsigned shared_bytes) = nullptr;

  /// Encodes a tiled TMA tensor map (cuTensorMapEncodeTiled) into `map` (128 bytes,
  /// 64-byte aligned): `rank` dimensions innermost first, strides in bytes of dimensions
  /// 1 .. rank - 1, the box, a swizzle of 0, 32, 64 or 128 bytes; zero fill outside the
  /// tensor. Null where the driver has none (HIP, CUDA < 12).
  int (*tensor_map_encode_tiled)(void* map, TensorMapElement element, unsigned rank,
                                 std::uint64_t address, const std::uint64_t* dims,
                                 const std::uint64_t* strides, const unsigned* box,
                                 int swizzle_bytes) = nullptr;

  int (*error_name)(int code, const char** name) = nullptr;
  int (*error_string)(int code, const char** text) = nullptr;

  /// Throws DriverError when `code` is not success: "<api> failed: <NAME> (<text>) while <what>".
  void check(int code, const char* api, const std::string& what = {}) const {
    if (code == 0) return;
    throw DriverError(describe(code, api, what), code);
  }
  /// The message check() would throw.
  std::string describe(int code, const char* api, const std::string& what) const {
    const char* name = nullptr;
    const char* text = nullptr;
    if (error_name) error_name(code, &name);
    if (error_string) error_string(code, &text);
    std::string msg = std::string("kiln: ") + api +
                      " failed: " + (name ? name : "error " + std::to_string(code)) +
                      (text ? std::string(" (") + text + ")" : std::string());
    if (!what.empty()) msg += " while " + what;
    return msg;
  }
};

}  // namespace kiln::rt
