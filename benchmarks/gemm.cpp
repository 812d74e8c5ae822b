// benchmarks/gemm: kiln's tensor-core GEMM (kiln::ops::gemm, kernels/gemm_sm80.cu) against
// cuBLAS's (cublasGemmEx: f32 compute, the default tensor-op algorithm) in the same run, over
// square problems, the projections of a transformer layer (N x K of 4096 x 4096, 14336 x 4096
// and 4096 x 14336 at M = 128, 1024 and 8192 tokens) and a ragged 1000 x 1000 x 1000.
// TFLOP/s count 2 M N K per GEMM; "kiln / cuBLAS" is kiln's TFLOP/s over cuBLAS's (above 1:
// kiln is faster).
//
//   gemm [--json FILE] [--shapes MxNxK,...] [--dtypes f16,bf16] [--layouts nn,nt,tn,tt]
//        [--out f16|bf16|f32] [--sweep] [--epilogue bias|bias_gelu|bias_gelu_tanh]
//        [--config JSON] [--host] [bench flags: --noise PCT --seconds S --no-flush]
//
// --host also times the host's cost of one call (kiln::ops::gemm against cublasGemmEx, in
// bursts of calls on the same buffers) and, for wgmma kernels, of encoding their three tensor
// maps, which a call on the buffers of one of the thread's last 8 launches skips.
//
// A and B are random in [-1, 1]; C has A's and B's type unless --out names one (cuBLAS has no
// bf16 x bf16 -> f16 GEMM, nor f16 x f16 -> bf16). The layouts are kiln's (GemmLayout):
// row-major arrays, A stored (M, K) or, for tn and tt, (K, M); B stored (K, N) or, for nt and
// tt, (N, K). After timing, kiln's C is compared with cuBLAS's on 4096 of its elements (with
// a CPU reference where cuBLAS did not run): the largest difference over the largest |C|
// there is the "max rel err" column, and any above 1e-2 makes the exit status 1.
//
// --sweep also times every candidate config of each problem (what KILN_TUNE=full would
// choose from) and shows the fastest few. The factory picks its config as KILN_TUNE says
// (off, the default: the heuristic); --config pins one instead (a GemmConfig as JSON, fields
// left out take their defaults, e.g. '{"block_m":128,"block_n":256,"path":"wgmma",
// "consumers":2}'), for the plain and the fused kernel alike. cuBLAS is compiled in where CMake
// found it (KILN_BENCH_CUBLAS); kiln's own headers never include it.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <numbers>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/detail/enum_names.hpp"
#include "kiln/ops/gemm.hpp"
#include "kiln/prof.hpp"
#include "kiln/rt.hpp"

#ifdef KILN_BENCH_CUBLAS
#include <cublas_v2.h>
#endif

using namespace kiln;
using gen::DType;
using ops::GemmLayout;
using ops::GemmParams;
using GemmKernel = ops::GemmFactory::KernelType;

namespace {

/// The largest error allowed: max |kiln - reference| over max |reference|, on the sample.
constexpr double max_rel_error = 1e-2;
/// How many elements of C are compared with the reference, per problem.
constexpr std::size_t sample_size = 4096;
/// Swept configs shown per problem besides kiln's choice (all of them go to --json).
constexpr std::size_t sweep_shown = 5;

const char* const usage =
    "usage: gemm [--shapes MxNxK,...] [--dtypes f16,bf16] [--layouts nn,nt,tn,tt]\n"
    "            [--out f16|bf16|f32] [--sweep] [--epilogue bias|bias_gelu|bias_gelu_tanh]\n"
    "            [--config JSON] [--host]\n"
    "            [bench flags]\n"
    "  --shapes LIST   problems as MxNxK (default: 8192x8192x8192, 4096x4096x4096; M of 128,\n"
    "                  1024 and 8192 with N x K of 4096x4096, 14336x4096 and 4096x14336;\n"
    "                  and 1000x1000x1000)\n"
    "  --dtypes LIST   the type of A and B: f16, bf16 (default: both)\n"
    "  --layouts LIST  nn, nt, tn, tt (default: nn); a t stores A, or B, transposed\n"
    "  --out TYPE      the type of C: f16, bf16 or f32 (default: A's and B's type)\n"
    "  --sweep         also time every candidate config and show the fastest few\n"
    "  --epilogue NAME also time C = GELU(A B + bias) fused into kiln's kernel, against cuBLAS\n"
    "                  followed by an element-wise bias + GELU kernel over C; NAME bias_gelu\n"
    "                  (erf form), bias_gelu_tanh (tanh form) or bias (C = A B + bias, no GELU)\n"
    "  --config JSON   kiln's config instead of the factory's choice, as GemmConfig JSON\n"
    "                  ({\"block_m\":128,\"block_n\":256,\"path\":\"wgmma\",\"consumers\":2})\n"
    "  --host          also time the host's cost of a call: kiln::ops::gemm against\n"
    "                  cublasGemmEx, in bursts of calls on the same buffers\n"
    "bench flags:\n";

struct Shape {
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
};

std::string shape_text(Shape s) {
  return fmt::format("{} x {} x {}", s.m, s.n, s.k);
}

/// Whether A is stored (K, M) and whether B is stored (N, K).
bool a_transposed(GemmLayout l) {
  return l == GemmLayout::tn || l == GemmLayout::tt;
}
bool b_transposed(GemmLayout l) {
  return l == GemmLayout::nt || l == GemmLayout::tt;
}

// ---- The fused epilogues --epilogue times ----------------------------------------------

double host_gelu(double v) {
  return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
}
double host_gelu_tanh(double v) {
  return 0.5 * v *
         (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
}
double host_identity(double v) {
  return v;
}

/// One --epilogue NAME: kiln's fused epilogue, the element-wise pass's `GELU` (its code
/// and its definition, the same code as the fused kernel's), the host's reference of
/// GELU(v + bias) and the title of the summary's table.
struct EpilogueForm {
  std::string_view name;
  ops::GemmEpilogue (*make)(const float* bias);
  const char* gelu_code;
  const char* gelu_define;
  double (*host)(double);
  const char* title;
};
const EpilogueForm epilogue_forms[] = {
    {"bias_gelu", ops::gemm_epilogues::bias_gelu, ops::gemm_epilogues::detail::gelu_code,
     "#define GELU(v) kiln_gelu_for(v, static_cast<const T*>(nullptr))\n", host_gelu,
     "C = GELU(A B + bias) (erf form)"},
    {"bias_gelu_tanh", ops::gemm_epilogues::bias_gelu_tanh,
     ops::gemm_epilogues::detail::gelu_tanh_code, "#define GELU kiln_gelu_tanh\n", host_gelu_tanh,
     "C = GELU(A B + bias) (tanh form)"},
    {"bias", ops::gemm_epilogues::bias, "", "#define GELU(v) (v)\n", host_identity,
     "C = A B + bias"},
};

// ---- The command line -------------------------------------------------------------------

struct Options {
  std::vector<DType> dtypes = {DType::f16, DType::bf16};
  std::vector<Shape> shapes;
  std::vector<GemmLayout> layouts = {GemmLayout::nn};
  std::optional<DType> out;  ///< empty: C has A's and B's type
  bool sweep = false;
  /// --epilogue bias, bias_gelu or bias_gelu_tanh: also time that epilogue fused (null: none)
  const EpilogueForm* epilogue = nullptr;
  std::optional<ops::GemmConfig> config;  ///< --config: kiln's config, pinned
  bool host = false;                      ///< --host: also time each call's host cost
};

std::vector<Shape> default_shapes() {
  std::vector<Shape> out = {{8192, 8192, 8192}, {4096, 4096, 4096}};
  for (std::int64_t m : {128, 1024, 8192}) {
    for (auto [n, k] :
         {std::pair<std::int64_t, std::int64_t>{4096, 4096}, {14336, 4096}, {4096, 14336}}) {
      out.push_back({m, n, k});
    }
  }
  out.push_back({1000, 1000, 1000});
  return out;
}

/// The comma-separated items of a flag's value; throws on an empty one.
std::vector<std::string> split_list(const std::string& text, const std::string& flag) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  if (out.empty() || (!text.empty() && text.back() == ',') ||
      std::any_of(out.begin(), out.end(), [](const std::string& s) { return s.empty(); })) {
    throw Error("gemm: " + flag + " takes a comma-separated list without empty items, not '" +
                text + "'");
  }
  return out;
}

Shape parse_shape(const std::string& text) {
  std::vector<std::int64_t> sizes;
  std::string_view rest = text;
  while (true) {
    const std::size_t x = rest.find('x');
    const std::string_view part = rest.substr(0, x);
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc{} || end != part.data() + part.size() || v <= 0) {
      sizes.clear();
      break;
    }
    sizes.push_back(v);
    if (x == std::string_view::npos) break;
    rest.remove_prefix(x + 1);
  }
  if (sizes.size() != 3) {
    throw Error("gemm: --shapes takes MxNxK,... with positive whole sizes (4096x4096x4096), not '" +
                text + "'");
  }
  return {sizes[0], sizes[1], sizes[2]};
}

DType parse_dtype(const std::string& text, const std::string& flag, bool f32_too) {
  if (text == "f16") return DType::f16;
  if (text == "bf16") return DType::bf16;
  if (f32_too && text == "f32") return DType::f32;
  throw Error("gemm: " + flag + " takes " + (f32_too ? "f16, bf16 or f32" : "f16 and bf16") +
              ", not '" + text + "'");
}

GemmLayout parse_layout(const std::string& text) {
  for (GemmLayout l : {GemmLayout::nn, GemmLayout::nt, GemmLayout::tn, GemmLayout::tt}) {
    if (text == ops::to_string(l)) return l;
  }
  throw Error("gemm: --layouts takes nn, nt, tn and tt, not '" + text + "'");
}

/// The benchmark's own flags, from what BenchArgs::parse left (as --flag VALUE or
/// --flag=VALUE).
Options parse_options(const std::vector<std::string>& extra) {
  Options o;
  o.shapes = default_shapes();
  for (std::size_t i = 0; i < extra.size(); ++i) {
    std::string flag = extra[i], value;
    bool inline_value = false;
    if (const std::size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != flag.npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
      inline_value = true;
    }
    auto take_value = [&](const char* what) {
      if (inline_value) return value;
      if (i + 1 >= extra.size()) throw Error("gemm: " + flag + " needs a value (" + what + ")");
      return extra[++i];
    };
    if (flag == "--sweep") {
      if (inline_value) throw Error("gemm: --sweep takes no value");
      o.sweep = true;
    } else if (flag == "--host") {
      if (inline_value) throw Error("gemm: --host takes no value");
      o.host = true;
    } else if (flag == "--shapes") {
      o.shapes.clear();
      for (const auto& s : split_list(take_value("MxNxK,..."), flag))
        o.shapes.push_back(parse_shape(s));
    } else if (flag == "--dtypes") {
      o.dtypes.clear();
      for (const auto& d : split_list(take_value("f16,bf16"), flag))
        o.dtypes.push_back(parse_dtype(d, flag, false));
    } else if (flag == "--layouts") {
      o.layouts.clear();
      for (const auto& l : split_list(take_value("nn,nt,tn,tt"), flag))
        o.layouts.push_back(parse_layout(l));
    } else if (flag == "--out") {
      o.out = parse_dtype(take_value("f16, bf16 or f32"), flag, true);
    } else if (flag == "--epilogue") {
      const std::string names = kiln::detail::choices_of(
          epilogue_forms, [](const EpilogueForm& f) { return f.name; });  // for the messages
      const std::string e = take_value(names.c_str());
      const auto* form = std::find_if(std::begin(epilogue_forms), std::end(epilogue_forms),
                                      [&](const EpilogueForm& f) { return f.name == e; });
      if (form == std::end(epilogue_forms)) {
        throw Error("gemm: --epilogue takes " + names + ", not '" + e + "'");
      }
      o.epilogue = form;
    } else if (flag == "--config") {
      const std::string text = take_value("a GemmConfig as JSON");
      try {
        o.config = nlohmann::json::parse(text).get<ops::GemmConfig>();
      } catch (const nlohmann::json::exception& e) {
        throw Error("gemm: --config takes a GemmConfig as JSON ({\"block_m\":128,...}); '" + text +
                    "' is not one: " + e.what());
      }
    } else {
      throw Error("gemm: unknown argument '" + extra[i] +
                  "' (besides the bench flags: --shapes LIST, --dtypes LIST, --layouts LIST, "
                  "--out TYPE, --sweep, --epilogue NAME, --config JSON, --host; --help lists "
                  "them)");
    }
  }
  return o;
}

// ---- Host data: 16-bit floats, random inputs, the CPU reference ---------------------------

/// `v` (finite, |v| < 65520) as IEEE binary16 bits, rounded to nearest even.
std::uint16_t f16_bits(float v) {
  const unsigned sign = std::signbit(v) ? 0x8000u : 0u;
  const float a = std::fabs(v);
  if (a < 0x1p-14f) {  // zero or subnormal: a whole number of 2^-24 (1024 rounds to 2^-14)
    return std::uint16_t(sign | unsigned(std::lrint(a * 0x1p24f)));
  }
  int e = 0;
  const float frac = std::frexp(a, &e);       // a = frac 2^e, frac in [0.5, 1)
  long q = std::lrint(std::ldexp(frac, 11));  // the 11 significant bits, 1024 to 2048
  if (q == 2048) {
    q = 1024;
    ++e;
  }
  return std::uint16_t(sign | unsigned(e + 14) << 10 | unsigned(q - 1024));
}

/// `v` (finite) as bfloat16 bits, rounded to nearest even.
std::uint16_t bf16_bits(float v) {
  std::uint32_t x = 0;
  std::memcpy(&x, &v, 4);
  x += 0x7fffu + ((x >> 16) & 1u);
  return std::uint16_t(x >> 16);
}

/// The value of f16 or bf16 bits (NaN and infinities included: kiln's C starts as NaN).
float half_value(DType dt, std::uint16_t b) {
  if (dt == DType::bf16) {
    const std::uint32_t bits = std::uint32_t(b) << 16;
    float f = 0;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  const int e = (b >> 10) & 31, m = b & 1023;
  float v = 0;
  if (e == 31) {
    v = m != 0 ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else if (e == 0) {
    v = std::ldexp(float(m), -24);
  } else {
    v = std::ldexp(float(m | 1024), e - 25);
  }
  return (b & 0x8000) != 0 ? -v : v;
}

/// An element of C as a double: a float, or 16-bit bits of `out`.
template <class TOut>
double c_value([[maybe_unused]] DType out, TOut v) {
  if constexpr (std::is_same_v<TOut, float>) {
    return double(v);
  } else {
    return double(half_value(out, v));
  }
}

/// Calls f(i) for every i in [0, n), split over the host's cores.
template <class F>
void parallel_for(std::size_t n, const F& f) {
  const std::size_t parts = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 32);
  std::vector<std::jthread> threads;
  for (std::size_t t = 0; t < parts; ++t) {
    threads.emplace_back([&f, n, parts, t] {
      for (std::size_t i = n * t / parts; i < n * (t + 1) / parts; ++i) f(i);
    });
  }
}  // the threads join here

/// SplitMix64's finalizer: a well-mixed 64-bit hash of x.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// `count` random values in [-1, 1] as `dt`'s bits. Element i depends only on `seed` and i,
/// so the threads may fill their parts in any order.
std::vector<std::uint16_t> random_matrix(DType dt, std::size_t count, std::uint64_t seed) {
  std::vector<std::uint16_t> out(count);
  parallel_for(count, [&](std::size_t i) {
    // 24 random bits: j / 2^23 - 1 for j in [0, 2^24).
    const float v = float(mix((seed << 40) ^ i) >> 40) * 0x1p-23f - 1.0f;
    out[i] = dt == DType::f16 ? f16_bits(v) : bf16_bits(v);
  });
  return out;
}

/// One element of C, by row and column.
struct Position {
  std::int64_t row = 0;
  std::int64_t col = 0;
};

/// The elements of C compared with the reference: its four corners (where ragged edges
/// show), then pseudo-random ones.
std::vector<Position> sample_positions(Shape s) {
  std::vector<Position> out = {{0, 0}, {0, s.n - 1}, {s.m - 1, 0}, {s.m - 1, s.n - 1}};
  for (std::uint64_t i = 0; out.size() < sample_size; ++i) {
    const std::uint64_t r = mix(0x5eed0000ull + i);
    out.push_back({std::int64_t((r >> 32) % std::uint64_t(s.m)),
                   std::int64_t((r & 0xffffffffull) % std::uint64_t(s.n))});
  }
  return out;
}

/// One problem's A and B: on the host (for the CPU reference) and on the device.
struct Inputs {
  std::vector<std::uint16_t> a, b;
  rt::DeviceBuffer<std::uint16_t> a_dev, b_dev;
};

/// Random A (M x K elements) and B (K x N): the same data serves every layout, read as
/// (M, K) or (K, M), (K, N) or (N, K).
Inputs make_inputs(DType dt, Shape s, const rt::Device& gpu) {
  Inputs in;
  in.a = random_matrix(dt, std::size_t(s.m) * std::size_t(s.k), 1);
  in.b = random_matrix(dt, std::size_t(s.k) * std::size_t(s.n), 2);
  in.a_dev = rt::DeviceBuffer<std::uint16_t>(in.a.size(), gpu);
  in.b_dev = rt::DeviceBuffer<std::uint16_t>(in.b.size(), gpu);
  in.a_dev.copy_from(in.a);
  in.b_dev.copy_from(in.b);
  return in;
}

/// C at `positions`, summed in double on the CPU from the inputs as `layout` stores them.
std::vector<double> cpu_reference(DType in, GemmLayout layout, Shape s, const Inputs& inputs,
                                  const std::vector<Position>& positions) {
  std::vector<float> value(1 << 16);  // every 16-bit pattern's value
  for (std::size_t b = 0; b < value.size(); ++b) value[b] = half_value(in, std::uint16_t(b));
  const bool at = a_transposed(layout), bt = b_transposed(layout);
  const auto m = std::size_t(s.m), n = std::size_t(s.n), k = std::size_t(s.k);
  std::vector<double> out(positions.size());
  parallel_for(positions.size(), [&](std::size_t p) {
    const auto row = std::size_t(positions[p].row), col = std::size_t(positions[p].col);
    double sum = 0;
    for (std::size_t d = 0; d < k; ++d) {
      const std::uint16_t x = inputs.a[at ? d * m + row : row * k + d];  // A(row, d)
      const std::uint16_t y = inputs.b[bt ? col * k + d : d * n + col];  // B(d, col)
      sum += double(value[x]) * double(value[y]);
    }
    out[p] = sum;
  });
  return out;
}

/// C's elements at `positions` (waits for the work queued on the device).
template <class TOut>
std::vector<double> sampled(DType out, const rt::DeviceBuffer<TOut>& c, Shape s,
                            const std::vector<Position>& positions) {
  const std::vector<TOut> host = c.to_vector();
  std::vector<double> v;
  v.reserve(positions.size());
  for (const Position& p : positions)
    v.push_back(c_value(out, host[std::size_t(p.row) * std::size_t(s.n) + std::size_t(p.col)]));
  return v;
}

/// max |got - want| over max |want|, for two samples of the same elements; infinite where
/// `got` holds a NaN or an infinity.
double max_rel_err(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) throw Error("gemm: samples of different sizes compared");
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

// ---- cuBLAS -------------------------------------------------------------------------------

#ifdef KILN_BENCH_CUBLAS
/// How many sampled elements the CPU recomputes to check cuBLAS's C (and our call of it).
constexpr std::size_t cublas_check_size = 64;

void cublas_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw Error(std::string("cuBLAS: ") + what + ": " + cublasGetStatusString(s));
  }
}

cudaDataType_t cuda_type(DType t) {
  return t == DType::f16 ? CUDA_R_16F : t == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
}

/// cublasGemmEx on kiln's row-major problems. A row-major (R, C) array is, read column-major,
/// the (C, R) array: its transpose. So row-major C = op(A) op(B) is column-major
/// C^T = op(B)^T op(A)^T, an N x M product of B's storage by A's:
///   B stored (K, N) (nn, tn) reads as B^T (N x K, ld N): taken as it is;
///   B stored (N, K) (nt, tt) reads as B   (K x N, ld K): transposed;
///   A stored (M, K) (nn, nt) reads as A^T (K x M, ld K): taken as it is;
///   A stored (K, M) (tn, tt) reads as A   (M x K, ld M): transposed;
/// and C^T (N x M, ld N) is row-major C.
class CublasGemm {
 public:
  CublasGemm() { cublas_check(cublasCreate(&h_), "cublasCreate"); }
  ~CublasGemm() { cublasDestroy(h_); }
  CublasGemm(const CublasGemm&) = delete;
  CublasGemm& operator=(const CublasGemm&) = delete;

  std::string version() const {
    int major = 0, minor = 0, patch = 0;
    cublas_check(cublasGetProperty(MAJOR_VERSION, &major), "cublasGetProperty");
    cublas_check(cublasGetProperty(MINOR_VERSION, &minor), "cublasGetProperty");
    cublas_check(cublasGetProperty(PATCH_LEVEL, &patch), "cublasGetProperty");
    return fmt::format("cuBLAS {}.{}.{}", major, minor, patch);
  }

  /// C = op(A) op(B) (alpha 1, beta 0) on `stream`, A and B of `in`, C of `out`.
  void operator()(rt::StreamRef stream, DType in, DType out, GemmLayout layout, Shape s,
                  const void* a, const void* b, void* c) const {
    cublas_check(cublasSetStream(h_, static_cast<cudaStream_t>(stream.handle)), "cublasSetStream");
    const int m = int(s.m), n = int(s.n), k = int(s.k);
    const bool at = a_transposed(layout), bt = b_transposed(layout);
    const float alpha = 1.0f, beta = 0.0f;
    cublas_check(
        cublasGemmEx(h_, bt ? CUBLAS_OP_T : CUBLAS_OP_N, at ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                     &alpha, b, cuda_type(in), bt ? k : n, a, cuda_type(in), at ? m : k, &beta, c,
                     cuda_type(out), n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
  }

 private:
  cublasHandle_t h_ = nullptr;
};
#endif

// ---- One problem --------------------------------------------------------------------------

/// What every problem of the run shares, and what they add up to.
struct Run {
  const prof::BenchArgs& args;
  const Options& options;
  const rt::Device& gpu;
#ifdef KILN_BENCH_CUBLAS
  const CublasGemm* cublas = nullptr;
#endif
  std::string summary{};
  std::string epilogue_summary{};  ///< rows of the --epilogue table
  std::string host_summary{};      ///< rows of the --host table
  nlohmann::json problems = nlohmann::json::array();
  std::vector<std::string> failures{};  ///< problems (and configs) whose C was wrong
};

const prof::Result* find_result(const std::vector<prof::Result>& rs, const std::string& name) {
  for (const auto& r : rs) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

/// The element-wise pass a framework runs after an unfused GEMM: C = GELU(C + bias[col]),
/// 8 elements (16 bytes of 16-bit C) a thread per step, in f32; rows of a multiple of 8.
/// `GELU` is defined before this: kiln_gelu_tanh, the erf form for C's type T (the same
/// code as kiln's epilogue), or nothing (--epilogue bias).
const char* bias_gelu_source = R"(
template <class T>
__device__ void run(T* c, const float* bias, long long total, int n) {
  struct alignas(8 * sizeof(T)) Pack {
    T v[8];
  };
  const long long step = 8LL * gridDim.x * blockDim.x;
  for (long long i = 8LL * (blockIdx.x * (long long)blockDim.x + threadIdx.x); i < total;
       i += step) {
    Pack p = *reinterpret_cast<const Pack*>(c + i);
    const int col = int(i % n);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float v = float(p.v[j]) + bias[col + j];
      p.v[j] = T(GELU(v));
    }
    *reinterpret_cast<Pack*>(c + i) = p;
  }
}
extern "C" __global__ void bias_gelu_f16(kiln::f16* c, const float* b, long long t, int n) { run(c, b, t, n); }
extern "C" __global__ void bias_gelu_bf16(kiln::bf16* c, const float* b, long long t, int n) { run(c, b, t, n); }
extern "C" __global__ void bias_gelu_f32(float* c, const float* b, long long t, int n) { run(c, b, t, n); }
)";

/// Times one problem (cuBLAS, kiln's choice and, with --sweep, every other candidate),
/// checks kiln's C, prints the problem's table and adds its row to the summary and the JSON.
/// TOut is C's element: float for f32, 16-bit patterns for f16 and bf16.
template <class TOut>
void run_problem(Run& run, DType in, GemmLayout layout, Shape s, const Inputs& inputs) {
  const DType out = run.options.out.value_or(in);
  const std::string dtype_text =
      out == in ? std::string(gen::to_string(in))
                : fmt::format("{} (C {})", gen::to_string(in), gen::to_string(out));
  const std::string what =
      fmt::format("{} {} {}", dtype_text, ops::to_string(layout), shape_text(s));
  const ops::GemmProblem problem{.m = s.m, .n = s.n, .k = s.k, .layout = layout};
  GemmParams params = ops::gemm_params(in, out, problem);
  if (run.options.config) params.config = *run.options.config;
  const GemmKernel& kernel = ops::gemm_kernel(params, run.gpu);  // what ops::gemm launches
  const std::string kiln_name = "kiln " + kernel.name();
  std::printf("## %s\n\nkiln's config: %s (chosen by: %s)\n\n", what.c_str(), kernel.name().c_str(),
              factory::to_string(kernel.selected_by()));

  const std::size_t mn = std::size_t(s.m) * std::size_t(s.n);
  const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
  const double bytes = (double(s.m) * double(s.k) + double(s.k) * double(s.n)) * gen::size_of(in) +
                       double(mn) * gen::size_of(out);
  rt::DeviceBuffer<TOut> c(mn, run.gpu);
  auto launch = [&](const GemmKernel& kern, rt::StreamRef st) {
    rt::LaunchConfig lc =
        ops::detail::gemm_launch(kern.params(), kern.config(), run.gpu.properties());
    lc.stream = st;
    ops::detail::gemm_launch_kernel(kern, kern.params(), lc, nullptr, inputs.a_dev.address(),
                                    inputs.b_dev.address(), c.address(), 1.0f, 0.0f,
                                    ops::GemmEpilogueArgs{}, run.gpu);
  };
  const std::vector<Position> positions = sample_positions(s);

  // The reference: cuBLAS's C where cuBLAS runs this problem (checked against the CPU on a
  // few elements, which also checks the layout mapping above), else the CPU's.
  prof::Bench bench(run.args.options());
  std::vector<double> want;
  std::string reference = "cpu";
#ifdef KILN_BENCH_CUBLAS
  std::optional<rt::DeviceBuffer<TOut>> c_cublas;
  try {
    c_cublas.emplace(mn, run.gpu);
    c_cublas->fill_bytes(0xff);
    (*run.cublas)(rt::StreamRef{}, in, out, layout, s, inputs.a_dev.data(), inputs.b_dev.data(),
                  c_cublas->data());
    run.gpu.make_current();
    want = sampled(out, *c_cublas, s, positions);
    const auto few = std::ptrdiff_t(cublas_check_size);
    const double err = max_rel_err(
        std::vector<double>(want.begin(), want.begin() + few),
        cpu_reference(in, layout, s, inputs,
                      std::vector<Position>(positions.begin(), positions.begin() + few)));
    if (!(err <= max_rel_error)) {
      throw Error(fmt::format("its C differs from the CPU's by {:.2g} of max |C|", err));
    }
    reference = "cublas";
    bench.add(
        "cuBLAS",
        [&](rt::StreamRef st) {
          (*run.cublas)(st, in, out, layout, s, inputs.a_dev.data(), inputs.b_dev.data(),
                        c_cublas->data());
        },
        bytes, flops);
  } catch (const std::exception& e) {
    std::printf("cuBLAS skipped for %s: %s\n", what.c_str(), e.what());
    want.clear();
    c_cublas.reset();
  }
#endif
  if (want.empty()) want = cpu_reference(in, layout, s, inputs, positions);

  bench.add(
      kiln_name, [&](rt::StreamRef st) { launch(kernel, st); }, bytes, flops);

  // --sweep: every other candidate config, compiled in parallel through the kernel cache,
  // each checked before it is timed.
  if (run.options.sweep) {
    auto& f = ops::gemm_factory();
    const auto configs = f.candidates(params, run.gpu.properties());
    auto built = f.build_all(params, configs, run.gpu);
    for (std::size_t i = 0; i < configs.size(); ++i) {
      const std::string name = f.kernel_name(params, configs[i]);
      if (name == kernel.name()) continue;
      std::shared_ptr<const GemmKernel> kern = built[i].kernel;
      if (!kern) {
        std::printf("sweep: %s left out: %s\n", name.c_str(), built[i].reason.c_str());
        continue;
      }
      c.fill_bytes(0xff);
      launch(*kern, rt::StreamRef{});
      const double err = max_rel_err(sampled(out, c, s, positions), want);
      if (!(err <= max_rel_error)) {
        std::printf("sweep: %s left out: wrong C (max rel err %.2g)\n", name.c_str(), err);
        run.failures.push_back(fmt::format("{} with {}: max rel err {:.2g}", what, name, err));
        continue;
      }
      bench.add(
          name, [&launch, kern](rt::StreamRef st) { launch(*kern, st); }, bytes, flops);
    }
  }

  // --epilogue bias_gelu(_tanh): kiln's kernel with GELU(v + bias[n]) fused, and cuBLAS
  // followed by the element-wise pass a framework would run (--epilogue bias: v + bias[n]).
  const EpilogueForm* form = run.options.epilogue;
  const std::string epilogue = form ? std::string(form->name) : std::string();
  const bool with_epilogue = form && s.n % 8 == 0;
  if (form && !with_epilogue) {
    std::printf("epilogue skipped for %s: the element-wise peer needs N a multiple of 8\n",
                what.c_str());
  }
  std::vector<float> bias_host;
  std::optional<rt::DeviceBuffer<float>> bias;
  std::optional<rt::DeviceBuffer<TOut>> c_fused;
  ops::GemmProblem fused_problem = problem;
  const GemmKernel* fused = nullptr;
  auto launch_fused = [&](rt::StreamRef st) {
    rt::LaunchConfig lc =
        ops::detail::gemm_launch(fused->params(), fused->config(), run.gpu.properties());
    lc.stream = st;
    ops::detail::gemm_launch_kernel(*fused, fused->params(), lc, nullptr, inputs.a_dev.address(),
                                    inputs.b_dev.address(), c_fused->address(), 1.0f, 0.0f,
                                    fused_problem.epilogue.args, run.gpu);
  };
  std::optional<rt::JitKernel> elementwise;
  const std::string fused_name = "kiln + " + epilogue + " (fused)";
  const std::string unfused_name = "cuBLAS + " + epilogue + " pass";
  if (with_epilogue) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::mt19937 gen(7);
    bias_host.resize(std::size_t(s.n));
    for (float& v : bias_host) v = u(gen);
    bias.emplace(bias_host.size(), run.gpu);
    bias->copy_from(bias_host);
    fused_problem.epilogue = form->make(bias->data());
    GemmParams fused_params = ops::gemm_params(in, out, fused_problem);
    if (run.options.config) fused_params.config = *run.options.config;
    fused = &ops::gemm_kernel(fused_params, run.gpu);
    c_fused.emplace(mn, run.gpu);
    bench.add(
        fused_name, [&](rt::StreamRef st) { launch_fused(st); }, bytes, flops);
#ifdef KILN_BENCH_CUBLAS
    if (c_cublas) {
      const std::string source =
          std::string("#include \"kiln/device.hpp\"\n#include \"kiln/device/half.hpp\"\n") +
          form->gelu_code + form->gelu_define + bias_gelu_source;
      elementwise.emplace(kiln::kernel(jit::Program{"bias_gelu.cu", source, {}, {}},
                                       "bias_gelu_" + std::string(gen::to_string(out)), {},
                                       run.gpu));
      const long long total = static_cast<long long>(mn);
      const int n = int(s.n);
      const auto blocks = std::min<std::int64_t>(
          (total / 8 + 255) / 256, std::int64_t(run.gpu.properties().multiprocessors) * 16);
      bench.add(
          unfused_name,
          [&, total, n, blocks](rt::StreamRef st) {
            (*run.cublas)(st, in, out, layout, s, inputs.a_dev.data(), inputs.b_dev.data(),
                          c_cublas->data());
            (*elementwise)(blocks, 256, st, c_cublas->data(), bias->data(), total, n);
          },
          bytes, flops);
    }
#endif
  }

  std::fflush(stdout);
  const auto results = bench.run();

  // After timing: kiln's C from a fresh call of ops::gemm (of the pinned kernel with
  // --config), against the reference.
  c.fill_bytes(0xff);
  if (run.options.config) {
    launch(kernel, rt::StreamRef{});
  } else {
    ops::gemm(in, out, inputs.a_dev, inputs.b_dev, c, problem);
  }
  const double err = max_rel_err(sampled(out, c, s, positions), want);
  const bool wrong = !(err <= max_rel_error);
  if (wrong) run.failures.push_back(fmt::format("{}: max rel err {:.2g}", what, err));

  // --host: the host's cost of a call on the same buffers, kiln::ops::gemm (the factory's
  // lookup, the tensor maps, the launch) against cublasGemmEx: each the median over bursts
  // of calls (short enough that the launch queue never fills), the GPU drained between
  // bursts. And, for the wgmma path, the cost of encoding its three tensor maps, which a
  // call on the buffers of one of the thread's last 8 launches skips.
  if (run.options.host && !run.options.config) {
    constexpr int burst = 32, bursts = 41;
    auto per_call_us = [&](auto&& call) {
      std::vector<double> us;
      for (int b = 0; b < bursts; ++b) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < burst; ++i) call();
        const auto t1 = std::chrono::steady_clock::now();
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / burst);
        run.gpu.synchronize();
      }
      std::sort(us.begin(), us.end());
      return us[us.size() / 2];
    };
    const double kiln_us =
        per_call_us([&] { ops::gemm(in, out, inputs.a_dev, inputs.b_dev, c, problem); });
    double cublas_us = 0;
#ifdef KILN_BENCH_CUBLAS
    if (c_cublas) {
      cublas_us = per_call_us([&] {
        (*run.cublas)(rt::StreamRef{}, in, out, layout, s, inputs.a_dev.data(), inputs.b_dev.data(),
                      c_cublas->data());
      });
      run.gpu.make_current();
    }
#endif
    double maps_us = 0;
    if (kernel.config().path == ops::GemmPath::wgmma) {  // (kernel: what ops::gemm launches)
      maps_us = per_call_us([&] {
        ops::detail::gemm_tensor_maps(kernel.params(), kernel.config(), inputs.a_dev.address(),
                                      inputs.b_dev.address(), c.address(), run.gpu);
      });
    }
    run.host_summary +=
        fmt::format("| {} | {} | {} | {:.2f} | {} | {} | {} |\n", shape_text(s), dtype_text,
                    ops::to_string(layout), kiln_us,
                    cublas_us > 0 ? fmt::format("{:.2f}", cublas_us) : std::string("-"),
                    cublas_us > 0 ? fmt::format("{:.2f}", kiln_us / cublas_us) : std::string("-"),
                    maps_us > 0 ? fmt::format("{:.2f}", maps_us) : std::string("-"));
  }

  // The table: cuBLAS, kiln's choice, then the fastest few swept configs.
  std::vector<prof::Result> shown, swept;
  for (const auto& r : results) {
    const bool peer =
        r.name == "cuBLAS" || r.name == kiln_name || r.name == fused_name || r.name == unfused_name;
    (peer ? shown : swept).push_back(r);
  }
  std::sort(swept.begin(), swept.end(), [](const prof::Result& x, const prof::Result& y) {
    return x.stats_us.median < y.stats_us.median;
  });
  shown.insert(shown.end(), swept.begin(),
               swept.begin() + std::ptrdiff_t(std::min(swept.size(), sweep_shown)));
  std::fputs(prof::markdown(shown).c_str(), stdout);
  if (swept.size() > sweep_shown) {
    std::printf("\n%zu more configs timed (all of them are in --json)\n",
                swept.size() - sweep_shown);
  }
  std::printf("\nmax rel err against %s: %.2g%s\n\n", reference.c_str(), err,
              wrong ? " (WRONG)" : "");

  if (with_epilogue) {
    c_fused->fill_bytes(0xff);
    if (run.options.config) {
      launch_fused(rt::StreamRef{});
    } else {
      ops::gemm(in, out, inputs.a_dev, inputs.b_dev, *c_fused, fused_problem);
    }
    std::vector<double> want_fused(want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double v = want[i] + double(bias_host[std::size_t(positions[i].col)]);
      want_fused[i] = form->host(v);
    }
    const double ferr = max_rel_err(sampled(out, *c_fused, s, positions), want_fused);
    std::printf("%s fused: max rel err %.2g%s\n\n", epilogue.c_str(), ferr,
                ferr <= max_rel_error ? "" : " (WRONG)");
    if (!(ferr <= max_rel_error)) {
      run.failures.push_back(fmt::format("{} with {}: max rel err {:.2g}", what, epilogue, ferr));
    }
    const prof::Result* plain_r = find_result(results, kiln_name);
    const prof::Result* fused_r = find_result(results, fused_name);
    const prof::Result* cub_r = find_result(results, "cuBLAS");
    const prof::Result* unf_r = find_result(results, unfused_name);
    auto ms = [](const prof::Result* r) { return r->stats_us.median / 1e3; };
    run.epilogue_summary += fmt::format(
        "| {} | {} | {:.4g} | {:.4g} | {:+.1f}% | {} | {} | {} |\n", shape_text(s), dtype_text,
        ms(plain_r), ms(fused_r), 100.0 * (ms(fused_r) / ms(plain_r) - 1.0),
        cub_r ? fmt::format("{:.4g}", ms(cub_r)) : "-",
        unf_r ? fmt::format("{:.4g}", ms(unf_r)) : "-",
        cub_r && unf_r ? fmt::format("{:+.1f}%", 100.0 * (ms(unf_r) / ms(cub_r) - 1.0)) : "-");
  }

  const prof::Result& kiln_r = *find_result(results, kiln_name);
  const prof::Result* cublas_r = find_result(results, "cuBLAS");
  const prof::Result* best = &kiln_r;
  if (!swept.empty() && swept.front().stats_us.median < kiln_r.stats_us.median) {
    best = &swept.front();
  }
  const double kiln_ms = kiln_r.stats_us.median / 1e3;
  run.summary += fmt::format(
      "| {} | {} | {} | {} | {:.4g} | {:.1f} | {} | {} | {} | {:.1e}{}{} |", shape_text(s),
      dtype_text, ops::to_string(layout), kernel.name(), kiln_ms, kiln_r.tflops(),
      cublas_r ? fmt::format("{:.4g}", cublas_r->stats_us.median / 1e3) : "-",
      cublas_r ? fmt::format("{:.1f}", cublas_r->tflops()) : "-",
      cublas_r ? fmt::format("{:.2f}x", kiln_r.tflops() / cublas_r->tflops()) : "-", err,
      reference == "cpu" ? " (cpu)" : "", wrong ? " WRONG" : "");
  // The best config by kernel name (kiln's choice is timed as "kiln NAME").
  const std::string best_name = best == &kiln_r ? kernel.name() : best->name;
  if (run.options.sweep) run.summary += fmt::format(" {} {:.1f} |", best_name, best->tflops());
  run.summary += "\n";

  nlohmann::json j = {{"m", s.m},
                      {"n", s.n},
                      {"k", s.k},
                      {"dtype", std::string(gen::to_string(in))},
                      {"out", std::string(gen::to_string(out))},
                      {"layout", ops::to_string(layout)},
                      {"kernel", kernel.name()},
                      {"selected_by", factory::to_string(kernel.selected_by())},
                      {"kiln_ms", kiln_ms},
                      {"kiln_tflops", kiln_r.tflops()},
                      {"max_rel_err", err},
                      {"reference", reference},
                      {"results", prof::to_json(results)}};
  if (cublas_r) {
    j["cublas_ms"] = cublas_r->stats_us.median / 1e3;
    j["cublas_tflops"] = cublas_r->tflops();
    j["speedup_vs_cublas"] = kiln_r.tflops() / cublas_r->tflops();
  }
  if (run.options.sweep) {
    j["best"] = {
        {"kernel", best_name}, {"ms", best->stats_us.median / 1e3}, {"tflops", best->tflops()}};
  }
  run.problems.push_back(std::move(j));
}

}  // namespace

int main(int argc, char** argv) try {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      std::fputs(prof::BenchArgs::usage(argv[0]).c_str(), stdout);
      return 0;
    }
  }
  std::vector<std::string> extra;
  const auto args = prof::BenchArgs::parse(argc, argv, &extra);
  const Options options = parse_options(extra);
  if (rt::device_count() == 0) {
    std::printf("no GPU found: the gemm benchmark needs one\n");
    return 0;
  }
  rt::Device gpu(0);
  gpu.make_current();
  const auto& props = gpu.properties();
  // Every problem is validated before anything is timed: its sizes, and the device's
  // tensor cores (kiln's GEMM needs sm_80 or later).
  for (DType in : options.dtypes) {
    for (const Shape s : options.shapes) {
      for (GemmLayout l : options.layouts) {
        const ops::GemmProblem p{.m = s.m, .n = s.n, .k = s.k, .layout = l};
        ops::gemm_factory().candidates(ops::gemm_params(in, options.out.value_or(in), p), props);
      }
    }
  }
#ifdef KILN_BENCH_CUBLAS
  const CublasGemm cublas;
  gpu.make_current();
  const std::string peer = cublas.version();
#else
  const std::string peer = "cuBLAS not found at build time";
#endif
  const std::string out_text =
      options.out ? std::string(gen::to_string(*options.out)) : "A's and B's type";
  const char* tune = std::getenv("KILN_TUNE");
  const std::string tune_text = tune && *tune ? tune : "off";
  std::printf("# gemm on %s (%s), C of %s, KILN_TUNE=%s\n\n", props.name.c_str(), peer.c_str(),
              out_text.c_str(), tune_text.c_str());

  Run run{.args = args, .options = options, .gpu = gpu};
#ifdef KILN_BENCH_CUBLAS
  run.cublas = &cublas;
#endif
  for (DType in : options.dtypes) {
    for (const Shape s : options.shapes) {
      const Inputs inputs = make_inputs(in, s, gpu);
      for (GemmLayout l : options.layouts) {
        if (options.out.value_or(in) == DType::f32) {
          run_problem<float>(run, in, l, s, inputs);
        } else {
          run_problem<std::uint16_t>(run, in, l, s, inputs);
        }
      }
    }
  }

  std::string header =
      "| M x N x K | dtype | layout | kiln config | kiln ms | kiln TFLOP/s | cuBLAS ms | "
      "cuBLAS TFLOP/s | kiln / cuBLAS | max rel err |";
  std::string rule = "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |";
  if (options.sweep) {
    header += " best config (sweep) |";
    rule += " --- |";
  }
  std::printf("# Summary\n\n%s\n%s\n%s", header.c_str(), rule.c_str(), run.summary.c_str());
  if (options.epilogue) {
    std::printf(
        "\n# Fused epilogue: %s\n\n| M x N x K | dtype | kiln ms | kiln + "
        "%s ms | fused cost | cuBLAS ms | cuBLAS + pass ms | pass cost |\n| --- | --- "
        "| ---: | ---: | ---: | ---: | ---: | ---: |\n%s",
        options.epilogue->title, std::string(options.epilogue->name).c_str(),
        run.epilogue_summary.c_str());
  }
  if (options.host) {
    std::printf(
        "\n# Host cost of a call (us, median over bursts of 32 calls on the same buffers)\n\n"
        "| M x N x K | dtype | layout | kiln::ops::gemm | cublasGemmEx | kiln / cuBLAS | "
        "encoding kiln's tensor maps |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n%s",
        run.host_summary.c_str());
  }
  if (!args.json_path.empty()) {
    const nlohmann::json json = {{"device", props.name},
                                 {"peer", peer},
                                 {"out", out_text},
                                 {"kiln_tune", tune_text},
                                 {"max_rel_error", max_rel_error},
                                 {"problems", run.problems}};
    std::ofstream f(args.json_path);
    f << json.dump(2) << '\n';
    if (!f.flush()) throw Error("gemm: cannot write " + args.json_path);
  }
  if (!run.failures.empty()) {
    std::fprintf(stderr, "gemm: kiln's C is wrong (max rel err above %g) for:\n", max_rel_error);
    for (const auto& f : run.failures) std::fprintf(stderr, "  %s\n", f.c_str());
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
