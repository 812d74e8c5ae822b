#pragma once
/// C = epilogue(alpha * op(A) op(B) + beta * C) on NVIDIA tensor cores (sm_80 and later):
/// A and B of f16 or bf16, f32 accumulation, C of f16, bf16 or f32; M, N and K any size
/// (ragged edges are handled, not refused); the layouts nn, nt, tn and tt (GemmLayout).
/// The kernel is kernels/gemm_sm80.cu, one compile per (types, layout, config, epilogue),
/// serving every size.
///
///   kiln::rt::DeviceBuffer<kiln::f16> a(m * k), b(k * n);
///   kiln::rt::DeviceBuffer<float> c(m * n);
///   kiln::ops::gemm(a, b, c, {.m = m, .n = n, .k = k});                  // C = A B
///   kiln::ops::gemm(a, b, c, {.m = m, .n = n, .k = k, .layout = kiln::ops::GemmLayout::nt,
///                             .alpha = 0.5f, .beta = 1.0f}, stream);      // C = A B^T / 2 + C
///
///   // A fused epilogue, as device code compiled into the kernel:
///   kiln::ops::gemm(a, b, c, {.m = m, .n = n, .k = k,
///                             .epilogue = kiln::ops::gemm_epilogues::bias_gelu(bias_ptr)});
///
/// An epilogue is a struct named Epilogue whose data members are its run-time arguments and
/// whose `float operator()(float v, M m, N n) const` maps each element (v is alpha A B +
/// beta C at row m, column n; M and N are the kernel's typed dimensions) to what C receives:
///
///   struct Scale { const float* row_scale; };         // the host's view of the arguments
///   auto e = kiln::ops::GemmEpilogue::make("row_scale", R"(
///     struct Epilogue {
///       const float* row_scale;
///       KILN_DEVICE float operator()(float v, M m, N) const { return v * row_scale[m.get()]; }
///     };)", Scale{d_scale.data()});
///
/// The host struct and the device one must have the same members in the same order (the
/// kernel checks that their sizes agree); at most 128 bytes.
///
/// Under KILN_TUNE=model or full the configs (detail/gemm_configs.hpp) are timed once per
/// (types, layout, m, n, k) and device on buffers of the factory's own, and the winner kept
/// in the tuning database; an epilogue reuses the choice made without it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "../device/half.hpp"
#include "../error.hpp"
#include "../factory/factory.hpp"
#include "../gen/host_types.hpp"
#include "../rt/launch.hpp"
#include "../rt/memory.hpp"
#include "../rt/tensor_map.hpp"
#include "detail/gemm_configs.hpp"

namespace kiln::ops {

/// The GEMM kernel factory: a factory::Factory over GemmParams and GemmConfig. Use the
/// process-wide one, gemm_factory().
using GemmFactory = factory::Factory<GemmParams, GemmConfig>;

/// The bytes of an epilogue's run-time arguments, as the kernel receives them (by value).
struct GemmEpilogueArgs {
  alignas(16) std::byte bytes[detail::gemm_epilogue_args_capacity] = {};
};

/// Device code run on every element of C before it is stored, with its run-time arguments
/// (see the header's comment). An empty one (the default) stores v as it is.
struct GemmEpilogue {
  std::string name{};  ///< a C++ identifier; part of the kernel's name
  std::string code{};  ///< defines `struct Epilogue`
  GemmEpilogueArgs args{};
  int args_bytes = 0;  ///< sizeof the host's argument struct (0: none)

  /// An epilogue whose device struct has the members of `host_args` (trivially copyable,
  /// at most 128 bytes, aligned to at most 16).
  template <class Args>
  static GemmEpilogue make(std::string name, std::string code, const Args& host_args) {
    static_assert(std::is_trivially_copyable_v<Args>,
                  "an epilogue's arguments are trivially copyable (pointers, scalars)");
    static_assert(sizeof(Args) <= detail::gemm_epilogue_args_capacity,
                  "an epilogue's arguments take at most 128 bytes");
    static_assert(alignof(Args) <= 16, "an epilogue's arguments are aligned to at most 16");
    GemmEpilogue e{std::move(name), std::move(code), {}, int(sizeof(Args))};
    std::memcpy(e.args.bytes, &host_args, sizeof(Args));
    return e;
  }
  /// An epilogue without run-time arguments.
  static GemmEpilogue make(std::string name, std::string code) {
    return GemmEpilogue{std::move(name), std::move(code), {}, 0};
  }
  bool empty() const { return name.empty() && code.empty(); }
};

/// Ready-made epilogues. Bias vectors are f32, one value per column of C.
namespace gemm_epilogues {

namespace detail {
inline std::string host_type_name(gen::DType t) {
  switch (t) {
    case gen::DType::f16:
      return "kiln::f16";
    case gen::DType::bf16:
      return "kiln::bf16";
    default:
      return "float";
  }
}
// GELU's erf form through Phi's tail (kiln/device/math.hpp: no erff, no branch), to the
// precision a result type keeps: kiln_gelu_for(v, (const T*)nullptr) is kiln::gelu_erf for
// f32 (relative error about 1e-6), gelu_erf_f16 and gelu_erf_bf16 for 16-bit results (1e-5
// and 5e-5, within one unit in the last place once rounded; one approximate instruction
// where gelu_erf takes two).
inline const char* gelu_code =
    "#include \"kiln/device/half.hpp\"\n"
    "#include \"kiln/device/math.hpp\"\n"
    "KILN_DEVICE KILN_FORCEINLINE float kiln_gelu_for(float v, const float*) {\n"
    "  return kiln::gelu_erf(v);\n"
    "}\n"
    "KILN_DEVICE KILN_FORCEINLINE float kiln_gelu_for(float v, const kiln::f16*) {\n"
    "  return kiln::gelu_erf_f16(v);\n"
    "}\n"
    "KILN_DEVICE KILN_FORCEINLINE float kiln_gelu_for(float v, const kiln::bf16*) {\n"
    "  return kiln::gelu_erf_bf16(v);\n"
    "}\n";
// The epilogues' GELU: the form for C's element type.
inline std::string gelu_epilogue_code() {
  return std::string(gelu_code) +
         "KILN_DEVICE KILN_FORCEINLINE float kiln_gelu(float v) {\n"
         "  return kiln_gelu_for(v, static_cast<const typename C::element_type*>(nullptr));\n"
         "}\n";
}
// GELU's tanh form, with the hardware's tanh (one instruction on sm_75 and later, relative
// error about 2^-11) where there is one.
inline const char* gelu_tanh_code =
    "KILN_DEVICE KILN_FORCEINLINE float kiln_gelu_tanh(float v) {\n"
    "  const float u = 0.7978845608028654f * v * (1.0f + 0.044715f * v * v);\n"
    "#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750\n"
    "  float t;\n"
    "  asm(\"tanh.approx.f32 %0, %1;\" : \"=f\"(t) : \"f\"(u));\n"
    "#else\n"
    "  const float t = tanhf(u);\n"
    "#endif\n"
    "  return 0.5f * v * (1.0f + t);\n"
    "}\n";
inline const char* silu_code =
    "KILN_DEVICE KILN_FORCEINLINE float kiln_silu(float v) { return v / (1.0f + expf(-v)); }\n";
}  // namespace detail

/// max(v, 0).
inline GemmEpilogue relu() {
  return GemmEpilogue::make("relu",
                            "struct Epilogue {\n"
                            "  KILN_DEVICE KILN_FORCEINLINE float operator()(float v, M, N) const "
                            "{ return v > 0.0f ? v : 0.0f; }\n"
                            "};\n");
}
/// GELU (the erf form): v / 2 * (1 + erf(v / sqrt 2)), to the precision C's element type
/// keeps (kiln/device/math.hpp, the negative tail included): relative error about 1e-6 for
/// f32 C (kiln::gelu_erf); for f16 and bf16 C about 1e-5 and 5e-5 (kiln::gelu_erf_f16 and
/// gelu_erf_bf16: half the instructions), within one unit in the last place once rounded.
inline GemmEpilogue gelu() {
  return GemmEpilogue::make("gelu", detail::gelu_epilogue_code() +
                                        "struct Epilogue {\n"
                                        "  KILN_DEVICE KILN_FORCEINLINE float operator()(float v, "
                                        "M, N) const { return kiln_gelu(v); }\n"
                                        "};\n");
}
/// GELU's tanh form (PyTorch's approximate='tanh'): v / 2 * (1 + tanh(sqrt(2 / pi) * (v +
/// 0.044715 v^3))), within 5e-4 of the erf form, tanh from the hardware's approximation
/// (relative error about 2^-11). A fraction of gelu()'s cost in the epilogue.
inline GemmEpilogue gelu_tanh() {
  return GemmEpilogue::make("gelu_tanh",
                            std::string(detail::gelu_tanh_code) +
                                "struct Epilogue {\n"
                                "  KILN_DEVICE KILN_FORCEINLINE float operator()(float v, "
                                "M, N) const { return kiln_gelu_tanh(v); }\n"
                                "};\n");
}
/// SiLU: v / (1 + exp(-v)).
inline GemmEpilogue silu() {
  return GemmEpilogue::make("silu", std::string(detail::silu_code) +
                                        "struct Epilogue {\n"
                                        "  KILN_DEVICE KILN_FORCEINLINE float operator()(float v, "
                                        "M, N) const { return kiln_silu(v); }\n"
                                        "};\n");
}

struct BiasArgs {
  const float* bias;
};
namespace detail {
// An epilogue of f(v + bias[n]): `prelude` defines f, named `f` (empty: the identity).
inline GemmEpilogue bias_then(std::string name, const std::string& prelude, const char* f,
                              const float* bias) {
  const std::string value = std::string(f) + (*f ? "(v + bias[n.get()])" : "v + bias[n.get()]");
  return GemmEpilogue::make(std::move(name),
                            prelude +
                                "struct Epilogue {\n"
                                "  const float* bias;\n"
                                "  KILN_DEVICE KILN_FORCEINLINE float operator()(float v, M, N n) "
                                "const { return " +
                                value + "; }\n};\n",
                            BiasArgs{bias});
}
}  // namespace detail

/// v + bias[n].
inline GemmEpilogue bias(const float* bias) {
  return detail::bias_then("bias", "", "", bias);
}
/// GELU(v + bias[n]).
inline GemmEpilogue bias_gelu(const float* bias) {
  return detail::bias_then("bias_gelu", detail::gelu_epilogue_code(), "kiln_gelu", bias);
}
/// GELU's tanh form of (v + bias[n]) (see gelu_tanh()).
inline GemmEpilogue bias_gelu_tanh(const float* bias) {
  return detail::bias_then("bias_gelu_tanh", detail::gelu_tanh_code, "kiln_gelu_tanh", bias);
}
/// SiLU(v + bias[n]).
inline GemmEpilogue bias_silu(const float* bias) {
  return detail::bias_then("bias_silu", detail::silu_code, "kiln_silu", bias);
}

template <class T>
struct ResidualArgs {
  const T* residual;
  long long ld;
};
/// v + residual[m][n], a row-major matrix of float, kiln::f16 or kiln::bf16 with rows of
/// `ld` elements (C's row length when it has the shape of C).
template <class T>
GemmEpilogue residual(const T* residual, std::int64_t ld) {
  const std::string type = detail::host_type_name(gen::dtype_of<T>());
  return GemmEpilogue::make(
      "residual_" + std::string(gen::to_string(gen::dtype_of<T>())),
      "struct Epilogue {\n"
      "  const " +
          type +
          "* residual;\n"
          "  long long ld;\n"
          "  KILN_DEVICE KILN_FORCEINLINE float operator()(float v, M m, N n) const {\n"
          "    return v + float(residual[m.get() * ld + n.get()]);\n"
          "  }\n"
          "};\n",
      ResidualArgs<T>{residual, ld});
}

}  // namespace gemm_epilogues

namespace detail {

inline rt::LaunchConfig gemm_launch(const GemmParams& p, const GemmConfig& c,
                                    const rt::DeviceProperties& d) {
  std::int64_t blocks = gemm_ceil_div(std::max<std::int64_t>(p.m, 1), c.block_m) *
                        gemm_ceil_div(std::max<std::int64_t>(p.n, 1), c.block_n);
  // The wgmma kernel is persistent: at most one block an SM, in clusters of split_k blocks
  // (each cluster taking a tile at a time) or of cluster_m blocks (each cluster taking
  // cluster_m tiles adjacent along M at a time), every cluster every grid-th unit of work.
  std::int64_t cluster = 1;
  if (c.path == GemmPath::wgmma) {
    cluster = std::int64_t(std::max(1, c.split_k)) * std::max(1, c.cluster_m);
    const std::int64_t units =
        gemm_ceil_div(gemm_ceil_div(std::max<std::int64_t>(p.m, 1), c.block_m),
                      std::max(1, c.cluster_m)) *
        gemm_ceil_div(std::max<std::int64_t>(p.n, 1), c.block_n);
    const std::int64_t sms = d.multiprocessors > 0 ? d.multiprocessors : units * cluster;
    blocks = std::max<std::int64_t>(1, std::min<std::int64_t>(units, sms / cluster)) * cluster;
  }
  rt::LaunchConfig lc(blocks, gemm_threads(c), unsigned(gemm_shared_bytes(c)));
  if (cluster > 1) lc.cluster = {unsigned(cluster), 1u, 1u};
  return lc;
}

/// The TMA tensor maps the wgmma kernel takes: A's and B's, boxes of the block's rows
/// (columns) by 64 of K where K is contiguous, else 64 by 64 boxes (the kernel loads a row
/// of them), with the 128-byte swizzle; and, where C is 16-bit, 16-byte aligned and its
/// rows whole 16-byte vectors (`c_by_tma`), C's, through which the kernel stores it: boxes
/// of 16 rows by 64 bytes with the 64-byte swizzle (each consumer warp's staged chunk).
/// Otherwise `c` is a copy of A's, which the kernel does not read.
struct GemmTensorMaps {
  rt::TensorMap a, b, c;
  bool c_by_tma = false;
};
inline GemmTensorMaps gemm_tensor_maps(const GemmParams& p, const GemmConfig& cfg, std::uint64_t a,
                                       std::uint64_t b, std::uint64_t c, const rt::Device& device) {
  const std::int64_t m = std::max<std::int64_t>(p.m, 1), n = std::max<std::int64_t>(p.n, 1),
                     k = std::max<std::int64_t>(p.k, 1);
  using D = rt::TensorMapDim;
  const std::vector<D> a_dims = gemm_a_transposed(p.layout)
                                    ? std::vector<D>{{"K", k, m, 64}, {"M", m, 1, 64}}
                                    : std::vector<D>{{"M", m, k, cfg.block_m}, {"K", k, 1, 64}};
  // With clusters on block rows each block copies a part of every stage of B: K-major, a
  // box of block_n / cluster_m rows; N-major, whole 64-column boxes while there are as many
  // as blocks, else each of them split along K too (kernels/gemm_sm90.cu, StageTile).
  const int parts = std::max(1, cfg.cluster_m), columns = std::max(1, cfg.block_n / 64);
  const int depth_parts = parts > columns ? parts / columns : 1;
  const std::vector<D> b_dims =
      gemm_b_transposed(p.layout)
          ? std::vector<D>{{"N", n, k, cfg.block_n / parts}, {"K", k, 1, 64}}
          : std::vector<D>{{"K", k, n, 64 / depth_parts}, {"N", n, 1, 64}};
  GemmTensorMaps maps{rt::make_tensor_map(p.in, a, a_dims, rt::TmaSwizzle::b128, device),
                      rt::make_tensor_map(p.in, b, b_dims, rt::TmaSwizzle::b128, device),
                      {}};
  maps.c_by_tma = gen::size_of(p.out) == 2 && c % 16 == 0 && p.n % 8 == 0;
  maps.c = maps.c_by_tma ? rt::make_tensor_map(p.out, c, {{"M", m, n, 16}, {"N", n, 1, 32}},
                                               rt::TmaSwizzle::b64, device)
                         : maps.a;
  return maps;
}

/// gemm_tensor_maps through the maps of this thread's last 8 distinct wgmma launches: a
/// GEMM run again on the same buffers (each step of a model) takes its maps from there
/// rather than encoding three. A map is a function of what the key holds (the buffers'
/// addresses, the problem's types, layout and sizes, the config's boxes, the device), not
/// of the allocation behind an address, so an entry is never stale.
inline GemmTensorMaps gemm_tensor_maps_recent(const GemmParams& p, const GemmConfig& cfg,
                                              std::uint64_t a, std::uint64_t b, std::uint64_t c,
                                              const rt::Device& device) {
  struct Key {
    gen::DType in, out;
    GemmLayout layout;
    std::int64_t m, n, k;
    std::int32_t block_m, block_n, cluster_m;
    std::uint64_t a, b, c;
    int device;
    bool operator==(const Key&) const = default;
  };
  struct Entry {
    Key key;
    GemmTensorMaps maps;
  };
  thread_local std::array<std::optional<Entry>, 8> recent;
  thread_local std::size_t next = 0;
  const Key key{p.in, p.out,       p.layout,        p.m,           p.n,
                p.k,  cfg.block_m, cfg.block_n,     cfg.cluster_m, a,
                b,    c,           device.ordinal()};
  for (const auto& e : recent) {
    if (e && e->key == key) return e->maps;
  }
  const GemmTensorMaps maps = gemm_tensor_maps(p, cfg, a, b, c, device);
  recent[next++ % recent.size()] = Entry{key, maps};
  return maps;
}

/// Launches a GEMM kernel of either path on A, B and C at device addresses a, b and c
/// (`info`: what the profiler records, or null).
inline void gemm_launch_kernel(const GemmFactory::KernelType& kernel, const GemmParams& p,
                               rt::LaunchConfig lc, const rt::LaunchInfo* info, std::uint64_t a,
                               std::uint64_t b, std::uint64_t c, float alpha, float beta,
                               const GemmEpilogueArgs& args, const rt::Device& device) {
  const int m = int(p.m), n = int(p.n), k = int(p.k);
  auto* c_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(c));
  // The wgmma kernel is persistent: a grid of clusters larger than the device runs at once
  // would leave the last clusters waiting for whole others to finish (not every SM can be
  // paired in a cluster), so the grid takes at most what the driver says fits.
  if (lc.cluster.count() > 1) {
    const int fit = rt::max_active_clusters(kernel.function(), lc);
    if (fit > 0 && lc.grid.x > unsigned(fit) * lc.cluster.x)
      lc.grid.x = unsigned(fit) * lc.cluster.x;
  }
  auto launch = [&](const auto&... args_) {
    if (info) {
      kernel.launch(lc, *info, args_...);
    } else {
      kernel.launch(lc, args_...);
    }
  };
  if (kernel.config().path == GemmPath::wgmma) {
    const GemmTensorMaps maps = gemm_tensor_maps_recent(p, kernel.config(), a, b, c, device);
    launch(maps.a, maps.b, maps.c, c_ptr, m, n, k, alpha, beta, int(maps.c_by_tma), args);
  } else {
    launch(reinterpret_cast<const void*>(static_cast<std::uintptr_t>(a)),
           reinterpret_cast<const void*>(static_cast<std::uintptr_t>(b)), c_ptr, m, n, k, alpha,
           beta, args);
  }
}

inline void check_gemm_device(const GemmParams& p, const rt::DeviceProperties& d) {
  validate_gemm(p);
  if (d.platform == rt::Platform::hip) {
    throw Error("kiln: gemm: no GEMM for AMD GPUs (" + d.arch +
                ") exists yet: kiln's GEMM is built on NVIDIA's mma.sync tensor cores (sm_80 "
                "and later); an MFMA path for gfx942 is future work");
  }
  if (d.compute_major < 8) {
    throw Error("kiln: gemm: the device is " + d.arch +
                "; kiln's GEMM needs the tensor cores of sm_80 or later");
  }
}

inline double gemm_bytes(const GemmParams& p) {
  const double in = gen::size_of(p.in), out = gen::size_of(p.out);
  return (double(p.m) * double(p.k) + double(p.k) * double(p.n)) * in +
         double(p.m) * double(p.n) * out;
}

/// The description of kernels/gemm_sm80.cu as a factory (bump `version` whenever the
/// kernel or the configs change meaning).
inline GemmFactory::Description gemm_description() {
  using TuningRun = GemmFactory::TuningRun;
  return {
      .name = "gemm",
      .version = 3,
      .source = "gemm_sm80.cu",
      .more_sources = {"gemm_sm90.cu"},
      .source_of =
          [](const GemmParams&, const GemmConfig& c) {
            return std::string(c.path == GemmPath::wgmma ? "gemm_sm90.cu" : "gemm_sm80.cu");
          },
      .configs = gemm_configs,
      .spec =
          [](const GemmParams& p, const GemmConfig& c, const rt::DeviceProperties& d) {
            validate_gemm_config(c, std::int64_t(d.shared_per_block_optin));
            return gemm_spec(p, c);
          },
      .launch = gemm_launch,
      .validate = check_gemm_device,
      .heuristic = gemm_heuristic,
      .options =
          [](const GemmParams&, const GemmConfig& c, const rt::DeviceProperties& d) {
            jit::Options o;
            // wgmma and setmaxnreg are arch-specific features of sm_90a.
            o.target = c.path == GemmPath::wgmma ? std::string("sm_90a") : d.arch;
            return o;
          },
      .kernel_name = gemm_kernel_name,
      .bytes = gemm_bytes,
      .flops = [](const GemmParams& p) { return 2.0 * double(p.m) * double(p.n) * double(p.k); },
      .tuning_run = [](const GemmParams& p, const rt::Device& device) -> TuningRun {
        // An epilogue's arguments point into the caller's memory: time those kernels on
        // the caller's own arguments instead.
        if (!p.epilogue_code.empty()) return {};
        const auto a_bytes = std::size_t(p.m) * std::size_t(p.k) * gen::size_of(p.in);
        const auto b_bytes = std::size_t(p.k) * std::size_t(p.n) * gen::size_of(p.in);
        const auto c_bytes = std::size_t(p.m) * std::size_t(p.n) * gen::size_of(p.out);
        auto a = std::make_shared<rt::DeviceBuffer<unsigned char>>(
            std::max<std::size_t>(a_bytes, 16), device);
        auto b = std::make_shared<rt::DeviceBuffer<unsigned char>>(
            std::max<std::size_t>(b_bytes, 16), device);
        auto c = std::make_shared<rt::DeviceBuffer<unsigned char>>(
            std::max<std::size_t>(c_bytes, 16), device);
        a->fill_bytes(0x2c);  // small finite values in f16 and bf16
        b->fill_bytes(0x2c);
        return [a, b, c, p](const GemmFactory::KernelType& k, rt::StreamRef s) {
          rt::LaunchConfig lc = gemm_launch(p, k.config(), k.device().properties());
          lc.stream = s;
          gemm_launch_kernel(k, p, lc, nullptr, a->address(), b->address(), c->address(), 1.0f,
                             0.0f, GemmEpilogueArgs{}, k.device());
        };
      },
  };
}

}  // namespace detail

/// The process-wide GEMM factory (its kernels are memoized for the process).
inline GemmFactory& gemm_factory() {
  static GemmFactory factory(detail::gemm_description());
  return factory;
}

/// One GEMM: sizes, layout, scalars and epilogue.
struct GemmProblem {
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  GemmLayout layout = GemmLayout::nn;
  float alpha = 1.0f;
  float beta = 0.0f;  ///< 0: C is not read (it may hold anything, NaN included)
  GemmEpilogue epilogue{};
};

/// The factory's params for a problem with A and B of `in` and C of `out`.
inline GemmParams gemm_params(gen::DType in, gen::DType out, const GemmProblem& p) {
  GemmParams params{in, out, p.layout, p.m, p.n, p.k};
  params.epilogue_name = p.epilogue.name;
  params.epilogue_code = p.epilogue.code;
  params.epilogue_args_bytes = p.epilogue.args_bytes;
  return params;
}

/// The kernel that gemm() launches for `params` on `device`: the config chosen for the
/// problem without its epilogue (tuned there), compiled with it.
inline const GemmFactory::KernelType& gemm_kernel(
    const GemmParams& params, const rt::Device& device = rt::Device::current()) {
  GemmFactory& factory = gemm_factory();
  if (params.epilogue_code.empty() || params.config.block_m != 0)
    return factory.get(params, device);
  GemmParams plain = params;
  plain.epilogue_name.clear();
  plain.epilogue_code.clear();
  plain.epilogue_args_bytes = 0;
  GemmParams pinned = params;
  pinned.config = factory.get(plain, device).config();
  return factory.get(pinned, device);
}

namespace detail {
template <class TIn, class TOut>
void gemm_buffers(gen::DType in, gen::DType out, const rt::DeviceBuffer<TIn>& a,
                  const rt::DeviceBuffer<TIn>& b, rt::DeviceBuffer<TOut>& c,
                  const GemmProblem& problem, rt::StreamRef stream) {
  const GemmParams params = gemm_params(in, out, problem);
  validate_gemm(params);
  for (auto [name, buffer, want] :
       {std::tuple{"A", a.size(), std::size_t(problem.m) * std::size_t(problem.k)},
        {"B", b.size(), std::size_t(problem.k) * std::size_t(problem.n)},
        {"C", c.size(), std::size_t(problem.m) * std::size_t(problem.n)}}) {
    if (buffer < want) {
      throw Error("kiln: gemm: " + std::to_string(problem.m) + " x " + std::to_string(problem.n) +
                  " x " + std::to_string(problem.k) + " needs " + std::to_string(want) +
                  " elements in " + name + ", which holds " + std::to_string(buffer));
    }
  }
  if (problem.m == 0 || problem.n == 0) return;
  const rt::Device& device = c.device();
  for (auto [name, ordinal] : {std::pair{"A", a.device().ordinal()}, {"B", b.device().ordinal()}}) {
    if (ordinal != device.ordinal()) {
      throw Error("kiln: gemm: " + std::string(name) + " is on device " + std::to_string(ordinal) +
                  " and C on device " + std::to_string(device.ordinal()));
    }
  }
  const auto& k = gemm_kernel(params, device);
  rt::LaunchConfig lc = gemm_launch(params, k.config(), device.properties());
  lc.stream = stream;
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const rt::LaunchInfo info{nlohmann::json(params).dump(), k.launch_info().config,
                              gemm_bytes(params),
                              2.0 * double(problem.m) * double(problem.n) * double(problem.k)};
    gemm_launch_kernel(k, params, lc, &info, a.address(), b.address(), c.address(), problem.alpha,
                       problem.beta, problem.epilogue.args, device);
  } else {
    gemm_launch_kernel(k, params, lc, nullptr, a.address(), b.address(), c.address(), problem.alpha,
                       problem.beta, problem.epilogue.args, device);
  }
}
}  // namespace detail

/// C = epilogue(alpha * op(A) op(B) + beta * C) for A and B of kiln::f16 or kiln::bf16 and
/// C of float, kiln::f16 or kiln::bf16, on `stream` (returns at once). Throws kiln::Error
/// for sizes the buffers do not hold, a device without sm_80 tensor cores, and whatever
/// compiling the kernel throws.
template <class TIn, class TOut>
void gemm(const rt::DeviceBuffer<TIn>& a, const rt::DeviceBuffer<TIn>& b, rt::DeviceBuffer<TOut>& c,
          const GemmProblem& problem, rt::StreamRef stream = {}) {
  static_assert(std::is_same_v<TIn, f16> || std::is_same_v<TIn, bf16>,
                "kiln::ops::gemm takes A and B of kiln::f16 or kiln::bf16 (or std::uint16_t "
                "with the dtypes named)");
  static_assert(
      std::is_same_v<TOut, float> || std::is_same_v<TOut, f16> || std::is_same_v<TOut, bf16>,
      "kiln::ops::gemm writes C of float, kiln::f16 or kiln::bf16");
  detail::gemm_buffers(gen::dtype_of<TIn>(), gen::dtype_of<TOut>(), a, b, c, problem, stream);
}

/// The same over 16-bit patterns (A, B and a 16-bit C) or 32-bit ones (an f32 C), the
/// dtypes named: for host code without a 16-bit float type.
template <class TIn, class TOut>
requires(std::is_same_v<TIn, std::uint16_t> &&
         (std::is_same_v<TOut, std::uint16_t> ||
          std::is_same_v<TOut, float>)) void gemm(gen::DType in, gen::DType out,
                                                  const rt::DeviceBuffer<TIn>& a,
                                                  const rt::DeviceBuffer<TIn>& b,
                                                  rt::DeviceBuffer<TOut>& c,
                                                  const GemmProblem& problem,
                                                  rt::StreamRef stream = {}) {
  if (gen::size_of(out) != int(sizeof(TOut))) {
    throw Error("kiln: gemm: an output of " + std::string(gen::to_string(out)) + " needs " +
                std::to_string(gen::size_of(out)) + "-byte elements, not " +
                std::to_string(sizeof(TOut)) + "-byte ones");
  }
  detail::gemm_buffers(in, out, a, b, c, problem, stream);
}

}  // namespace kiln::ops
