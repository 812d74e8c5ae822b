#pragma once
/// The CUDA driver API (libcuda.so.1), loaded at run time. Entry points are resolved with
/// cuGetProcAddress for the CUDA version of the cuda.h kiln was built with, so each one
/// has exactly the signature that header declares.

#include <cuda.h>

#include <memory>
#include <string>

#include "../detail/dynamic_library.hpp"
#include "driver_api.hpp"

namespace kiln::rt {

namespace cuda_detail {

struct Fns {
  decltype(&::cuInit) init;
  decltype(&::cuDriverGetVersion) driver_version;
  decltype(&::cuDeviceGetCount) device_count;
  decltype(&::cuDeviceGet) device_get;
  decltype(&::cuDeviceGetName) device_name;
  decltype(&::cuDeviceGetAttribute) device_attribute;
  decltype(&::cuDeviceTotalMem) total_mem;
  decltype(&::cuDevicePrimaryCtxRetain) primary_retain;
  decltype(&::cuDevicePrimaryCtxRelease) primary_release;
  decltype(&::cuCtxSetCurrent) ctx_set;
  decltype(&::cuCtxGetCurrent) ctx_get;
  decltype(&::cuCtxSynchronize) ctx_sync;
  decltype(&::cuMemAlloc) mem_alloc;
  decltype(&::cuMemFree) mem_free;
  decltype(&::cuMemGetInfo) mem_info;
  decltype(&::cuMemHostAlloc) host_alloc;
  decltype(&::cuMemFreeHost) host_free;
  decltype(&::cuMemcpyHtoDAsync) htod;
  decltype(&::cuMemcpyDtoHAsync) dtoh;
  decltype(&::cuMemcpyDtoDAsync) dtod;
  decltype(&::cuMemsetD8Async) memset8;
  decltype(&::cuMemsetD32Async) memset32;
  decltype(&::cuStreamCreate) stream_create;
  decltype(&::cuStreamDestroy) stream_destroy;
  decltype(&::cuStreamSynchronize) stream_sync;
  decltype(&::cuStreamWaitEvent) stream_wait_event;
  decltype(&::cuStreamIsCapturing) stream_is_capturing;  // may be null
  decltype(&::cuEventCreate) event_create;
  decltype(&::cuEventRecord) event_record;
  decltype(&::cuEventSynchronize) event_sync;
  decltype(&::cuEventQuery) event_query;
  decltype(&::cuEventElapsedTime) event_elapsed;
  decltype(&::cuEventDestroy) event_destroy;
  decltype(&::cuModuleLoadData) module_load;
  decltype(&::cuModuleUnload) module_unload;
  decltype(&::cuModuleGetFunction) module_function;
  decltype(&::cuFuncGetAttribute) func_attribute;
  decltype(&::cuFuncSetAttribute) func_set_attribute;
  decltype(&::cuOccupancyMaxActiveBlocksPerMultiprocessor) occupancy;
  decltype(&::cuFuncGetParamInfo) param_info;  // CUDA 12.4 and later; may be null
  decltype(&::cuLaunchKernel) launch;
  decltype(&::cuLaunchCooperativeKernel) launch_cooperative;
  decltype(&::cuLaunchKernelEx) launch_ex;  // CUDA 12.0 and later; may be null
  decltype(&::cuOccupancyMaxActiveClusters)
      max_active_clusters;  // CUDA 12.0 and later; may be null
  decltype(&::cuOccupancyMaxPotentialClusterSize)
      max_cluster_size;                                         // CUDA 12.0 and later; may be null
  decltype(&::cuTensorMapEncodeTiled) tensor_map_encode_tiled;  // CUDA 12.0 and later; may be null
  decltype(&::cuGetErrorName) error_name;
  decltype(&::cuGetErrorString) error_string;
};

inline Fns fns{};

inline CUdevice_attribute to_cuda(DeviceAttribute a) {
  switch (a) {
    case DeviceAttribute::compute_major:
      return CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR;
    case DeviceAttribute::compute_minor:
      return CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR;
    case DeviceAttribute::multiprocessor_count:
      return CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT;
    case DeviceAttribute::warp_size:
      return CU_DEVICE_ATTRIBUTE_WARP_SIZE;
    case DeviceAttribute::max_threads_per_block:
      return CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK;
    case DeviceAttribute::max_threads_per_multiprocessor:
      return CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR;
    case DeviceAttribute::max_block_x:
      return CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X;
    case DeviceAttribute::max_block_y:
      return CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y;
    case DeviceAttribute::max_block_z:
      return CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z;
    case DeviceAttribute::max_grid_x:
      return CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X;
    case DeviceAttribute::max_grid_y:
      return CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y;
    case DeviceAttribute::max_grid_z:
      return CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z;
    case DeviceAttribute::shared_memory_per_block:
      return CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK;
    case DeviceAttribute::shared_memory_per_block_optin:
      return CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN;
    case DeviceAttribute::shared_memory_per_multiprocessor:
      return CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR;
    case DeviceAttribute::registers_per_multiprocessor:
      return CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR;
    case DeviceAttribute::registers_per_block:
      return CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK;
    case DeviceAttribute::l2_cache_bytes:
      return CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE;
    case DeviceAttribute::clock_khz:
      return CU_DEVICE_ATTRIBUTE_CLOCK_RATE;
    case DeviceAttribute::memory_clock_khz:
      return CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE;
    case DeviceAttribute::memory_bus_width_bits:
      return CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH;
    case DeviceAttribute::count_:
      break;
  }
  return CU_DEVICE_ATTRIBUTE_MAX;
}

inline CUfunction_attribute to_cuda(FunctionAttribute a) {
  switch (a) {
    case FunctionAttribute::max_threads_per_block:
      return CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK;
    case FunctionAttribute::registers:
      return CU_FUNC_ATTRIBUTE_NUM_REGS;
    case FunctionAttribute::static_shared_bytes:
      return CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES;
    case FunctionAttribute::local_bytes:
      return CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES;
    case FunctionAttribute::max_dynamic_shared_bytes:
      return CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
    case FunctionAttribute::count_:
      break;
  }
  return CU_FUNC_ATTRIBUTE_MAX;
}

inline CUdeviceptr ptr(std::uint64_t a) {
  return static_cast<CUdeviceptr>(a);
}
inline CUstream stream(void* s) {
  return static_cast<CUstream>(s);
}

/// cuLaunchKernelEx's description of a launch (grid, block and cluster dimensions as x, y,
/// z): in thread-block clusters, and, where `programmatic`, allowed to overlap the kernel
/// before it in the stream; for the launch itself and for the occupancy question.
struct LaunchEx {
  LaunchEx(const unsigned* grid, const unsigned* block, const unsigned* cluster,
           unsigned shared_bytes, bool programmatic = false) {
    unsigned n = 0;
    if (cluster[0] * cluster[1] * cluster[2] > 1) {
      attributes[n].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
      attributes[n].value.clusterDim.x = cluster[0];
      attributes[n].value.clusterDim.y = cluster[1];
      attributes[n].value.clusterDim.z = cluster[2];
      ++n;
    }
    if (programmatic) {
      attributes[n].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
      attributes[n].value.programmaticStreamSerializationAllowed = 1;
      ++n;
    }
    config.gridDimX = grid[0];
    config.gridDimY = grid[1];
    config.gridDimZ = grid[2];
    config.blockDimX = block[0];
    config.blockDimY = block[1];
    config.blockDimZ = block[2];
    config.sharedMemBytes = shared_bytes;
    config.attrs = n > 0 ? attributes : nullptr;
    config.numAttrs = n;
  }
  LaunchEx(const LaunchEx&) = delete;  // config points at attributes
  LaunchEx& operator=(const LaunchEx&) = delete;
  CUlaunchAttribute attributes[2]{};
  CUlaunchConfig config{};
};

}  // namespace cuda_detail

/// Opens libcuda.so.1 (or KILN_CUDA_LIBRARY), initializes the driver, and fills a DriverApi.
/// Throws NoDeviceError when the library is missing or cuInit fails (no GPU, no driver).
inline std::unique_ptr<DriverApi> load_cuda_driver() {
  using namespace cuda_detail;
  static ::kiln::detail::DynamicLibrary lib;
  if (!lib) {
    try {
      lib = ::kiln::detail::DynamicLibrary::open_first(
          "the CUDA driver (libcuda.so.1, from the NVIDIA driver)", {"libcuda.so.1"},
          "KILN_CUDA_LIBRARY");
    } catch (const LibraryError& e) {
      throw NoDeviceError(std::string(e.what()) +
                          "\nNo CUDA driver: is this a machine with an NVIDIA GPU?");
    }
  }
  auto get_proc = lib.get<decltype(&::cuGetProcAddress)>("cuGetProcAddress_v2");
  // `version`: the CUDA version whose ABI cuda.h declares for `name`. It is CUDA_VERSION
  // except where a newer ABI exists that cuda.h does not declare (CUDA 13's cuCtxSynchronize
  // takes a context; cuda.h still declares the CUDA 2.0 one).
  auto load = [&](auto& fn, const char* name, bool required = true, int version = CUDA_VERSION) {
    void* p = nullptr;
    CUdriverProcAddressQueryResult status{};
    if (get_proc(name, &p, version, CU_GET_PROC_ADDRESS_DEFAULT, &status) != CUDA_SUCCESS ||
        status != CU_GET_PROC_ADDRESS_SUCCESS) {
      p = nullptr;
    }
    if (!p && required) {
      throw LibraryError(std::string("kiln: the CUDA driver ") + lib.path() + " has no " + name +
                         " for CUDA " + std::to_string(CUDA_VERSION / 1000) +
                         "; update the NVIDIA driver");
    }
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
  };
  load(fns.init, "cuInit");
  load(fns.driver_version, "cuDriverGetVersion");
  load(fns.device_count, "cuDeviceGetCount");
  load(fns.device_get, "cuDeviceGet");
  load(fns.device_name, "cuDeviceGetName");
  load(fns.device_attribute, "cuDeviceGetAttribute");
  load(fns.total_mem, "cuDeviceTotalMem");
  load(fns.primary_retain, "cuDevicePrimaryCtxRetain");
  load(fns.primary_release, "cuDevicePrimaryCtxRelease");
  load(fns.ctx_set, "cuCtxSetCurrent");
  load(fns.ctx_get, "cuCtxGetCurrent");
  load(fns.ctx_sync, "cuCtxSynchronize", true, 12000);
  load(fns.mem_alloc, "cuMemAlloc");
  load(fns.mem_free, "cuMemFree");
  load(fns.mem_info, "cuMemGetInfo");
  load(fns.host_alloc, "cuMemHostAlloc");
  load(fns.host_free, "cuMemFreeHost");
  load(fns.htod, "cuMemcpyHtoDAsync");
  load(fns.dtoh, "cuMemcpyDtoHAsync");
  load(fns.dtod, "cuMemcpyDtoDAsync");
  load(fns.memset8, "cuMemsetD8Async");
  load(fns.memset32, "cuMemsetD32Async");
  load(fns.stream_create, "cuStreamCreate");
  load(fns.stream_destroy, "cuStreamDestroy");
  load(fns.stream_sync, "cuStreamSynchronize");
  load(fns.stream_wait_event, "cuStreamWaitEvent");
  load(fns.stream_is_capturing, "cuStreamIsCapturing", false);
  load(fns.event_create, "cuEventCreate");
  load(fns.event_record, "cuEventRecord");
  load(fns.event_sync, "cuEventSynchronize");
  load(fns.event_query, "cuEventQuery");
  load(fns.event_elapsed, "cuEventElapsedTime");
  load(fns.event_destroy, "cuEventDestroy");
  load(fns.module_load, "cuModuleLoadData");
  load(fns.module_unload, "cuModuleUnload");
  load(fns.module_function, "cuModuleGetFunction");
  load(fns.func_attribute, "cuFuncGetAttribute");
  load(fns.func_set_attribute, "cuFuncSetAttribute");
  load(fns.occupancy, "cuOccupancyMaxActiveBlocksPerMultiprocessor");
  load(fns.param_info, "cuFuncGetParamInfo", false);
  load(fns.launch, "cuLaunchKernel");
  load(fns.launch_cooperative, "cuLaunchCooperativeKernel", false);
  load(fns.launch_ex, "cuLaunchKernelEx", false);
  load(fns.max_active_clusters, "cuOccupancyMaxActiveClusters", false);
  load(fns.max_cluster_size, "cuOccupancyMaxPotentialClusterSize", false);
  load(fns.tensor_map_encode_tiled, "cuTensorMapEncodeTiled", false);
  load(fns.error_name, "cuGetErrorName");
  load(fns.error_string, "cuGetErrorString");

  auto api = std::make_unique<DriverApi>();
  api->platform = Platform::cuda;
  api->library = lib.path();
  api->error_name = [](int c, const char** n) { return int(fns.error_name(CUresult(c), n)); };
  api->error_string = [](int c, const char** t) { return int(fns.error_string(CUresult(c), t)); };
  if (int r = fns.init(0); r != CUDA_SUCCESS) {
    throw NoDeviceError(api->describe(r, "cuInit", "starting the CUDA driver") +
                        "\nNo usable CUDA device: check nvidia-smi and CUDA_VISIBLE_DEVICES.");
  }
  fns.driver_version(&api->driver_version);

  api->device_count = [](int* n) { return int(fns.device_count(n)); };
  api->device_get = [](int* d, int i) {
    CUdevice dev = 0;
    int r = fns.device_get(&dev, i);
    *d = int(dev);
    return r;
  };
  api->device_name = [](char* s, int n, int d) { return int(fns.device_name(s, n, CUdevice(d))); };
  api->device_attribute = [](int* v, DeviceAttribute a, int d) {
    return int(fns.device_attribute(v, to_cuda(a), CUdevice(d)));
  };
  api->device_total_memory = [](std::size_t* b, int d) {
    return int(fns.total_mem(b, CUdevice(d)));
  };
  api->primary_context_retain = [](void** c, int d) {
    CUcontext ctx = nullptr;
    int r = fns.primary_retain(&ctx, CUdevice(d));
    *c = ctx;
    return r;
  };
  api->primary_context_release = [](int d) { return int(fns.primary_release(CUdevice(d))); };
  api->context_set_current = [](void* c) { return int(fns.ctx_set(static_cast<CUcontext>(c))); };
  api->context_get_current = [](void** c) {
    CUcontext ctx = nullptr;
    int r = fns.ctx_get(&ctx);
    *c = ctx;
    return r;
  };
  api->context_synchronize = [] { return int(fns.ctx_sync()); };
  api->memory_allocate = [](std::uint64_t* a, std::size_t n) {
    CUdeviceptr p = 0;
    int r = fns.mem_alloc(&p, n);
    *a = std::uint64_t(p);
    return r;
  };
  api->memory_free = [](std::uint64_t a) { return int(fns.mem_free(ptr(a))); };
  api->memory_info = [](std::size_t* f, std::size_t* t) { return int(fns.mem_info(f, t)); };
  api->host_allocate = [](void** p, std::size_t n) {
    return int(fns.host_alloc(p, n, CU_MEMHOSTALLOC_PORTABLE));
  };
  api->host_free = [](void* p) { return int(fns.host_free(p)); };
  api->copy_to_device = [](std::uint64_t d, const void* s, std::size_t n, void* st) {
    return int(fns.htod(ptr(d), s, n, stream(st)));
  };
  api->copy_to_host = [](void* d, std::uint64_t s, std::size_t n, void* st) {
    return int(fns.dtoh(d, ptr(s), n, stream(st)));
  };
  api->copy_device = [](std::uint64_t d, std::uint64_t s, std::size_t n, void* st) {
    return int(fns.dtod(ptr(d), ptr(s), n, stream(st)));
  };
  api->fill_bytes = [](std::uint64_t d, unsigned char v, std::size_t n, void* st) {
    return int(fns.memset8(ptr(d), v, n, stream(st)));
  };
  api->fill_words = [](std::uint64_t d, unsigned v, std::size_t n, void* st) {
    return int(fns.memset32(ptr(d), v, n, stream(st)));
  };
  api->stream_create = [](void** s) {
    CUstream st = nullptr;
    int r = fns.stream_create(&st, CU_STREAM_NON_BLOCKING);
    *s = st;
    return r;
  };
  api->stream_destroy = [](void* s) { return int(fns.stream_destroy(stream(s))); };
  api->stream_synchronize = [](void* s) { return int(fns.stream_sync(stream(s))); };
  api->stream_wait_event = [](void* s, void* e) {
    return int(fns.stream_wait_event(stream(s), static_cast<CUevent>(e), 0));
  };
  if (fns.stream_is_capturing) {
    api->stream_is_capturing = [](void* s, int* capturing) {
      CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
      const int r = int(fns.stream_is_capturing(stream(s), &status));
      *capturing = status != CU_STREAM_CAPTURE_STATUS_NONE ? 1 : 0;
      return r;
    };
  }
  api->event_create = [](void** e) {
    CUevent ev = nullptr;
    int r = fns.event_create(&ev, CU_EVENT_DEFAULT);
    *e = ev;
    return r;
  };
  api->event_record = [](void* e, void* s) {
    return int(fns.event_record(static_cast<CUevent>(e), stream(s)));
  };
  api->event_synchronize = [](void* e) { return int(fns.event_sync(static_cast<CUevent>(e))); };
  api->event_query = [](void* e) { return int(fns.event_query(static_cast<CUevent>(e))); };
  api->event_elapsed_ms = [](float* ms, void* a, void* b) {
    return int(fns.event_elapsed(ms, static_cast<CUevent>(a), static_cast<CUevent>(b)));
  };
  api->event_destroy = [](void* e) { return int(fns.event_destroy(static_cast<CUevent>(e))); };
  api->module_load = [](void** m, const void* image) {
    CUmodule mod = nullptr;
    int r = fns.module_load(&mod, image);
    *m = mod;
    return r;
  };
  api->module_unload = [](void* m) { return int(fns.module_unload(static_cast<CUmodule>(m))); };
  api->module_function = [](void** f, void* m, const char* name) {
    CUfunction fn = nullptr;
    int r = fns.module_function(&fn, static_cast<CUmodule>(m), name);
    *f = fn;
    return r;
  };
  api->function_attribute = [](int* v, FunctionAttribute a, void* f) {
    return int(fns.func_attribute(v, to_cuda(a), static_cast<CUfunction>(f)));
  };
  api->function_set_max_dynamic_shared = [](void* f, int bytes) {
    return int(fns.func_set_attribute(static_cast<CUfunction>(f),
                                      CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes));
  };
  api->function_allow_non_portable_clusters = [](void* f) {
    return int(fns.func_set_attribute(static_cast<CUfunction>(f),
                                      CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1));
  };
  api->occupancy = [](int* b, void* f, int block, std::size_t smem) {
    return int(fns.occupancy(b, static_cast<CUfunction>(f), block, smem));
  };
  if (fns.param_info) {
    api->function_param_info = [](void* f, std::size_t i, std::size_t* off, std::size_t* size) {
      return int(fns.param_info(static_cast<CUfunction>(f), i, off, size));
    };
  }
  api->launch = [](void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, unsigned smem, void* s, void** params) {
    return int(fns.launch(static_cast<CUfunction>(f), gx, gy, gz, bx, by, bz, smem, stream(s),
                          params, nullptr));
  };
  if (fns.launch_cooperative) {
    api->launch_cooperative = [](void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                 unsigned by, unsigned bz, unsigned smem, void* s, void** params) {
      return int(fns.launch_cooperative(static_cast<CUfunction>(f), gx, gy, gz, bx, by, bz, smem,
                                        stream(s), params));
    };
  }
  if (fns.launch_ex) {
    api->launch_ex = [](void* f, const unsigned* grid, const unsigned* block,
                        const unsigned* cluster, bool programmatic, unsigned smem, void* s,
                        void** params) {
      LaunchEx l(grid, block, cluster, smem, programmatic);
      l.config.hStream = stream(s);
      return int(fns.launch_ex(&l.config, static_cast<CUfunction>(f), params, nullptr));
    };
  }
  if (fns.max_active_clusters) {
    api->max_active_clusters = [](int* clusters, void* f, const unsigned* block,
                                  const unsigned* cluster, unsigned smem) {
      // A grid of one cluster: the question is per cluster.
      LaunchEx l(cluster, block, cluster, smem);
      return int(fns.max_active_clusters(clusters, static_cast<CUfunction>(f), &l.config));
    };
  }
  if (fns.max_cluster_size) {
    api->max_cluster_size = [](int* blocks, void* f, const unsigned* block, unsigned smem) {
      // (The config's cluster is ignored: the answer is the largest the device runs.)
      const unsigned one[3] = {1u, 1u, 1u};
      LaunchEx l(one, block, one, smem);
      return int(fns.max_cluster_size(blocks, static_cast<CUfunction>(f), &l.config));
    };
  }
  if (fns.tensor_map_encode_tiled) {
    api->tensor_map_encode_tiled = [](void* map, TensorMapElement element, unsigned rank,
                                      std::uint64_t address, const std::uint64_t* dims,
                                      const std::uint64_t* strides, const unsigned* box,
                                      int swizzle_bytes) {
      CUtensorMapDataType type = CU_TENSOR_MAP_DATA_TYPE_UINT8;
      switch (element) {
        case TensorMapElement::u8:
          type = CU_TENSOR_MAP_DATA_TYPE_UINT8;
          break;
        case TensorMapElement::u16:
          type = CU_TENSOR_MAP_DATA_TYPE_UINT16;
          break;
        case TensorMapElement::u32:
          type = CU_TENSOR_MAP_DATA_TYPE_UINT32;
          break;
        case TensorMapElement::u64:
          type = CU_TENSOR_MAP_DATA_TYPE_UINT64;
          break;
        case TensorMapElement::f16:
          type = CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
          break;
        case TensorMapElement::bf16:
          type = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
          break;
        case TensorMapElement::f32:
          type = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
          break;
      }
      const CUtensorMapSwizzle swizzle = swizzle_bytes == 128  ? CU_TENSOR_MAP_SWIZZLE_128B
                                         : swizzle_bytes == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                                         : swizzle_bytes == 32 ? CU_TENSOR_MAP_SWIZZLE_32B
                                                               : CU_TENSOR_MAP_SWIZZLE_NONE;
      cuuint64_t d[5] = {}, st[5] = {};
      cuuint32_t b[5] = {}, element_strides[5] = {1, 1, 1, 1, 1};
      for (unsigned i = 0; i < rank && i < 5; ++i) {
        d[i] = dims[i];
        b[i] = box[i];
        if (i + 1 < rank) st[i] = strides[i];
      }
      return int(fns.tensor_map_encode_tiled(
          static_cast<CUtensorMap*>(map), type, rank, reinterpret_cast<void*>(address), d, st, b,
          element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
          CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
    };
  }
  return api;
}

}  // namespace kiln::rt
