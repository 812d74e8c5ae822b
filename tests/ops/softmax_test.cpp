// kiln::ops softmax without a GPU: the configs each problem gets, the heuristic, validation
// messages, kernel names and the generated header (unit); every kind of config compiled by
// NVRTC for each NVIDIA target (nvrtc), and by clang's HIP mode for gfx942 (hip).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "../nvrtc_support.hpp"
#include "../support.hpp"
#include "kiln/jit/compiler.hpp"
#include "kiln/jit/sources.hpp"
#include "kiln/ops/detail/softmax_configs.hpp"

using namespace kiln::ops;
using kiln::ops::detail::softmax_configs;
using kiln::ops::detail::softmax_heuristic;
using kiln::ops::detail::softmax_kernel_name;
using kiln::ops::detail::validate_softmax;
using kiln::ops::detail::validate_softmax_config;
using SoftmaxDType = kiln::gen::DType;  // f16, bf16 or f32 for a softmax

namespace {

std::string error_of(const SoftmaxParams& p) {
  try {
    validate_softmax(p);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const SoftmaxDType all_dtypes[] = {SoftmaxDType::f16, SoftmaxDType::bf16, SoftmaxDType::f32};

}  // namespace

TEST_CASE("every candidate config is valid, and the heuristic picks one of them") {
  for (int warp : {32, 64}) {
    for (auto dt : all_dtypes) {
      for (int cols : {1, 2, 3, 7, 100, 128, 1000, 1001, 1024, 4096, 4100, 8192, 12345, 32768,
                       65536, 100000, 1 << 20}) {
        const SoftmaxParams p{dt, cols, 1000};
        CAPTURE(warp);
        CAPTURE(nlohmann::json(p).dump());
        const auto configs = softmax_configs(p, warp);
        REQUIRE_FALSE(configs.empty());
        std::set<std::string> names;
        for (const auto& c : configs) {
          CAPTURE(nlohmann::json(c).dump());
          CHECK_NOTHROW(validate_softmax_config(p, c, warp));
          CHECK(names.insert(softmax_kernel_name(p, c)).second);  // names tell configs apart
        }
        const SoftmaxConfig h = softmax_heuristic(p, configs);
        CHECK(std::find(configs.begin(), configs.end(), h) != configs.end());
        // Rows over 16 KiB stream in two passes; shorter ones are held in registers.
        const bool long_row = std::int64_t(cols) * kiln::gen::size_of(dt) > 16 * 1024;
        CHECK(h.strategy == (long_row ? SoftmaxStrategy::multi_pass : SoftmaxStrategy::one_pass));
      }
    }
  }
}

TEST_CASE("row counts are looked up by their power-of-two bucket") {
  using kiln::ops::detail::row_bucket;
  CHECK(row_bucket(1) == 1);
  CHECK(row_bucket(2) == 2);
  CHECK(row_bucket(3) == 4);
  CHECK(row_bucket(1000) == 1024);
  CHECK(row_bucket(1024) == 1024);
  CHECK(row_bucket((std::int64_t(1) << 30) + 1) == 2147483647);
  CHECK(row_bucket(2147483647) == 2147483647);
}

TEST_CASE("the vector width is the widest that divides the row, at most 16 bytes") {
  auto width = [](SoftmaxDType dt, int cols) {
    return kiln::ops::detail::softmax_vector_width({dt, cols, 1});
  };
  CHECK(width(SoftmaxDType::f16, 4096) == 8);
  CHECK(width(SoftmaxDType::bf16, 4100) == 4);
  CHECK(width(SoftmaxDType::f32, 4096) == 4);
  CHECK(width(SoftmaxDType::f32, 6) == 2);
  CHECK(width(SoftmaxDType::f16, 1001) == 1);
  CHECK(width(SoftmaxDType::f32, 1) == 1);
}

TEST_CASE("which strategies a problem gets") {
  auto strategies = [](SoftmaxDType dt, int cols) {
    std::set<SoftmaxStrategy> s;
    for (const auto& c : softmax_configs({dt, cols, 64}, 32)) s.insert(c.strategy);
    return s;
  };
  using S = std::set<SoftmaxStrategy>;
  CHECK(strategies(SoftmaxDType::f16, 1) == S{SoftmaxStrategy::one_pass});
  CHECK(strategies(SoftmaxDType::f16, 4096) == S{SoftmaxStrategy::one_pass});
  CHECK(strategies(SoftmaxDType::f16, 8192) ==
        S{SoftmaxStrategy::one_pass, SoftmaxStrategy::multi_pass});
  // 512 threads x 128 bytes or 1024 x 64: the longest rows held in registers.
  CHECK(strategies(SoftmaxDType::f16, 32768).count(SoftmaxStrategy::one_pass) == 1);
  CHECK(strategies(SoftmaxDType::f16, 32776) == S{SoftmaxStrategy::multi_pass});
  CHECK(strategies(SoftmaxDType::f32, 16384).count(SoftmaxStrategy::one_pass) == 1);
  CHECK(strategies(SoftmaxDType::f32, 16388) == S{SoftmaxStrategy::multi_pass});
  CHECK(strategies(SoftmaxDType::f16, 1 << 20) == S{SoftmaxStrategy::multi_pass});

  // Short rows: a sub-warp per row, several rows per block, blocks of 128 and 256 threads.
  bool sub_warp = false;
  for (const auto& c : softmax_configs({SoftmaxDType::f16, 128, 64}, 32)) {
    CHECK(c.threads_per_row * c.vectors_per_thread * c.vector_width >= 128);
    CHECK(c.threads_per_row * c.rows_per_block >= 128);
    sub_warp = sub_warp || (c.threads_per_row < 32 && c.rows_per_block > 1);
  }
  CHECK(sub_warp);
}

TEST_CASE("the heuristic on the benchmark's shapes") {
  auto h = [](SoftmaxDType dt, int cols) {
    const SoftmaxParams p{dt, cols, 1024};
    return softmax_kernel_name(p, softmax_heuristic(p, softmax_configs(p, 32)));
  };
  CHECK(h(SoftmaxDType::f16, 128) == "softmax__f16__cols128__t8v8r16");
  CHECK(h(SoftmaxDType::f16, 1024) == "softmax__f16__cols1024__t64v8r2");
  CHECK(h(SoftmaxDType::f16, 8192) == "softmax__f16__cols8192__t512v8");
  CHECK(h(SoftmaxDType::f16, 1001) == "softmax__f16__cols1001__t128v1");
  CHECK(h(SoftmaxDType::f16, 16384) == "softmax__f16__cols16384__multipass_t512v8i2");
  CHECK(h(SoftmaxDType::f32, 8192) == "softmax__f32__cols8192__multipass_t512v4i2");
  CHECK(h(SoftmaxDType::f32, 16384) == "softmax__f32__cols16384__multipass_t512v4i4");
  CHECK(h(SoftmaxDType::f16, 65536) == "softmax__f16__cols65536__multipass_t1024v8i4");
  CHECK(h(SoftmaxDType::f32, 65536) == "softmax__f32__cols65536__multipass_t1024v4i8");
  CHECK(h(SoftmaxDType::f16, 1 << 20) == "softmax__f16__cols1048576__multipass_t1024v8i8");
}

TEST_CASE("unsupported problems are refused with what is supported") {
  CHECK(error_of({SoftmaxDType::f16, 4096, 10}).empty());
  CHECK(error_of({SoftmaxDType::f16, 1, 0}).empty());
  CHECK(error_of({SoftmaxDType::f32, 1 << 20, 2147483647}).empty());
  const std::string zero = error_of({SoftmaxDType::f16, 0, 10});
  CHECK(has(zero, "cols = 0"));
  CHECK(has(zero, "1 to 1048576"));
  CHECK(has(error_of({SoftmaxDType::f16, (1 << 20) + 1, 10}), "cols = 1048577"));
  const std::string negative = error_of({SoftmaxDType::f32, 10, -1});
  CHECK(has(negative, "rows = -1"));
  CHECK(has(negative, "0 to 2147483647"));
  CHECK(has(error_of({SoftmaxDType::f32, 10, 2147483648LL}), "rows = 2147483648"));
  CHECK(has(error_of({SoftmaxDType(7), 10, 1}), "use f16, bf16 or f32"));
}

TEST_CASE("configs the kernel cannot run are refused, naming the rule") {
  const SoftmaxParams p{SoftmaxDType::f16, 4096, 100};
  auto error_of_config = [&](SoftmaxConfig c, int warp = 32) -> std::string {
    try {
      validate_softmax_config(p, c, warp);
    } catch (const kiln::Error& e) {
      return e.what();
    }
    return "";
  };
  using S = SoftmaxStrategy;
  CHECK(error_of_config({S::one_pass, 256, 8, 1, 2}).empty());
  CHECK(has(error_of_config({S::one_pass, 256, 16, 1, 1}), "vector_width"));
  CHECK(has(error_of_config({S::one_pass, 256, 3, 1, 2}), "vector_width"));
  CHECK(has(error_of_config({S::one_pass, 96, 8, 1, 6}), "threads_per_row"));
  CHECK(has(error_of_config({S::one_pass, 16, 8, 1, 32}), "whole warps of 32"));
  CHECK(has(error_of_config({S::one_pass, 32, 8, 1, 16}, 64), "whole warps of 64"));
  CHECK(has(error_of_config({S::one_pass, 256, 8, 1, 3}), "vectors_per_thread = 2"));
  CHECK(has(error_of_config({S::one_pass, 32, 8, 4, 16}), "at most 128 bytes"));
  CHECK(has(error_of_config({S::one_pass, 64, 8, 16, 8}), "at most 64 bytes"));
  CHECK(has(error_of_config({S::multi_pass, 256, 8, 2, 2}), "one row per block"));
  CHECK(has(error_of_config({S::multi_pass, 256, 8, 1, 0}), "vectors_per_thread"));
}

TEST_CASE("kernel names carry the specialization") {
  using S = SoftmaxStrategy;
  CHECK(softmax_kernel_name({SoftmaxDType::f16, 4096, 5}, {S::one_pass, 256, 8, 1, 2}) ==
        "softmax__f16__cols4096__t256v8");
  CHECK(softmax_kernel_name({SoftmaxDType::bf16, 128, 5}, {S::one_pass, 16, 8, 8, 1}) ==
        "softmax__bf16__cols128__t16v8r8");
  CHECK(softmax_kernel_name({SoftmaxDType::f32, 1 << 20, 5}, {S::multi_pass, 1024, 4, 1, 4}) ==
        "softmax__f32__cols1048576__multipass_t1024v4i4");
  // The row count is not part of the name: one binary serves every row count.
  CHECK(softmax_kernel_name({SoftmaxDType::f16, 4096, 1}, {S::one_pass, 256, 8, 1, 2}) ==
        softmax_kernel_name({SoftmaxDType::f16, 4096, 99999}, {S::one_pass, 256, 8, 1, 2}));
  for (const auto& c : softmax_configs({SoftmaxDType::f16, 8192, 1}, 32)) {
    CHECK(kiln::gen::is_identifier(softmax_kernel_name({SoftmaxDType::f16, 8192, 1}, c)));
  }
}

TEST_CASE("params and configs: JSON, and bytes that hash as the value") {
  const SoftmaxParams p{SoftmaxDType::bf16, 4096, 123};
  CHECK(nlohmann::json(p).dump() == R"({"cols":4096,"dtype":"bf16","rows":123})");
  CHECK(nlohmann::json(p).get<SoftmaxParams>() == p);
  const SoftmaxConfig c{SoftmaxStrategy::multi_pass, 512, 8, 1, 4};
  CHECK(nlohmann::json(c)["strategy"] == "multi_pass");
  CHECK(nlohmann::json(c).get<SoftmaxConfig>() == c);
  static_assert(std::has_unique_object_representations_v<SoftmaxParams>);
  static_assert(std::has_unique_object_representations_v<SoftmaxConfig>);
  static_assert(std::is_trivially_copyable_v<SoftmaxParams>);
}

TEST_CASE("the generated header holds the row tensors, the thread index and the constants") {
  const SoftmaxParams p{SoftmaxDType::f16, 4096, 77};
  const SoftmaxConfig c{SoftmaxStrategy::one_pass, 32, 8, 8, 16};
  const std::string h = kiln::ops::detail::softmax_spec(p, c).header();
  CHECK(has(h, "using In = kiln::Tensor<const kiln::f16, kiln::Extent<COL, 4096>>;"));
  CHECK(has(h, "using Out = kiln::Tensor<kiln::f16, kiln::Extent<COL, 4096>>;"));
  CHECK(has(h, "using COLV = kiln::Fold<COL, 8>;"));
  CHECK(has(h,
            "using Threads = kiln::CompoundIndex<kiln::Extent<SLOT, 8>, kiln::Extent<RANK, 32>>;"));
  CHECK(has(h, "inline constexpr int kCols = 4096;"));
  CHECK(has(h, "inline constexpr int kIters = 16;"));
  CHECK(has(h, "inline constexpr int kMultiPass = 0;"));
  CHECK_FALSE(has(h, "77"));  // rows are a run-time argument
  const std::string f = kiln::ops::detail::softmax_spec({SoftmaxDType::f32, 3, 1},
                                                        {SoftmaxStrategy::multi_pass, 256, 1, 1, 2})
                            .header();
  CHECK(has(f, "using In = kiln::Tensor<const float, kiln::Extent<COL, 3>>;"));
  CHECK(has(f, "inline constexpr int kMultiPass = 1;"));
}

namespace {

// One config of every kind: sub-warp rows, a warp per row, rows over several warps, in
// two passes; ragged rows (no vector fits, threads past the row's end); a row of 1.
struct Case {
  SoftmaxParams p;
  SoftmaxConfig c;
};
std::vector<Case> every_kind() {
  using S = SoftmaxStrategy;
  std::vector<Case> out;
  for (auto dt : all_dtypes) {
    const int vec = dt == SoftmaxDType::f32 ? 4 : 8;
    out.push_back({{dt, 128, 1}, {S::one_pass, 4, vec, 64, 128 / vec / 4}});
    out.push_back({{dt, 1024, 1}, {S::one_pass, 32, vec, 8, 1024 / vec / 32}});
    out.push_back({{dt, 8192, 1}, {S::one_pass, 256, vec, 1, 8192 / vec / 256}});
    out.push_back({{dt, 65536, 1}, {S::multi_pass, 1024, vec, 1, 2}});
  }
  out.push_back({{SoftmaxDType::f16, 1001, 1}, {S::one_pass, 64, 1, 2, 16}});
  out.push_back({{SoftmaxDType::bf16, 12345, 1}, {S::multi_pass, 256, 1, 1, 4}});
  out.push_back({{SoftmaxDType::f32, 1, 1}, {S::one_pass, 1, 1, 128, 1}});
  return out;
}

kiln::jit::Program program_for(const Case& k) {
  kiln::gen::Spec spec = kiln::ops::detail::softmax_spec(k.p, k.c);
  spec.kernel_name(softmax_kernel_name(k.p, k.c));
  kiln::jit::Program program = kiln::jit::program_from_file("softmax.cu");
  program.headers.push_back({"spec.hpp", spec.header()});
  return program;
}

}  // namespace

TEST_CASE("NVRTC: every kind of config compiles for sm_80, sm_86, sm_89 and sm_90") {
  bool first = true;
  for (const auto& k : every_kind()) {
    validate_softmax_config(k.p, k.c, 32);
    const std::string name = softmax_kernel_name(k.p, k.c);
    CAPTURE(name);
    // No local-memory spills among the checks: the row held in registers must stay there.
    // (The kernel cache's in-memory compile is checked on the first kind only.)
    kiln_test::compile_for_nvidia_targets(program_for(k), name, first);
    first = false;
  }
}

#ifdef KILN_TEST_HIP_CLANG
TEST_CASE("gfx942: every kind of config compiles with clang's HIP mode (wavefronts of 64)") {
  kiln_test::TempDir dir("kiln-softmax-hip");
  for (const auto& k : every_kind()) {
    if (k.c.threads_per_row * k.c.rows_per_block % 64 != 0) continue;
    const std::string name = softmax_kernel_name(k.p, k.c);
    CAPTURE(name);
    kiln_test::compile_for_gfx942(program_for(k), "softmax.cu", name, dir);
  }
}
#endif
