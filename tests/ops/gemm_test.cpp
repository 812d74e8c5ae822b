// kiln::ops gemm without a GPU: the configs each problem gets, the heuristic, validation
// messages, kernel names, the generated header, epilogues, the refusal on AMD GPUs (unit);
// every kind of config, layout, type and epilogue compiled by NVRTC for each NVIDIA target
// (nvrtc).
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "../devices.hpp"
#include "../nvrtc_support.hpp"
#include "kiln/jit/compiler.hpp"
#include "kiln/jit/resources.hpp"
#include "kiln/jit/sources.hpp"
#include "kiln/ops/gemm.hpp"

using namespace kiln::ops;
using kiln::gen::DType;
using kiln::ops::detail::gemm_configs;
using kiln::ops::detail::gemm_heuristic;
using kiln::ops::detail::gemm_kernel_name;
using kiln::ops::detail::validate_gemm;
using kiln::ops::detail::validate_gemm_config;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

kiln::rt::DeviceProperties h200() {
  return kiln_test::h200_properties();
}

GemmParams params(std::int64_t m, std::int64_t n, std::int64_t k,
                  GemmLayout layout = GemmLayout::nn, DType in = DType::f16,
                  DType out = DType::f32) {
  return GemmParams{in, out, layout, m, n, k};
}

}  // namespace

TEST_CASE("every candidate config is valid and fits, and the heuristic picks one of them") {
  const auto d = h200();
  for (auto [m, n, k] : {std::tuple{1, 1, 8},
                         {127, 129, 136},
                         {1000, 1000, 1000},
                         {8192, 8192, 8192},
                         {128, 4096, 4096},
                         {8192, 14336, 4096}}) {
    CAPTURE(m);
    CAPTURE(n);
    const auto p = params(m, n, k);
    const auto configs = gemm_configs(p, d);
    REQUIRE_FALSE(configs.empty());
    std::set<std::string> names;
    for (const auto& c : configs) {
      CHECK_NOTHROW(validate_gemm_config(c, 227 * 1024));
      CHECK(names.insert(gemm_kernel_name(p, c)).second);  // no two share a name
    }
    const GemmConfig h = gemm_heuristic(p, configs, d);
    CHECK(std::find(configs.begin(), configs.end(), h) != configs.end());
  }
  // Big problems get the big tiles; a small one gets tiles that fill the GPU.
  const auto big = params(8192, 8192, 8192);
  const GemmConfig hb = gemm_heuristic(big, gemm_configs(big, d), d);
  CHECK(hb.block_m * hb.block_n == 128 * 256);
  const auto small = params(1024, 1024, 1024);
  const GemmConfig hs = gemm_heuristic(small, gemm_configs(small, d), d);
  CHECK((1024 / hs.block_m) * (1024 / hs.block_n) >= 64);
  // A device with less shared memory gets fewer stages.
  auto a100ish = d;
  a100ish.shared_per_block_optin = 99 * 1024;
  for (const auto& c : gemm_configs(big, a100ish)) {
    CHECK(kiln::ops::detail::gemm_shared_bytes(c) <= 99 * 1024);
  }
}

TEST_CASE("a pinned config is the only candidate, and a bad one is refused") {
  auto p = params(256, 256, 256);
  p.config = {128, 128, 64, 2, 2, 3, 8};
  CHECK(gemm_configs(p, h200()) == std::vector<GemmConfig>{p.config});
  p.config = {128, 128, 48, 2, 2, 3, 8};
  CHECK(has(error_of([&] { gemm_configs(p, h200()); }), "block_k must be 32 or 64"));
  p.config = {256, 256, 64, 2, 2, 4, 8};  // 256 KiB of shared memory, warp tiles of 128 x 128
  CHECK(has(error_of([&] { gemm_configs(p, h200()); }), "accumulators"));
  p.config = {256, 256, 64, 4, 4, 4, 8};
  CHECK(has(error_of([&] { gemm_configs(p, h200()); }), "exceed the device's"));
}

TEST_CASE("unsupported problems are refused with what is supported") {
  CHECK(has(error_of([] { validate_gemm(params(8, 8, 8, GemmLayout::nn, DType::f32)); }),
            "A and B must be f16 or bf16"));
  CHECK(
      has(error_of([] { validate_gemm(params(8, 8, 8, GemmLayout::nn, DType::f16, DType::i32)); }),
          "C must be f16, bf16 or f32"));
  CHECK(has(error_of([] { validate_gemm(params(-1, 8, 8)); }), "m = -1"));
  CHECK(has(error_of([] { validate_gemm(params(65536, 65536, 8)); }), "C has 65536 x 65536"));
  auto p = params(8, 8, 8);
  p.epilogue_name = "bad name";
  p.epilogue_code = "struct Epilogue {};";
  CHECK(has(error_of([&] { validate_gemm(p); }), "not a C++ identifier"));
  p.epilogue_name = "named";
  p.epilogue_code = "";
  CHECK(has(error_of([&] { validate_gemm(p); }), "both a name and its device code"));
  CHECK(error_of([] { validate_gemm(params(0, 0, 0)); }).empty());
}

TEST_CASE("gfx942 and pre-sm_80 devices get a clear kiln::Error, not a compile failure") {
  kiln::rt::DeviceProperties amd;
  amd.platform = kiln::rt::Platform::hip;
  amd.arch = "gfx942";
  const std::string e =
      error_of([&] { kiln::ops::detail::check_gemm_device(params(64, 64, 64), amd); });
  CHECK(has(e, "no GEMM for AMD GPUs (gfx942) exists yet"));
  kiln::rt::DeviceProperties old = h200();
  old.arch = "sm_75";
  old.compute_major = 7;
  CHECK(has(error_of([&] { kiln::ops::detail::check_gemm_device(params(64, 64, 64), old); }),
            "needs the tensor cores of sm_80"));
  CHECK_NOTHROW(kiln::ops::detail::check_gemm_device(params(64, 64, 64), h200()));
  // The factory itself refuses before compiling anything.
  const std::string f =
      error_of([&] { kiln::ops::gemm_factory().candidates(params(64, 64, 64), amd); });
  CHECK(has(f, "no GEMM for AMD GPUs (gfx942) exists yet"));
  CHECK(kiln::ops::gemm_factory().candidates(params(64, 64, 64), h200()).size() > 10);
}

TEST_CASE("kernel names carry the specialization, the alignment and the epilogue") {
  const GemmConfig c{128, 256, 64, 2, 4, 3, 8};
  CHECK(gemm_kernel_name(params(512, 512, 512), c) == "gemm__f16_f32__nn__128x256x64_w2x4_s3_g8");
  // Rows of B (N = 100 elements) are not whole 16-byte vectors in nn, but 8-byte ones: the
  // name carries the elements a copy moves, of A (8) and of B (4). In nt B's rows are K's.
  CHECK(gemm_kernel_name(params(512, 100, 512), c) ==
        "gemm__f16_f32__nn__128x256x64_w2x4_s3_g8__v84");
  CHECK(gemm_kernel_name(params(512, 512, 99), c) ==
        "gemm__f16_f32__nn__128x256x64_w2x4_s3_g8__v18");  // A's rows: K = 99, odd
  CHECK(gemm_kernel_name(params(512, 98, 2500), c) ==
        "gemm__f16_f32__nn__128x256x64_w2x4_s3_g8__v42");
  CHECK(gemm_kernel_name(params(512, 100, 512, GemmLayout::nt, DType::bf16, DType::bf16), c) ==
        "gemm__bf16_bf16__nt__128x256x64_w2x4_s3_g8");
  auto p = gemm_params(DType::f16, DType::f16,
                       {.m = 64, .n = 64, .k = 64, .epilogue = gemm_epilogues::relu()});
  CHECK(gemm_kernel_name(p, c) == "gemm__f16_f16__nn__128x256x64_w2x4_s3_g8__epi_relu");
}

TEST_CASE("the generated header lays A and B out as the layout says, with the epilogue") {
  const GemmConfig c{128, 128, 32, 2, 2, 4, 8};
  const std::string nn = kiln::ops::detail::gemm_spec(params(64, 64, 64), c).header();
  CHECK(has(nn,
            "using A = kiln::Tensor<const kiln::f16, kiln::Extent<M, kiln::dynamic>, "
            "kiln::Extent<K, kiln::dynamic>>;"));
  CHECK(has(nn,
            "using B = kiln::Tensor<const kiln::f16, kiln::Extent<K, kiln::dynamic>, "
            "kiln::Extent<N, kiln::dynamic>>;"));
  CHECK(has(nn,
            "using C = kiln::Tensor<float, kiln::Extent<M, kiln::dynamic>, "
            "kiln::Extent<N, kiln::dynamic>>;"));
  CHECK(has(nn, "inline constexpr int kBK = 32;"));
  CHECK(has(nn, "inline constexpr int kVectorA = 8;"));
  CHECK(has(nn, "inline constexpr int kVectorB = 8;"));
  CHECK(has(nn, "// Code: epilogue\nstruct Epilogue {"));
  const std::string tt =
      kiln::ops::detail::gemm_spec(params(60, 64, 64, GemmLayout::tt, DType::bf16), c).header();
  CHECK(has(tt,
            "using A = kiln::Tensor<const kiln::bf16, kiln::Extent<K, kiln::dynamic>, "
            "kiln::Extent<M, kiln::dynamic>>;"));
  CHECK(has(tt,
            "using B = kiln::Tensor<const kiln::bf16, kiln::Extent<N, kiln::dynamic>, "
            "kiln::Extent<K, kiln::dynamic>>;"));
  CHECK(has(tt, "inline constexpr int kVectorA = 4;"));  // A's rows hold M = 60 elements
  CHECK(has(tt, "inline constexpr int kVectorB = 8;"));
  const auto bias = gemm_epilogues::bias(nullptr);
  CHECK(bias.args_bytes == int(sizeof(const float*)));
  auto p = gemm_params(DType::f16, DType::f32, {.m = 8, .n = 8, .k = 8, .epilogue = bias});
  const std::string with = kiln::ops::detail::gemm_spec(p, c).header();
  CHECK(has(with, "return v + bias[n.get()];"));
  CHECK(has(with, "inline constexpr int kEpilogueArgsBytes = 8;"));
}

TEST_CASE("params and configs round-trip through JSON") {
  auto p = gemm_params(
      DType::bf16, DType::f16,
      {.m = 3, .n = 5, .k = 7, .layout = GemmLayout::tn, .epilogue = gemm_epilogues::silu()});
  p.config = {64, 64, 32, 2, 2, 2, 8};
  const nlohmann::json j = p;
  CHECK(j.at("layout") == "tn");
  CHECK(j.get<GemmParams>() == p);
  // The memo's hash sees every field.
  const std::hash<GemmParams> hash;
  auto q = p;
  CHECK(hash(q) == hash(p));
  q.k = 8;
  CHECK(hash(q) != hash(p));
  q = p;
  q.epilogue_code += " ";
  CHECK(hash(q) != hash(p));
  q = p;
  q.config.stages = 3;
  CHECK(hash(q) != hash(p));
}

namespace {

struct Kind {
  GemmParams p;
  GemmConfig c;
};

std::vector<Kind> every_kind() {
  std::vector<Kind> out;
  const GemmConfig big{128, 256, 64, 2, 4, 3, 8}, mid{128, 128, 32, 2, 2, 4, 8},
      small{64, 64, 64, 2, 2, 2, 8}, wide{64, 256, 32, 1, 4, 3, 8};
  for (auto layout : {GemmLayout::nn, GemmLayout::nt, GemmLayout::tn, GemmLayout::tt}) {
    out.push_back({params(512, 512, 512, layout), big});
    out.push_back({params(512, 512, 512, layout, DType::bf16, DType::bf16), mid});
  }
  // Rows of 100 elements: 8-byte copies; of 98 (B): 4-byte ones; of 99 (A): element by element.
  out.push_back({params(100, 100, 100, GemmLayout::nn, DType::f16, DType::f16), small});
  out.push_back({params(99, 98, 99, GemmLayout::nn, DType::bf16, DType::f32), small});
  out.push_back({params(512, 512, 512, GemmLayout::tn, DType::bf16, DType::f32), wide});
  return out;
}

// Every epilogue kiln ships, on one config.
std::vector<Kind> every_epilogue() {
  std::vector<Kind> out;
  const GemmConfig mid{128, 128, 32, 2, 2, 4, 8};
  for (const auto& e : {gemm_epilogues::bias_gelu(nullptr), gemm_epilogues::bias_gelu_tanh(nullptr),
                        gemm_epilogues::bias_silu(nullptr),
                        gemm_epilogues::residual(static_cast<const kiln::f16*>(nullptr), 512),
                        gemm_epilogues::relu()}) {
    out.push_back(
        {gemm_params(DType::f16, DType::f16, {.m = 512, .n = 512, .k = 512, .epilogue = e}), mid});
  }
  // GELU's form follows C's type: gelu_erf_bf16 and gelu_erf as well as gelu_erf_f16.
  for (const DType c : {DType::bf16, DType::f32}) {
    out.push_back(
        {gemm_params(
             DType::bf16, c,
             {.m = 512, .n = 512, .k = 512, .epilogue = gemm_epilogues::bias_gelu(nullptr)}),
         mid});
  }
  return out;
}

// Each of `kinds` compiled for sm_80 to sm_90 (the kernel cache's in-memory compile checked
// on the first only): the accumulators stay in registers (no .local), the tensor cores do
// the work, and the tiles move by cp.async of the size the rows allow.
void compile_sm80_kinds(const std::vector<Kind>& kinds) {
  bool first = true;
  for (const auto& k : kinds) {
    const std::string name = gemm_kernel_name(k.p, k.c);
    CAPTURE(name);
    kiln::gen::Spec spec = kiln::ops::detail::gemm_spec(k.p, k.c);
    spec.kernel_name(name);
    kiln::jit::Program program = kiln::jit::program_from_file("gemm_sm80.cu");
    program.headers.push_back({"spec.hpp", spec.header()});
    const int va = kiln::ops::detail::gemm_vector_a(k.p),
              vb = kiln::ops::detail::gemm_vector_b(k.p);
    for (const auto& ptx : kiln_test::compile_for_nvidia_targets(program, name, first)) {
      CHECK(has(ptx, "mma.sync.aligned.m16n8k16.row.col.f32"));
      CHECK(has(ptx, "cp.async.cg.shared.global") == (va == 8 || vb == 8));
      for (int v : {4, 2}) {
        CHECK(has(ptx, "], " + std::to_string(2 * v) + ", ") == (va == v || vb == v));
      }
      if (k.p.epilogue_name == "bias_gelu") {
        // GELU's tail takes 2^x alone for 16-bit C, 1/x and 2^x for f32 C.
        CHECK(has(ptx, "ex2.approx.ftz.f32"));
        CHECK(has(ptx, "rcp.approx.ftz.f32") == (k.p.out == DType::f32));
      }
    }
    first = false;
  }
}

}  // namespace

TEST_CASE("NVRTC: every kind of config, layout and type compiles for sm_80 to sm_90") {
  compile_sm80_kinds(every_kind());
}

TEST_CASE("NVRTC: every epilogue compiles for sm_80 to sm_90") {
  compile_sm80_kinds(every_epilogue());
}

TEST_CASE("NVRTC: an epilogue whose device struct differs from the host's arguments fails") {
  // The host passes 8 bytes (one pointer); the device struct holds two pointers.
  auto p = gemm_params(DType::f16, DType::f32,
                       {.m = 64,
                        .n = 64,
                        .k = 64,
                        .epilogue = GemmEpilogue::make("two", R"(
struct Epilogue {
  const float* x;
  const float* y;
  KILN_DEVICE float operator()(float v, M, N) const { return v; }
};)",
                                                       gemm_epilogues::BiasArgs{nullptr})});
  const GemmConfig c{64, 64, 64, 2, 2, 2, 8};
  kiln::gen::Spec spec = kiln::ops::detail::gemm_spec(p, c);
  spec.kernel_name(gemm_kernel_name(p, c));
  kiln::jit::Program program = kiln::jit::program_from_file("gemm_sm80.cu");
  program.headers.push_back({"spec.hpp", spec.header()});
  kiln::jit::Options o;
  o.target = "sm_90";
  const std::string e = error_of([&] { kiln::jit::compiler_for("sm_90").compile(program, o); });
  CHECK(has(e, "the epilogue's device struct and the arguments the host passes differ in size"));
}

namespace {

// The wgmma kernel (kernels/gemm_sm90.cu) compiled for sm_90a.
std::string compile_sm90a(const GemmParams& p, const GemmConfig& c) {
  const std::string name = gemm_kernel_name(p, c);
  kiln::gen::Spec spec = kiln::ops::detail::gemm_spec(p, c);
  spec.kernel_name(name);
  kiln::jit::Program program = kiln::jit::program_from_file("gemm_sm90.cu");
  program.headers.push_back({"spec.hpp", spec.header()});
  kiln::jit::Options o;
  o.target = "sm_90a";
  o.extra.push_back(kiln::jit::resource_usage_flag);
  const kiln::jit::Binary b = kiln::jit::compiler_for("sm_90a").compile(program, o);
  CHECK_FALSE(b.code.empty());
  CHECK(b.ptx.find(".entry " + name) != std::string::npos);
  CHECK_MESSAGE(b.log.find("warning") == std::string::npos, b.log);
  // Nor does ptxas serialize the products (its C7515 "info", not a warning: non-wgmma
  // instructions defining accumulator registers within the pipeline, as a conditional
  // start of the accumulators from a bias did on a branch).
  CHECK_MESSAGE(b.log.find("Potential Performance Loss") == std::string::npos, b.log);
  CHECK(b.ptx.find(".local") == std::string::npos);
  // Nor does ptxas spill (the registers setmaxnreg gives each warp group hold its code).
  const auto resources = kiln::jit::kernel_resources(b);
  REQUIRE(resources.size() == 1);
  CHECK(resources.front().spill_store_bytes == 0);
  CHECK(resources.front().stack_bytes == 0);
  return b.ptx;
}

}  // namespace

TEST_CASE("NVRTC: every wgmma config the H200 gets compiles for sm_90a, each layout and type") {
  const auto d = h200();
  std::vector<Kind> kinds;
  // Every tile shape offered (at its deepest ring), nn, f16 in and out.
  const auto big = params(8192, 8192, 8192, GemmLayout::nn, DType::f16, DType::f16);
  std::set<std::pair<int, int>> shapes;
  const auto configs = gemm_configs(big, d);
  for (auto it = configs.rbegin(); it != configs.rend(); ++it) {
    if (it->path == GemmPath::wgmma && shapes.insert({it->block_m, it->block_n}).second) {
      kinds.push_back({big, *it});
    }
  }
  CHECK(shapes.size() >= 6);
  // Every layout and type with the biggest tile, and an epilogue.
  const GemmConfig wide{128, 256, 64, 0, 0, 4, 8, GemmPath::wgmma, 2};
  const GemmConfig one{128, 128, 64, 0, 0, 4, 8, GemmPath::wgmma, 1};
  for (auto layout : {GemmLayout::nt, GemmLayout::tn, GemmLayout::tt}) {
    kinds.push_back({params(512, 512, 512, layout, DType::bf16, DType::f32), wide});
  }
  kinds.push_back({params(512, 512, 512, GemmLayout::tt, DType::f16, DType::bf16), one});
  // Split K over clusters of 2 and 4 blocks.
  kinds.push_back({params(128, 4096, 4096, GemmLayout::nn, DType::f16, DType::f16),
                   {64, 128, 64, 0, 0, 6, 8, GemmPath::wgmma, 1, 4}});
  kinds.push_back({params(1000, 1000, 1000, GemmLayout::tn, DType::bf16, DType::f32),
                   {128, 128, 64, 0, 0, 4, 8, GemmPath::wgmma, 2, 2}});
  kinds.push_back(
      {gemm_params(DType::bf16, DType::bf16,
                   {.m = 512, .n = 512, .k = 512, .epilogue = gemm_epilogues::bias_gelu(nullptr)}),
       wide});
  // Clusters on block rows (B stored N-contiguous: 4 and 2 boxes a stage), either A.
  kinds.push_back({params(512, 512, 512, GemmLayout::nn, DType::bf16, DType::f32),
                   {128, 256, 64, 0, 0, 4, 8, GemmPath::wgmma, 2, 1, 2}});
  kinds.push_back({params(512, 512, 512, GemmLayout::tn, DType::f16, DType::f16),
                   {256, 128, 64, 0, 0, 4, 8, GemmPath::wgmma, 2, 1, 2}});
  // ... and B stored K-contiguous (half boxes of its rows); 4 blocks, and N-major boxes
  // split along K.
  kinds.push_back({params(512, 512, 512, GemmLayout::nt, DType::f16, DType::f16),
                   {128, 128, 64, 0, 0, 6, 8, GemmPath::wgmma, 2, 1, 2}});
  kinds.push_back({params(1000, 1000, 1000, GemmLayout::nn, DType::f16, DType::f16),
                   {64, 128, 64, 0, 0, 6, 8, GemmPath::wgmma, 1, 1, 4}});
  kinds.push_back({params(1000, 1000, 1000, GemmLayout::tt, DType::bf16, DType::f32),
                   {64, 128, 64, 0, 0, 6, 8, GemmPath::wgmma, 1, 1, 4}});
  kinds.push_back({params(1000, 1000, 1000, GemmLayout::nn, DType::f16, DType::f16),
                   {128, 64, 64, 0, 0, 6, 8, GemmPath::wgmma, 2, 1, 2}});
  // Three consumers in 192 x 128 tiles: A's stage is three M-major boxes (tt), f32 C, and
  // the erf GELU epilogue in 152 registers.
  const GemmConfig three{192, 128, 64, 0, 0, 5, 8, GemmPath::wgmma, 3};
  kinds.push_back({params(1000, 1000, 1000, GemmLayout::tt, DType::f16, DType::f32), three});
  kinds.push_back(
      {gemm_params(DType::f16, DType::f16,
                   {.m = 512, .n = 512, .k = 512, .epilogue = gemm_epilogues::bias_gelu(nullptr)}),
       three});
  // ... and the heuristic's choice for about one wave (one consumer, 16-bit C by TMA).
  kinds.push_back({params(1000, 1000, 1000, GemmLayout::nn, DType::f16, DType::f16),
                   {64, 128, 64, 0, 0, 6, 8, GemmPath::wgmma, 1, 1, 2}});
  for (const auto& k : kinds) {
    CAPTURE(gemm_kernel_name(k.p, k.c));
    const std::string ptx = compile_sm90a(k.p, k.c);
    CHECK(has(ptx, "wgmma.mma_async.sync.aligned.m64n" + std::to_string(k.c.block_n) + "k16.f32"));
    CHECK(has(ptx, "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"));
    CHECK(
        has(ptx, "setmaxnreg.inc.sync.aligned.u32 " + std::to_string(k.c.consumers == 1   ? 240
                                                                     : k.c.consumers == 2 ? 232
                                                                                          : 152)));
    CHECK(has(ptx, "mapa.u64") == (k.c.split_k > 1));  // split K reads the other blocks' sums
    // Clusters on block rows copy B's stages into both blocks and release them in both.
    CHECK(has(ptx, ".multicast::cluster") == (k.c.cluster_m > 1));
    CHECK(has(ptx, "mbarrier.arrive.shared::cluster.b64") == (k.c.cluster_m > 1));
    CHECK(has(ptx, "mbarrier.arrive.release.cluster.shared::cluster") == (k.c.split_k > 1));
  }
}

TEST_CASE("the factory compiles each config's own kernel, for its own target") {
  const auto d = h200();
  auto& f = kiln::ops::gemm_factory();
  const auto p = params(512, 512, 512, GemmLayout::nn, DType::f16, DType::f16);
  const auto wg = f.compile_request(p, {128, 256, 64, 0, 0, 4, 8, GemmPath::wgmma, 2}, d);
  const auto mma = f.compile_request(p, {128, 128, 64, 2, 2, 3, 8}, d);
  CHECK(has(wg.program.source, "wgmma"));
  CHECK(wg.options.target == "sm_90a");
  CHECK(has(mma.program.source, "mma.sync"));
  CHECK(mma.options.target == "sm_90");
}

TEST_CASE("split K is offered where tiles leave SMs idle, and clusters its blocks") {
  const auto d = h200();
  auto count_split = [&](const GemmParams& p) {
    int n = 0;
    for (const auto& c : gemm_configs(p, d)) {
      if (c.split_k > 1) {
        ++n;
        CHECK(c.path == GemmPath::wgmma);
        CHECK(c.block_m * c.block_n <= 128 * 128);
        CHECK(kiln::ops::detail::gemm_shared_bytes(c) <= 227 * 1024);
        const auto lc = kiln::ops::detail::gemm_launch(p, c, d);
        CHECK(lc.cluster.x == unsigned(c.split_k));
        CHECK(lc.grid.x % unsigned(c.split_k) == 0);
        CHECK(lc.grid.x <= 132u);
      }
    }
    return n;
  };
  CHECK(count_split(params(128, 4096, 4096, GemmLayout::nn, DType::f16, DType::f16)) > 0);
  CHECK(count_split(params(1000, 1000, 1000)) > 0);
  CHECK(count_split(params(8192, 8192, 8192)) == 0);  // many tiles: no split
  CHECK(count_split(params(128, 128, 128)) == 0);     // K too short to split
  // The heuristic splits K for a small-M, long-K problem.
  const auto skinny = params(128, 4096, 14336, GemmLayout::nn, DType::f16, DType::f16);
  CHECK(gemm_heuristic(skinny, gemm_configs(skinny, d), d).split_k > 1);
  // With 128 x 64 tiles in clusters of 2, the fastest when tuned on an H200 for both.
  for (std::int64_t k : {4096, 14336}) {
    const auto p = params(128, 4096, k, GemmLayout::nn, DType::f16, DType::f16);
    const GemmConfig h = gemm_heuristic(p, gemm_configs(p, d), d);
    CHECK(h.block_m == 128);
    CHECK(h.block_n == 64);
    CHECK(h.split_k == 2);
  }
  // A bad split is refused, naming the rule.
  GemmConfig bad{128, 128, 64, 0, 0, 4, 8, GemmPath::wgmma, 2, 3};
  CHECK(has(error_of([&] { validate_gemm_config(bad); }), "split_k must be 1, 2 or 4"));
  bad = {128, 128, 64, 2, 2, 4, 8, GemmPath::mma_sync, 0, 2};
  CHECK(has(error_of([&] { validate_gemm_config(bad); }), "split_k is 1 for mma_sync"));
}

TEST_CASE("clusters on block rows share B's tiles: candidates for about one wave, in pairs") {
  const auto d = h200();
  auto clustered = [&](const GemmParams& p) {
    std::vector<GemmConfig> out;
    for (const auto& c : gemm_configs(p, d)) {
      if (c.cluster_m > 1) out.push_back(c);
    }
    return out;
  };
  // Not among the candidates where 128 x 128 tiles make more than a wave (132 SMs).
  CHECK(clustered(params(8192, 8192, 8192)).empty());
  CHECK(clustered(params(1536, 1536, 1536)).empty());  // 144 tiles of 128 x 128
  CHECK(clustered(params(1536, 1536, 1536, GemmLayout::nt)).empty());
  // Nor where the tiles are more than twice the problem along M or N.
  CHECK(clustered(params(16, 16, 64)).empty());
  CHECK(clustered(params(1000, 40, 512)).empty());
  // About one wave: tiles of 64 or 128 rows by 128 columns, 4 to 6 stages, and the
  // heuristic takes 64 x 128 tiles in pairs, whichever way B is stored.
  for (const auto& p :
       {params(1000, 1000, 1000), params(1000, 1000, 4000, GemmLayout::tn), params(300, 4096, 4096),
        params(1000, 1000, 1000, GemmLayout::nt), params(1000, 1000, 4000, GemmLayout::tt)}) {
    CAPTURE(p.m);
    const auto cs = clustered(p);
    CHECK(cs.size() == 9);
    for (const auto& c : cs) {
      CHECK(c.block_n == 128);
      CHECK(c.split_k == 1);
      CHECK(c.stages >= 4);
    }
  }
  for (GemmLayout l : {GemmLayout::nn, GemmLayout::nt, GemmLayout::tn, GemmLayout::tt}) {
    const GemmParams wave = params(1000, 1000, 1000, l);
    const GemmConfig h = gemm_heuristic(wave, gemm_configs(wave, d), d);
    CHECK(h == GemmConfig{64, 128, 64, 0, 0, 6, 8, GemmPath::wgmma, 1, 1, 2});
  }
  // Pinned: a grid of whole pairs, one cluster a pair of block rows (3 block rows make 2
  // pairs a column), at most one block an SM.
  const GemmConfig pinned{128, 256, 64, 0, 0, 4, 8, GemmPath::wgmma, 2, 1, 2};
  for (auto [m, n] : {std::pair{8192, 8192}, {300, 4096}, {128, 512}}) {
    GemmParams p = params(m, n, 4096);
    p.config = pinned;
    REQUIRE(gemm_configs(p, d).size() == 1);
    const auto lc = kiln::ops::detail::gemm_launch(p, pinned, d);
    const std::int64_t pairs = (m + 2 * 128 - 1) / (2 * 128) * ((n + 255) / 256);
    CAPTURE(m);
    CHECK(lc.cluster.x == 2u);
    CHECK(lc.grid.x == unsigned(2 * std::min<std::int64_t>(pairs, 66)));
  }
  // B stored K-contiguous: a pinned cluster config is accepted as it is.
  GemmParams kmajor = params(512, 512, 512, GemmLayout::nt);
  kmajor.config = pinned;
  CHECK(gemm_configs(kmajor, d).size() == 1);
  // The name says so; a bad cluster is refused, naming the rule.
  GemmConfig pair{128, 256, 64, 0, 0, 4, 8, GemmPath::wgmma, 2, 1, 2};
  CHECK(has(gemm_kernel_name(params(512, 512, 512), pair), "_c2_m2_s4"));
  GemmConfig bad = pair;
  bad.cluster_m = 3;
  CHECK(has(error_of([&] { validate_gemm_config(bad); }), "cluster_m must be 1, 2 or 4"));
  bad = pair;
  bad.split_k = 2;
  bad.block_n = 128;
  CHECK(has(error_of([&] { validate_gemm_config(bad); }), "cluster_m 2 takes split_k 1"));
  // Tiles of fewer 64-column boxes than blocks split each box along K.
  CHECK_NOTHROW(validate_gemm_config({128, 64, 64, 0, 0, 4, 8, GemmPath::wgmma, 2, 1, 2}));
  CHECK_NOTHROW(validate_gemm_config({64, 128, 64, 0, 0, 6, 8, GemmPath::wgmma, 1, 1, 4}));
  bad = {128, 128, 64, 2, 2, 4, 8, GemmPath::mma_sync, 0, 1, 2};
  CHECK(has(error_of([&] { validate_gemm_config(bad); }), "cluster_m is 1 for mma_sync"));
  // JSON without the field (records written before it existed) reads as 1.
  const auto old = nlohmann::json::parse(
      R"({"block_m":128,"block_n":256,"block_k":64,"warps_m":0,"warps_n":0,"stages":4,)"
      R"("group_m":8,"path":"wgmma","consumers":2,"split_k":1})");
  CHECK(old.get<GemmConfig>().cluster_m == 1);
  CHECK(nlohmann::json(pair).get<GemmConfig>() == pair);
}

TEST_CASE("three consumer warp groups: 192 x 128 tiles are candidates, bigger ones are refused") {
  const auto d = h200();
  const GemmConfig three{192, 128, 64, 0, 0, 4, 8, GemmPath::wgmma, 3};
  int offered = 0;
  for (const auto& c : gemm_configs(params(8192, 8192, 8192), d)) {
    if (c.consumers != 3) continue;
    ++offered;
    CHECK(c.block_m == 192);
    CHECK(c.block_n == 128);
    CHECK(c.cluster_m == 1);
    CHECK(c.split_k == 1);
  }
  CHECK(offered == 3);  // 3 to 5 stages fit (40 KiB a stage)
  CHECK(kiln::ops::detail::gemm_threads(three) == 512);
  CHECK(has(gemm_kernel_name(params(512, 512, 512), three), "wg192x128x64_c3_s4"));
  // A problem of fewer than 96 rows does not get them (tiles more than twice its rows).
  for (const auto& c : gemm_configs(params(64, 8192, 8192), d)) CHECK(c.consumers != 3);
  // 64 accumulators a thread at most: 152 registers each.
  GemmConfig bad = three;
  bad.block_n = 256;
  CHECK(
      has(error_of([&] { validate_gemm_config(bad); }), "room for 64 accumulators each, not 128"));
  bad = three;
  bad.block_m = 128;
  CHECK(has(error_of([&] { validate_gemm_config(bad); }), "multiple of 64 x consumers"));
  bad = three;
  bad.consumers = 4;
  bad.block_m = 256;
  CHECK(has(error_of([&] { validate_gemm_config(bad); }), "consumers must be 1, 2 or 3"));
  bad = three;
  bad.block_m = 320;
  CHECK(has(error_of([&] { validate_gemm_config(bad); }), "block_m must be 64, 128, 192 or 256"));
}
