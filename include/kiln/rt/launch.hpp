#pragma once
/// Launching kernels with typed arguments.
///
///   launch(fn, LaunchConfig{{blocks}, {256}, 0, stream}, in_buffer, out_buffer, rows);
///
/// Arguments are packed from C++ values: pointers, DeviceBuffers (passed as their device
/// pointer), scalars and typed tensor views (passed by value). Where the driver reports
/// the kernel's parameter sizes, a wrong count or size throws before the launch instead of
/// corrupting memory. Block sizes, grid sizes and shared memory beyond the device's limits
/// throw with the limit named.

#include <array>
#include <string>
#include <type_traits>

#include <chrono>

#include "memory.hpp"
#include "module.hpp"
#include "observer.hpp"

namespace kiln::rt {

/// A grid or block size. Converts implicitly from counts of any integer type (`rows`,
/// `{rows, 4}`); a negative count, or one past 32 bits, throws naming it.
struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
  Dim3() = default;
  template <class X, class Y = unsigned, class Z = unsigned,
            class = std::enable_if_t<std::is_integral_v<X> && std::is_integral_v<Y> &&
                                     std::is_integral_v<Z>>>
  Dim3(X x_, Y y_ = 1, Z z_ = 1)  // NOLINT(google-explicit-constructor): implicit from a count
      : x(checked(x_, "x")), y(checked(y_, "y")), z(checked(z_, "z")) {}
  std::size_t count() const { return std::size_t(x) * y * z; }

 private:
  template <class I>
  static unsigned checked(I v, const char* axis) {
    if constexpr (std::is_signed_v<I>) {
      if (v < 0) {
        throw Error(std::string("kiln: a launch size of ") + std::to_string(v) + " in " + axis +
                    "; grid and block sizes are counts, at least 1");
      }
    }
    if (static_cast<unsigned long long>(v) > 0xffffffffull) {
      throw Error(std::string("kiln: a launch size of ") + std::to_string(v) + " in " + axis +
                  " does not fit in 32 bits");
    }
    return static_cast<unsigned>(v);
  }
};

/// Where and how big a launch is.
struct LaunchConfig {
  Dim3 grid;
  Dim3 block;
  unsigned shared_bytes = 0;  ///< dynamic shared memory per block
  StreamRef stream;           ///< default: the device's default stream
  /// Blocks per thread-block cluster (sm_90 and later; CUDA): {1, 1, 1} is an ordinary
  /// launch. Each grid dimension must be a multiple of the cluster's. A cluster of up to 8
  /// blocks is portable; more (up to 16 on sm_90) where the device runs them for the
  /// kernel's blocks (Function::max_cluster_blocks, which allows the kernel such sizes).
  Dim3 cluster{1u, 1u, 1u};
  /// Programmatic dependent launch (sm_90 and later; CUDA): the kernel may be scheduled
  /// before the kernel before it in the stream has ended (once that one's blocks have called
  /// kiln::release_dependent_grid(), or ended), and must call kiln::wait_prior_grid()
  /// (kiln/device/grid_dependency.hpp) before it reads anything that kernel wrote. It saves
  /// the dependent kernel's launch latency, which short kernels in sequence pay each time.
  /// Elsewhere (older devices, HIP, a driver without cuLaunchKernelEx) the launch is an
  /// ordinary one, which the wait then passes at once: a kernel written for it is correct
  /// either way.
  bool programmatic = false;
  /// A cooperative launch (NVIDIA): every block of the grid is resident at once, or the
  /// launch fails with a clear error (grid too large for the device), so that blocks may
  /// wait for each other through global memory without a deadlock. Not with clusters or a
  /// programmatic launch.
  bool cooperative = false;

  LaunchConfig(Dim3 grid_, Dim3 block_, unsigned shared_bytes_ = 0, StreamRef stream_ = {})
      : grid(grid_), block(block_), shared_bytes(shared_bytes_), stream(stream_) {}
};

/// Function::max_active_clusters for the block, cluster and shared memory of `c`: the most
/// clusters of `f` the device runs at once (0 where the driver cannot tell).
inline int max_active_clusters(const Function& f, const LaunchConfig& c) {
  const unsigned block[3] = {c.block.x, c.block.y, c.block.z};
  const unsigned cluster[3] = {c.cluster.x, c.cluster.y, c.cluster.z};
  return f.max_active_clusters(block, cluster, c.shared_bytes);
}

namespace detail {

/// What a C++ argument becomes as a kernel parameter.
template <class A>
auto kernel_argument(const A& a) {
  using T = std::remove_cvref_t<A>;
  if constexpr (is_device_buffer<T>) {
    return a.data();
  } else {
    static_assert(
        std::is_trivially_copyable_v<T>,
        "kernel arguments are trivially copyable values: pointers, scalars, DeviceBuffers, "
        "tensor views");
    static_assert(!std::is_pointer_v<T> || !std::is_same_v<T, const char*>,
                  "a host string cannot be a kernel argument");
    return a;
  }
}

inline std::string dim3_text(const Dim3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

inline std::string describe(const Function& f, const LaunchConfig& c) {
  return "launching " + f.name() + " on device " + std::to_string(f.device().ordinal()) +
         " with grid " + dim3_text(c.grid) + ", block " + dim3_text(c.block) +
         (c.cluster.count() > 1 ? ", clusters of " + dim3_text(c.cluster) : std::string()) +
         (c.programmatic ? ", programmatic" : "") + (c.cooperative ? ", cooperative" : "") + ", " +
         std::to_string(c.shared_bytes) + " bytes of dynamic shared memory";
}

/// Why a cluster of `blocks` blocks cannot be launched where the device holds at most `most`
/// in a cluster of the kernel (Function::max_cluster_blocks; 0: the driver cannot tell);
/// empty where it can. Up to 8 blocks (the portable limit) need no answer.
inline std::string cluster_size_error(std::size_t blocks, int most) {
  if (blocks <= 8) return {};
  if (most <= 0) {
    return std::to_string(blocks) +
           " blocks a cluster is past the portable limit of 8, and this driver cannot say "
           "whether the device runs more (cuOccupancyMaxPotentialClusterSize, CUDA 12.0 and "
           "later)";
  }
  if (blocks > std::size_t(most)) {
    return std::to_string(blocks) + " blocks a cluster are more than the " + std::to_string(most) +
           " the device holds in a cluster of this kernel with these blocks (8 are "
           "portable; sm_90 holds up to 16 where the blocks' threads and shared memory allow): "
           "use smaller clusters";
  }
  return {};
}

inline void check_cluster(const Function& f, const LaunchConfig& c) {
  const DeviceProperties& p = f.device().properties();
  auto fail = [&](const std::string& what) {
    throw Error("kiln: cannot launch " + f.name() + " in clusters of " + dim3_text(c.cluster) +
                ": " + what);
  };
  if (!driver().launch_ex) {
    fail("this driver has no cluster launch (cuLaunchKernelEx, CUDA 12 and later, NVIDIA only)");
  }
  if (p.compute_major < 9) {
    fail("thread-block clusters need sm_90 or later; device " +
         std::to_string(f.device().ordinal()) + " is " + p.arch);
  }
  const unsigned grid[3] = {c.grid.x, c.grid.y, c.grid.z};
  const unsigned cluster[3] = {c.cluster.x, c.cluster.y, c.cluster.z};
  for (int i = 0; i < 3; ++i) {
    if (grid[i] % cluster[i] != 0) {
      fail(std::string("grid.") + "xyz"[i] + " = " + std::to_string(grid[i]) +
           " is not a multiple of the cluster's " + std::to_string(cluster[i]));
    }
  }
  if (c.cluster.count() > 8) {
    const unsigned block[3] = {c.block.x, c.block.y, c.block.z};
    const std::string why =
        cluster_size_error(c.cluster.count(), f.max_cluster_blocks(block, c.shared_bytes));
    if (!why.empty()) fail(why);
  }
}

inline void check_limits(const Function& f, const LaunchConfig& c) {
  const DeviceProperties& p = f.device().properties();
  auto fail = [&](const std::string& what) {
    throw Error("kiln: cannot launch " + f.name() + ": " + what);
  };
  const unsigned block[3] = {c.block.x, c.block.y, c.block.z};
  const unsigned grid[3] = {c.grid.x, c.grid.y, c.grid.z};
  for (int i = 0; i < 3; ++i) {
    const char* axis = i == 0 ? "x" : i == 1 ? "y" : "z";
    if (block[i] == 0 || grid[i] == 0) fail(std::string("a launch dimension is 0 (") + axis + ")");
    if (block[i] > unsigned(p.max_block[std::size_t(i)])) {
      fail(std::string("block.") + axis + " = " + std::to_string(block[i]) +
           " exceeds the device's limit of " + std::to_string(p.max_block[std::size_t(i)]));
    }
    if (grid[i] > unsigned(p.max_grid[std::size_t(i)])) {
      fail(std::string("grid.") + axis + " = " + std::to_string(grid[i]) +
           " exceeds the device's limit of " + std::to_string(p.max_grid[std::size_t(i)]));
    }
    // HIP counts threads, not blocks, per launch dimension, in 32 bits.
    if (p.platform == Platform::hip &&
        std::uint64_t(grid[i]) * block[i] > std::uint64_t(0xffffffffu)) {
      fail(std::string("grid.") + axis + " x block." + axis + " = " +
           std::to_string(std::uint64_t(grid[i]) * block[i]) +
           " threads exceed HIP's limit of 2^32 - 1 per dimension; spread the grid over y or z");
    }
  }
  const std::size_t threads = c.block.count();
  const int limit = f.attributes().max_threads_per_block;
  if (threads > std::size_t(limit)) {
    fail(std::to_string(threads) + " threads per block exceed this kernel's limit of " +
         std::to_string(limit) +
         (limit < p.max_threads_per_block ? " (its register use lowers the device's " +
                                                std::to_string(p.max_threads_per_block) + ")"
                                          : std::string()));
  }
  if (int(c.shared_bytes) > f.attributes().max_dynamic_shared_bytes) {
    fail(std::to_string(c.shared_bytes) +
         " bytes of dynamic shared memory exceed this kernel's limit of " +
         std::to_string(f.attributes().max_dynamic_shared_bytes) +
         " (raise it up to the device's opt-in maximum of " +
         std::to_string(p.shared_per_block_optin) + " with Function::set_max_dynamic_shared)");
  }
  if (c.cluster.count() > 1) check_cluster(f, c);
  if (c.cooperative) {
    if (!driver().launch_cooperative) {
      fail("this driver has no cooperative launch (cuLaunchCooperativeKernel, NVIDIA only)");
    }
    if (c.cluster.count() > 1 || c.programmatic) {
      fail("a cooperative launch is an ordinary one otherwise: no clusters, not programmatic");
    }
  }
  if (c.stream.device >= 0 && c.stream.device != f.device().ordinal()) {
    fail("its stream belongs to device " + std::to_string(c.stream.device) +
         ", the kernel to device " + std::to_string(f.device().ordinal()));
  }
}

template <std::size_t N>
void check_parameters(const Function& f, const std::array<std::size_t, N>& sizes) {
  if (!f.knows_parameters()) return;
  const auto& want = f.parameter_sizes();
  if (want.size() != N) {
    throw Error("kiln: kernel " + f.name() + " takes " + std::to_string(want.size()) +
                " parameters, but " + std::to_string(N) + " arguments were given");
  }
  for (std::size_t i = 0; i < N; ++i) {
    if (want[i] != sizes[i]) {
      throw Error("kiln: argument " + std::to_string(i) + " of kernel " + f.name() + " is " +
                  std::to_string(sizes[i]) + " bytes, but the kernel's parameter " +
                  std::to_string(i) + " is " + std::to_string(want[i]) +
                  " bytes (wrong type or order?)");
    }
  }
}

/// Whether a launch of `c` on a device of properties `p` is a programmatic one: asked for,
/// on an NVIDIA device of sm_90 or later, through a driver with cuLaunchKernelEx (else an
/// ordinary one).
inline bool programmatic_launch(const DriverApi& api, const DeviceProperties& p,
                                const LaunchConfig& c) {
  return c.programmatic && api.launch_ex != nullptr && p.platform == Platform::cuda &&
         p.compute_major >= 9;
}

/// The driver call of a checked launch: cuLaunchKernel, or cuLaunchKernelEx for clusters
/// and programmatic launches.
inline int raw_launch(const DriverApi& api, const Function& f, const LaunchConfig& c,
                      void** params) {
  if (c.cooperative) {
    return api.launch_cooperative(f.handle(), c.grid.x, c.grid.y, c.grid.z, c.block.x, c.block.y,
                                  c.block.z, c.shared_bytes, c.stream.handle, params);
  }
  const bool programmatic = programmatic_launch(api, f.device().properties(), c);
  if (c.cluster.count() == 1 && !programmatic) {
    return api.launch(f.handle(), c.grid.x, c.grid.y, c.grid.z, c.block.x, c.block.y, c.block.z,
                      c.shared_bytes, c.stream.handle, params);
  }
  const unsigned grid[3] = {c.grid.x, c.grid.y, c.grid.z};
  const unsigned block[3] = {c.block.x, c.block.y, c.block.z};
  const unsigned cluster[3] = {c.cluster.x, c.cluster.y, c.cluster.z};
  return api.launch_ex(f.handle(), grid, block, cluster, programmatic, c.shared_bytes,
                       c.stream.handle, params);
}

}  // namespace detail

/// Launches `function` with `config`, passing `args` as its parameters, and tells the
/// profiler (if one is on) what `info` says about it.
template <class... Args>
void launch_with(const LaunchInfo* info, const Function& function, const LaunchConfig& config,
                 const Args&... args) {
  if (!function.valid()) throw Error("kiln: launch of an empty Function");
  detail::check_limits(function, config);
  auto packed = std::make_tuple(detail::kernel_argument(args)...);
  std::apply(
      [&](auto&... values) {
        detail::check_parameters(function,
                                 std::array<std::size_t, sizeof...(Args)>{sizeof(values)...});
        void* params[sizeof...(Args) + 1] = {static_cast<void*>(&values)...};
        const DriverApi& api = driver();
        ContextGuard g(function.device().context());
        LaunchObserver* observer = launch_observer().load(std::memory_order_acquire);
        if (!observer) {
          int r = detail::raw_launch(api, function, config, params);
          if (r != 0) api.check(r, "launch", detail::describe(function, config));
          return;
        }
        void* token = observer->before_launch(function, config, info);
        auto t0 = std::chrono::steady_clock::now();
        int r = detail::raw_launch(api, function, config, params);
        auto host_us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count();
        if (r != 0) {
          observer->launch_failed(token);
          api.check(r, "launch", detail::describe(function, config));
        }
        observer->after_launch(function, config, token, host_us);
      },
      packed);
}

/// Launches `function` with `config`, passing `args` as its parameters.
template <class... Args>
void launch(const Function& function, const LaunchConfig& config, const Args&... args) {
  launch_with(nullptr, function, config, args...);
}

}  // namespace kiln::rt
