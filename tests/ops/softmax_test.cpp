// kiln::ops softmax and its backward without a GPU: the configs each problem gets, the
// heuristic, validation messages, kernel names and the generated header (unit); every kind
// of config compiled by NVRTC for each NVIDIA target (nvrtc), and by clang's HIP mode for
// gfx942 (hip).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../devices.hpp"
#include "../nvrtc_support.hpp"
#include "../support.hpp"
#include "kiln/jit/compiler.hpp"
#include "kiln/jit/sources.hpp"
#include "kiln/ops/detail/softmax_configs.hpp"
#include "kiln/ops/softmax.hpp"
#include "split_test_support.hpp"

using namespace kiln::ops;
using kiln::ops::detail::softmax_backward_configs;
using kiln::ops::detail::softmax_backward_heuristic;
using kiln::ops::detail::softmax_backward_kernel_name;
using kiln::ops::detail::softmax_configs;
using kiln::ops::detail::softmax_forward_heuristic;
using kiln::ops::detail::softmax_heuristic;
using kiln::ops::detail::softmax_kernel_name;
using kiln::ops::detail::validate_softmax;
using kiln::ops::detail::validate_softmax_backward;
using kiln::ops::detail::validate_softmax_backward_config;
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
        const std::int64_t row_bytes = std::int64_t(cols) * kiln::gen::size_of(dt);
        const bool long_row = row_bytes > 16 * 1024;
        CHECK(h.strategy == (long_row ? SoftmaxStrategy::multi_pass : SoftmaxStrategy::one_pass));
        // The forward's own holds rows up to 32 KiB, over 1024 threads past 16 KiB.
        const SoftmaxConfig f = softmax_forward_heuristic(p, configs);
        CHECK(std::find(configs.begin(), configs.end(), f) != configs.end());
        if (long_row && row_bytes <= 32 * 1024) {
          CHECK(f.strategy == SoftmaxStrategy::one_pass);
          CHECK(f.threads_per_row == 1024);
        } else {
          CHECK(f == h);
        }
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

namespace {
// The kernel the forward's heuristic picks for 1024 rows of `cols` among `configs(p)`.
template <class Configs>
std::string forward_choice(SoftmaxDType dt, int cols, const Configs& configs) {
  const SoftmaxParams p{dt, cols, 1024};
  return softmax_kernel_name(p, softmax_forward_heuristic(p, configs(p)));
}
}  // namespace

TEST_CASE("the heuristic on the benchmark's shapes") {
  auto h = [](SoftmaxDType dt, int cols) {
    return forward_choice(dt, cols, [](const SoftmaxParams& p) { return softmax_configs(p, 32); });
  };
  CHECK(h(SoftmaxDType::f16, 128) == "softmax__f16__cols128__t8v8r16");
  CHECK(h(SoftmaxDType::f16, 1024) == "softmax__f16__cols1024__t64v8r2");
  CHECK(h(SoftmaxDType::f16, 8192) == "softmax__f16__cols8192__t512v8");
  CHECK(h(SoftmaxDType::f16, 1001) == "softmax__f16__cols1001__t128v1");
  CHECK(h(SoftmaxDType::f16, 16384) == "softmax__f16__cols16384__t1024v8");
  CHECK(h(SoftmaxDType::f32, 8192) == "softmax__f32__cols8192__t1024v4");
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

namespace {
// What validate_softmax_config says of `c` for `p` (warps of 32), "" when it accepts it.
std::string validate_error(const SoftmaxParams& p, const SoftmaxConfig& c) {
  try {
    kiln::ops::detail::validate_softmax_config(p, c, 32);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

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
  // Clusters: 2, 4 or 8 blocks a row, one row a block, equal slices of whole vectors;
  // one_pass counts its vectors over the slice.
  CHECK(error_of_config({S::one_pass, 256, 8, 1, 1, 2}).empty());
  CHECK(has(error_of_config({S::one_pass, 256, 8, 1, 2, 2}), "vectors_per_thread = 1"));
  CHECK(has(error_of_config({S::one_pass, 128, 8, 1, 1, 3}), "cluster_blocks must be"));
  CHECK(has(error_of_config({S::one_pass, 128, 8, 1, 1, 32}), "cluster_blocks must be"));
  CHECK(has(error_of_config({S::one_pass, 32, 8, 2, 4, 4}), "rows_per_block = 1"));
  CHECK(has(validate_error({SoftmaxDType::f16, 4000, 1}, {S::multi_pass, 256, 8, 1, 2, 8}),
            "500 vectors do not divide by 8"));
}

TEST_CASE("cluster candidates: rows of 32 KiB and more, one pass where the slice fits") {
  using S = SoftmaxStrategy;
  using kiln::ops::detail::softmax_cluster_configs;
  CHECK(softmax_cluster_configs({SoftmaxDType::f16, 8192, 64}, 32).empty());  // 16 KiB rows
  for (auto dt : all_dtypes) {
    for (int cols : {16384, 65536, 100000, 1 << 20}) {
      const SoftmaxParams p{dt, cols, 64};
      for (const auto& c : softmax_cluster_configs(p, 32)) {
        CAPTURE(softmax_kernel_name(p, c));
        CHECK(validate_error(p, c).empty());
        CHECK(c.cluster_blocks > 1);
        CHECK(kiln::gen::is_identifier(softmax_kernel_name(p, c)));
      }
    }
  }
  // 65536 f16 (8192 vectors): every cluster size holds its slice in one pass.
  const SoftmaxParams wide{SoftmaxDType::f16, 65536, 1024};
  const auto configs = softmax_cluster_configs(wide, 32);
  CHECK(std::count(configs.begin(), configs.end(), SoftmaxConfig{S::one_pass, 1024, 8, 1, 2, 4}) ==
        1);
  for (const auto& c : configs) CHECK(c.strategy == S::one_pass);
  CHECK(softmax_kernel_name(wide, {S::one_pass, 1024, 8, 1, 2, 4}) ==
        "softmax__f16__cols65536__t1024v8c4");
  // 2^20 f16: slices of 16384 vectors or more are too long for registers: multi pass.
  for (const auto& c : softmax_cluster_configs({SoftmaxDType::f16, 1 << 20, 64}, 32)) {
    CHECK(c.strategy == S::multi_pass);
  }
  CHECK(softmax_kernel_name({SoftmaxDType::f16, 1 << 20, 64}, {S::multi_pass, 1024, 8, 1, 4, 8}) ==
        "softmax__f16__cols1048576__multipass_t1024v8i4c8");
  // The header says how many blocks share a row; a config without it is a row per block.
  CHECK(has(kiln::ops::detail::softmax_spec(wide, {S::one_pass, 1024, 8, 1, 2, 4}).header(),
            "inline constexpr int kCluster = 4;"));
  CHECK(has(kiln::ops::detail::softmax_spec(wide, {S::multi_pass, 1024, 8, 1, 2}).header(),
            "inline constexpr int kCluster = 1;"));
  // Tuning records from before clusters read as a row per block.
  const auto old = nlohmann::json::parse(
      R"({"strategy":"one_pass","threads_per_row":256,"vector_width":8,"rows_per_block":1,)"
      R"("vectors_per_thread":2})");
  CHECK(old.get<SoftmaxConfig>() == SoftmaxConfig{S::one_pass, 256, 8, 1, 2, 1});
}

TEST_CASE("clusters: offered on sm_90 only, launched a cluster a row") {
  using S = SoftmaxStrategy;
  const auto h200 = kiln_test::h200_properties();
  const auto a100 = kiln_test::a100_properties();
  const auto mi300 = kiln_test::mi300_properties();
  const SoftmaxParams p{SoftmaxDType::bf16, 65536, 1024};
  auto clusters = [&](const kiln::rt::DeviceProperties& d) {
    int n = 0;
    for (const auto& c : kiln::ops::softmax_factory().configs(p, d)) n += c.cluster_blocks > 1;
    return n;
  };
  CHECK(clusters(h200) > 0);
  CHECK(clusters(a100) == 0);
  CHECK(clusters(mi300) == 0);
  const auto lc = kiln::ops::detail::softmax_launch(p, {S::one_pass, 1024, 8, 1, 2, 4});
  CHECK(lc.grid.x == 1024 * 4);
  CHECK(lc.cluster.x == 4);
  CHECK(lc.block.x == 1024);
  const auto plain = kiln::ops::detail::softmax_launch(p, {S::multi_pass, 1024, 8, 1, 2});
  CHECK(plain.grid.x == 1024);
  CHECK(plain.cluster.count() == 1);
}

TEST_CASE("staged clusters: rows no block holds, over the fewest blocks whose slices fit") {
  using S = SoftmaxStrategy;
  using kiln::ops::detail::softmax_shared_bytes;
  using kiln::ops::detail::softmax_staged_cluster_configs;
  constexpr std::int64_t h200 = 227 * 1024;
  // 2 MiB rows of f16: 16 blocks of 128 KiB (8 blocks' 256 KiB do not fit).
  const SoftmaxParams mega{SoftmaxDType::f16, 1 << 20, 64};
  CHECK(softmax_staged_cluster_configs(mega, 32, h200) ==
        std::vector<SoftmaxConfig>{{S::staged, 512, 8, 1, 16, 16}, {S::staged, 1024, 8, 1, 8, 16}});
  CHECK(softmax_kernel_name(mega, {S::staged, 1024, 8, 1, 8, 16}) ==
        "softmax__f16__cols1048576__staged_t1024v8i8c16");
  // 256 KiB rows of f16: pairs of 128 KiB.
  const auto pairs = softmax_staged_cluster_configs({SoftmaxDType::f16, 1 << 17, 64}, 32, h200);
  REQUIRE(!pairs.empty());
  for (const auto& c : pairs) CHECK(c.cluster_blocks == 2);
  // Rows a block holds get none; nor do rows whose sixteenths do not fit (4 MiB of f32).
  CHECK(softmax_staged_cluster_configs({SoftmaxDType::f16, 65536, 64}, 32, h200).empty());
  CHECK(softmax_staged_cluster_configs({SoftmaxDType::f32, 1 << 20, 64}, 32, h200).empty());
  for (auto dt : all_dtypes) {
    for (int cols : {100000, 1 << 17, 1 << 18, 1 << 19, 1 << 20}) {
      const SoftmaxParams p{dt, cols, 64};
      for (const auto& c : softmax_staged_cluster_configs(p, 32, h200)) {
        CAPTURE(softmax_kernel_name(p, c));
        CHECK(validate_error(p, c).empty());
        CHECK(c.cluster_blocks > 1);
        // The block's slice exactly, in its shared memory.
        CHECK(softmax_shared_bytes(p, c) * c.cluster_blocks ==
              std::int64_t(cols) * kiln::gen::size_of(dt));
        CHECK(softmax_shared_bytes(p, c) <= 192 * 1024);
      }
    }
  }
  // The op's candidates: on an H200, not on an A100 (no clusters); launched a cluster a row.
  const auto in = [](const std::vector<SoftmaxConfig>& cs, const SoftmaxConfig& c) {
    return std::count(cs.begin(), cs.end(), c) == 1;
  };
  const SoftmaxConfig c16{S::staged, 1024, 8, 1, 8, 16};
  CHECK(in(kiln::ops::softmax_factory().configs(mega, kiln_test::h200_properties()), c16));
  CHECK_FALSE(in(kiln::ops::softmax_factory().configs(mega, kiln_test::a100_properties()), c16));
  const auto lc = kiln::ops::detail::softmax_launch(mega, c16);
  CHECK(lc.grid.x == 64 * 16);
  CHECK(lc.cluster.x == 16);
  CHECK(lc.shared_bytes == 128 * 1024);
}

TEST_CASE("staged rows: offered for rows of 32 KiB to what a block's shared memory holds") {
  using S = SoftmaxStrategy;
  using kiln::ops::detail::softmax_shared_bytes;
  using kiln::ops::detail::softmax_staged_configs;
  constexpr std::int64_t h200 = 227 * 1024, ada = 99 * 1024;
  const SoftmaxParams f16_128k{SoftmaxDType::f16, 65536, 1024};
  CHECK(softmax_staged_configs(f16_128k, 32, h200) ==
        std::vector<SoftmaxConfig>{{S::staged, 512, 8, 1, 16}, {S::staged, 1024, 8, 1, 8}});
  CHECK(softmax_staged_configs({SoftmaxDType::f16, 16384, 8}, 32, ada).size() == 2);  // 32 KiB
  CHECK(softmax_staged_configs({SoftmaxDType::f16, 8192, 8}, 32, h200).empty());      // 16 KiB
  CHECK(softmax_staged_configs({SoftmaxDType::f16, 65535, 8}, 32, h200).empty());     // 2-byte
  // Rows over 192 KiB: as many vectors a thread staged as fit, the rest held in registers
  // (64 bytes a thread of 1024, 128 of 512), rows of up to 256 KiB.
  auto held = [](int threads, int vec, int vectors, int in_registers) {
    SoftmaxConfig c{S::staged, threads, vec, 1, vectors};
    c.staged_held = in_registers;
    return c;
  };
  CHECK(softmax_staged_configs({SoftmaxDType::f32, 65536, 8}, 32, h200) ==
        std::vector<SoftmaxConfig>{held(512, 4, 32, 8), held(1024, 4, 16, 4)});  // 256 KiB
  CHECK(softmax_staged_configs({SoftmaxDType::bf16, 131072, 8}, 32, h200) ==
        std::vector<SoftmaxConfig>{held(512, 8, 32, 8), held(1024, 8, 16, 4)});
  CHECK(softmax_staged_configs({SoftmaxDType::f32, 57344, 8}, 32, h200) ==
        std::vector<SoftmaxConfig>{held(512, 4, 28, 4), held(1024, 4, 14, 2)});    // 224 KiB
  CHECK(softmax_staged_configs({SoftmaxDType::f32, 73728, 8}, 32, h200).empty());  // 288 KiB
  CHECK(softmax_staged_configs({SoftmaxDType::f32, 65536, 8}, 32, ada).empty());
  // 128 KiB where a block has 99 KiB: 88 KiB staged by 512 threads (11 vectors a thread)
  // and 40 KiB held (5), or 80 KiB by 1024 (5) and 48 KiB held (3).
  CHECK(softmax_staged_configs(f16_128k, 32, ada) ==
        std::vector<SoftmaxConfig>{held(512, 8, 16, 5), held(1024, 8, 8, 3)});
  // ... which the untuned heuristic leaves to tuning there (timed on an H100 alone): rows
  // of at most 192 KiB keep their choice (split), longer ones take them.
  {
    std::vector<SoftmaxConfig> ada_configs = softmax_configs(f16_128k, 32);
    for (const SoftmaxConfig& c : softmax_staged_configs(f16_128k, 32, ada))
      ada_configs.push_back(c);
    for (const SoftmaxConfig& c : kiln::ops::detail::softmax_split_configs(f16_128k, 32, 128)) {
      ada_configs.push_back(c);
    }
    CHECK(softmax_forward_heuristic(f16_128k, ada_configs).strategy == S::split);
  }
  for (auto dt : all_dtypes) {
    for (int cols : {16384, 32768, 49152, 57344, 65536, 100000, 131072}) {
      const SoftmaxParams p{dt, cols, 64};
      for (const auto& c : softmax_staged_configs(p, 32, h200)) {
        CAPTURE(softmax_kernel_name(p, c));
        CHECK(validate_error(p, c).empty());
        // The row exactly, in the block's shared memory and, past 192 KiB, the registers.
        const std::int64_t in_registers = std::int64_t(c.threads_per_row) * c.staged_held *
                                          c.vector_width * kiln::gen::size_of(dt);
        CHECK(softmax_shared_bytes(p, c) + in_registers ==
              std::int64_t(cols) * kiln::gen::size_of(dt));
        CHECK(softmax_shared_bytes(p, c) <= 192 * 1024);
        CHECK((c.staged_held > 0) == (std::int64_t(cols) * kiln::gen::size_of(dt) > 192 * 1024));
      }
    }
  }
  // The op's candidates on an H200 include them; its launch carries the row's bytes.
  const kiln::rt::DeviceProperties d = kiln_test::h200_properties();
  const auto configs = kiln::ops::softmax_factory().configs(f16_128k, d);
  const SoftmaxConfig t1024{S::staged, 1024, 8, 1, 8};
  CHECK(std::count(configs.begin(), configs.end(), t1024) == 1);
  // Not on AMD GPUs (not yet run on one).
  const kiln::rt::DeviceProperties mi300 = kiln_test::mi300_properties();
  for (const auto& c :
       kiln::ops::softmax_factory().configs({SoftmaxDType::f16, 16384, 1024}, mi300)) {
    CHECK(c.strategy != S::staged);
  }
  const auto lc = kiln::ops::detail::softmax_launch(f16_128k, t1024);
  CHECK(lc.shared_bytes == 131072);
  CHECK(lc.grid.x == 1024);
  CHECK(lc.block.x == 1024);
  CHECK(softmax_kernel_name(f16_128k, t1024) == "softmax__f16__cols65536__staged_t1024v8i8");
  const std::string h = kiln::ops::detail::softmax_spec(f16_128k, t1024).header();
  CHECK(has(h, "#define SOFTMAX_STAGED 1"));
  CHECK(has(h, "inline constexpr int kMinBlocks = 1;"));  // 128 KiB: one block an SM
  CHECK(
      has(kiln::ops::detail::softmax_spec({SoftmaxDType::f16, 16384, 8}, {S::staged, 512, 8, 1, 4})
              .header(),
          "inline constexpr int kMinBlocks = 4;"));  // 32 KiB: 2048 threads
  CHECK_FALSE(
      has(kiln::ops::detail::softmax_spec(f16_128k, {S::multi_pass, 1024, 8, 1, 4}).header(),
          "SOFTMAX_STAGED"));
  // The forward's heuristic stages rows of 32 KiB and more (512 threads in 16-bit rows,
  // 1024 in f32) that fit.
  auto heuristic = [&](SoftmaxDType dt, int cols) {
    return forward_choice(dt, cols, [&](const SoftmaxParams& p) {
      return kiln::ops::softmax_factory().configs(p, d);
    });
  };
  CHECK(heuristic(SoftmaxDType::f16, 65536) == "softmax__f16__cols65536__staged_t512v8i16");
  CHECK(heuristic(SoftmaxDType::f16, 32768) == "softmax__f16__cols32768__staged_t512v8i8");
  CHECK(heuristic(SoftmaxDType::f16, 16384) == "softmax__f16__cols16384__staged_t512v8i4");
  CHECK(heuristic(SoftmaxDType::bf16, 65536) == "softmax__bf16__cols65536__staged_t512v8i16");
  CHECK(heuristic(SoftmaxDType::bf16, 16384) == "softmax__bf16__cols16384__staged_t512v8i4");
  CHECK(heuristic(SoftmaxDType::f32, 16384) == "softmax__f32__cols16384__staged_t1024v4i4");
  CHECK(heuristic(SoftmaxDType::f32, 8192) == "softmax__f32__cols8192__staged_t1024v4i2");
  // Rows over 192 KiB hold their last vectors in registers; rows no staged block holds
  // are split across the grid (NVIDIA, sm_80 and later).
  CHECK(heuristic(SoftmaxDType::f32, 65536) == "softmax__f32__cols65536__staged_t1024v4i16h4");
  CHECK(heuristic(SoftmaxDType::bf16, 131072) == "softmax__bf16__cols131072__staged_t512v8i32h8");
  CHECK(heuristic(SoftmaxDType::f32, 73728) == "softmax__f32__cols73728__split_t256v4i8b2");
  const SoftmaxParams f32_256k{SoftmaxDType::f32, 65536, 1024};
  const SoftmaxConfig h4 = held(1024, 4, 16, 4);
  const auto f32_configs = kiln::ops::softmax_factory().configs(f32_256k, d);
  CHECK(std::count(f32_configs.begin(), f32_configs.end(), h4) == 1);
  CHECK(softmax_kernel_name(f32_256k, h4) == "softmax__f32__cols65536__staged_t1024v4i16h4");
  CHECK(kiln::ops::detail::softmax_launch(f32_256k, h4).shared_bytes == 196608);
  const std::string h4_header = kiln::ops::detail::softmax_spec(f32_256k, h4).header();
  CHECK(has(h4_header, "inline constexpr int kStagedHeld = 4;"));
  CHECK(has(h4_header, "inline constexpr int kMinBlocks = 1;"));
  CHECK(has(h, "inline constexpr int kStagedHeld = 0;"));
  CHECK(heuristic(SoftmaxDType::f16, 1 << 20) == "softmax__f16__cols1048576__split_t256v8i8b2");
  CHECK(heuristic(SoftmaxDType::f16, 8192) == "softmax__f16__cols8192__t512v8");
}

TEST_CASE("split rows: configs, their rules, the heuristic, names, header and launch") {
  using S = SoftmaxStrategy;
  using kiln::ops::detail::softmax_split_configs;
  using kiln::ops::detail::split_slices;
  const int sms = 132;
  for (auto dt : all_dtypes) {
    const int vec = dt == SoftmaxDType::f32 ? 4 : 8;
    for (int cols : kiln_test::split_test_cols) {
      const SoftmaxParams p{dt, cols, 64};
      CAPTURE(nlohmann::json(p).dump());
      const auto split = softmax_split_configs(p, 32, sms);
      const bool long_row = std::int64_t(cols) * kiln::gen::size_of(dt) >= 64 * 1024;
      CHECK(split.empty() == !long_row);
      std::set<std::string> names;
      for (const SoftmaxConfig& c : split) {
        CAPTURE(nlohmann::json(c).dump());
        CHECK_NOTHROW(validate_softmax_config(p, c, 32));
        kiln_test::check_split_config(c, vec, sms, split_slices(p.cols, c),
                                      kiln::ops::detail::softmax_launch(p, c));
        CHECK(split_slices(p.cols, c) <= 8 * 32);  // one slot word a slice, 8 a lane
        CHECK(names.insert(softmax_kernel_name(p, c)).second);
        CHECK(kiln::ops::detail::softmax_split_words(p, c) ==
              std::size_t(64 * split_slices(p.cols, c)));
        // The forward's ringed ones: a ring of 3 to 5 slices in shared memory, within 228
        // KiB an SM. The backward's rules take those (ringed or not) whose SM holds at most
        // 2048 vectors of a slice.
        const std::int64_t sm_vectors =
            std::int64_t(c.threads_per_row) * c.vectors_per_thread * c.blocks_per_sm;
        const auto lc = kiln::ops::detail::softmax_launch(p, c);
        CHECK(lc.shared_bytes ==
              unsigned(16 * c.split_ring * c.threads_per_row * c.vectors_per_thread));
        if (c.split_ring > 0) {
          CHECK(c.split_ring >= 3);
          CHECK(c.split_ring <= 5);
          CHECK(c.blocks_per_sm * (std::int64_t(lc.shared_bytes) + 2048) <= 228 * 1024);
          const std::string name = softmax_kernel_name(p, c);
          CHECK(name.substr(name.size() - 2) == "q" + std::to_string(c.split_ring));
        }
        if (sm_vectors <= 2048) {
          CHECK_NOTHROW(validate_softmax_backward_config(p, c, 32));
        } else {
          CHECK_THROWS_WITH_AS(validate_softmax_backward_config(p, c, 32),
                               doctest::Contains("at most 2048 vectors of a slice"), kiln::Error);
        }
      }
      CHECK(softmax_split_configs(p, 64, sms).empty());  // not on 64-lane wavefronts
      // What the factory offers: split configs on NVIDIA GPUs of sm_80 and later only;
      // untuned, split where no staged candidate holds the row.
      const auto h200 = kiln::ops::softmax_factory().configs(p, kiln_test::h200_properties());
      const auto mi300 = kiln::ops::softmax_factory().configs(p, kiln_test::mi300_properties());
      auto count_split = [](const std::vector<SoftmaxConfig>& v) {
        return std::count_if(v.begin(), v.end(),
                             [](const SoftmaxConfig& c) { return c.strategy == S::split; });
      };
      CHECK(count_split(h200) == std::ptrdiff_t(split.size()));
      CHECK(count_split(mi300) == 0);
      const bool staged = std::any_of(h200.begin(), h200.end(), [](const SoftmaxConfig& c) {
        return c.strategy == S::staged && c.cluster_blocks == 1;
      });
      kiln_test::check_split_heuristic(softmax_forward_heuristic(p, h200), long_row && !staged);
    }
  }
  // 16-bit rows of 1M: 128 slices of 8192 elements (128 threads of 8 vectors).
  const SoftmaxParams p{SoftmaxDType::f16, 1 << 20, 64};
  const SoftmaxConfig c{S::split, 128, 8, 1, 8, 1, 4, 528};
  CHECK(split_slices(p.cols, c) == 128);
  CHECK(softmax_kernel_name(p, c) == "softmax__f16__cols1048576__split_t128v8i8b4");
  const std::string header = kiln::ops::detail::softmax_spec(p, c).header();
  CHECK(has(header, "SOFTMAX_SPLIT"));
  CHECK(has(header, "kSplitMinBlocks = 4"));
  CHECK_FALSE(has(kiln::ops::detail::softmax_spec(p, {S::multi_pass, 1024, 8, 1, 8}).header(),
                  "SOFTMAX_SPLIT"));
  // JSON: the new fields round-trip; records without them read as 0.
  CHECK(nlohmann::json(c).get<SoftmaxConfig>() == c);
  nlohmann::json old = nlohmann::json(SoftmaxConfig{S::multi_pass, 1024, 8, 1, 8});
  old.erase("blocks_per_sm");
  old.erase("grid_blocks");
  CHECK(old.get<SoftmaxConfig>().grid_blocks == 0);
  // What the kernel cannot run is refused, naming the rule.
  kiln_test::check_split_rules<SoftmaxConfig>([&](const SoftmaxConfig& bad, const char* rule) {
    const std::string error = validate_error(p, bad);
    CAPTURE(error);
    CHECK(has(error, rule));
  });
  CHECK(has(validate_error({SoftmaxDType::f16, (1 << 20) - 4, 64}, c), "divides cols"));
  CHECK(has(validate_error({SoftmaxDType::f32, 1 << 20, 64}, {S::split, 64, 4, 1, 8, 1, 8, 1056}),
            "8 slot words a lane"));
}

TEST_CASE("staged configs the kernel cannot run are refused, naming the rule") {
  using S = SoftmaxStrategy;
  const SoftmaxParams p{SoftmaxDType::f16, 65536, 64};
  CHECK(has(validate_error(p, {S::staged, 512, 8, 2, 8}), "one row per block"));
  CHECK(has(validate_error(p, {S::staged, 512, 8, 1, 8}), "the row's (or its cluster's slice)"));
  // Odd f16 rows move 2-byte vectors, which cp.async does not copy.
  CHECK(has(validate_error({SoftmaxDType::f16, 65535, 64}, {S::staged, 1024, 1, 1, 64}),
            "vectors of 4, 8 or 16 bytes"));
  CHECK(has(validate_error({SoftmaxDType::f32, 65536, 64}, {S::staged, 1024, 4, 1, 16}),
            "at most 196608 bytes"));
  CHECK(validate_error({SoftmaxDType::f32, 65536, 64}, {S::staged, 1024, 4, 1, 8, 2}).empty());
  // Vectors held in registers (staged_held): staged configs' alone, a block a row, fewer
  // than a thread's vectors, within the registers' budget.
  auto held = [](SoftmaxConfig c, int in_registers) {
    c.staged_held = in_registers;
    return c;
  };
  const SoftmaxParams f32_256k{SoftmaxDType::f32, 65536, 64};
  CHECK(validate_error(f32_256k, held({S::staged, 1024, 4, 1, 16}, 4)).empty());
  CHECK(validate_error(f32_256k, held({S::staged, 512, 4, 1, 32}, 8)).empty());
  CHECK(has(validate_error(f32_256k, held({S::multi_pass, 1024, 4, 1, 4}, 1)),
            "staged_held is staged configs'"));
  CHECK(has(validate_error(f32_256k, held({S::staged, 1024, 4, 1, 8, 2}, 1)),
            "a block a row (cluster_blocks 1)"));
  CHECK(has(validate_error({SoftmaxDType::f32, 4096, 64}, held({S::staged, 1024, 4, 1, 1}, 1)),
            "staged_held is 0 to vectors_per_thread - 1 (0)"));
  CHECK(has(validate_error(f32_256k, held({S::staged, 1024, 4, 1, 16}, 5)),
            "at most 64 bytes of the row in registers in blocks of 1024 threads (80 here)"));
  CHECK(has(validate_error(f32_256k, held({S::staged, 1024, 4, 1, 16}, 3)),
            "or hold vectors in registers (staged_held)"));
  CHECK(has(validate_error(f32_256k, held({S::staged, 1024, 4, 1, 16}, -1)),
            "staged_held is 0 to vectors_per_thread - 1 (15)"));
  // The backward has no staged rows.
  const std::string backward = [&] {
    try {
      validate_softmax_backward_config(p, {S::staged, 1024, 8, 1, 8}, 32);
    } catch (const kiln::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  CHECK(has(backward, "staged rows are the forward's"));
  // Records name the strategy.
  CHECK(nlohmann::json(SoftmaxConfig{S::staged, 1024, 8, 1, 8}).dump().find("\"staged\"") !=
        std::string::npos);
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

// ---- The backward (dx = y * (dy - sum(dy * y))): the forward's configs that hold at most
// 32 elements of each of y and dy a thread ----

namespace {

std::string backward_error_of(const SoftmaxParams& p) {
  try {
    validate_softmax_backward(p);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

std::string backward_config_error_of(const SoftmaxParams& p, const SoftmaxConfig& c,
                                     int warp = 32) {
  try {
    validate_softmax_backward_config(p, c, warp);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

/// The elements of each of y and dy a backward thread holds at once.
int held(const SoftmaxConfig& c) {
  return c.vectors_per_thread * c.vector_width;
}

}  // namespace

TEST_CASE(
    "backward: every candidate is a forward config that holds at most 32 elements of "
    "each of y and dy, and the heuristic picks one of them") {
  for (int warp : {32, 64}) {
    for (auto dt : all_dtypes) {
      for (int cols : {1,    2,    3,    7,     100,   128,   1000,  1001,  1024,   4096,
                       4100, 8191, 8192, 12345, 16384, 32768, 32776, 65536, 100000, 1 << 20}) {
        const SoftmaxParams p{dt, cols, 1000};
        CAPTURE(warp);
        CAPTURE(nlohmann::json(p).dump());
        const auto configs = softmax_backward_configs(p, warp);
        const auto forward = softmax_configs(p, warp);
        REQUIRE_FALSE(configs.empty());
        std::set<std::string> names;
        const int esize = kiln::gen::size_of(dt);
        for (const auto& c : configs) {
          CAPTURE(nlohmann::json(c).dump());
          CHECK_NOTHROW(validate_softmax_backward_config(p, c, warp));
          CHECK(std::find(forward.begin(), forward.end(), c) != forward.end());
          CHECK(held(c) <= 32);
          const int block = c.threads_per_row * c.rows_per_block;
          CHECK(held(c) * esize <= (block >= 1024 ? 64 : 128));
          const std::string name = softmax_backward_kernel_name(p, c);
          CHECK(names.insert(name).second);
          CHECK(name != softmax_kernel_name(p, c));
          CHECK(kiln::gen::is_identifier(name));
        }
        // Every forward config left out is one that holds too much.
        for (const auto& c : forward) {
          if (std::find(configs.begin(), configs.end(), c) == configs.end()) {
            CAPTURE(nlohmann::json(c).dump());
            CHECK(has(backward_config_error_of(p, c, warp), "bytes of each of y and dy"));
          }
        }
        const SoftmaxConfig h = softmax_backward_heuristic(p, configs);
        CHECK(std::find(configs.begin(), configs.end(), h) != configs.end());
        const bool long_row = std::int64_t(cols) * esize > 16 * 1024;
        CHECK(h.strategy == (long_row ? SoftmaxStrategy::multi_pass : SoftmaxStrategy::one_pass));
      }
    }
  }
}

TEST_CASE("backward: which strategies a problem gets, and the one-pass configs it drops") {
  auto strategies = [](SoftmaxDType dt, int cols) {
    std::set<SoftmaxStrategy> s;
    for (const auto& c : softmax_backward_configs({dt, cols, 64}, 32)) s.insert(c.strategy);
    return s;
  };
  using S = std::set<SoftmaxStrategy>;
  CHECK(strategies(SoftmaxDType::f16, 1) == S{SoftmaxStrategy::one_pass});
  CHECK(strategies(SoftmaxDType::f16, 4096) == S{SoftmaxStrategy::one_pass});
  // 1024 threads x 32 f16 or 16 f32 of each: the longest rows held in registers.
  CHECK(strategies(SoftmaxDType::f16, 32768).count(SoftmaxStrategy::one_pass) == 1);
  CHECK(strategies(SoftmaxDType::f16, 32776) == S{SoftmaxStrategy::multi_pass});
  CHECK(strategies(SoftmaxDType::f32, 16384).count(SoftmaxStrategy::one_pass) == 1);
  CHECK(strategies(SoftmaxDType::f32, 16388) == S{SoftmaxStrategy::multi_pass});

  using St = SoftmaxStrategy;
  auto in = [](const std::vector<SoftmaxConfig>& v, const SoftmaxConfig& c) {
    return std::find(v.begin(), v.end(), c) != v.end();
  };
  // f16 16384: 256 threads hold 64 elements (the forward's), 512 hold 32 (the backward's too).
  const SoftmaxParams h{SoftmaxDType::f16, 16384, 64};
  CHECK(in(softmax_configs(h, 32), {St::one_pass, 256, 8, 1, 8}));
  CHECK_FALSE(in(softmax_backward_configs(h, 32), {St::one_pass, 256, 8, 1, 8}));
  CHECK(in(softmax_backward_configs(h, 32), {St::one_pass, 512, 8, 1, 4}));
  // Multi pass: 8 vectors of 8 f16 a step are 64 elements; 4 remain.
  CHECK(in(softmax_configs(h, 32), {St::multi_pass, 512, 8, 1, 8}));
  CHECK_FALSE(in(softmax_backward_configs(h, 32), {St::multi_pass, 512, 8, 1, 8}));
  CHECK(in(softmax_backward_configs(h, 32), {St::multi_pass, 1024, 8, 1, 4}));
  // f32: 32 elements (128 bytes) of each below 1024 threads, 16 (64 bytes) at 1024.
  const SoftmaxParams f{SoftmaxDType::f32, 16384, 64};
  CHECK(in(softmax_backward_configs(f, 32), {St::one_pass, 512, 4, 1, 8}));
  CHECK(in(softmax_backward_configs(f, 32), {St::one_pass, 1024, 4, 1, 4}));
  CHECK(in(softmax_backward_configs(f, 32), {St::multi_pass, 512, 4, 1, 8}));
  CHECK_FALSE(in(softmax_backward_configs(f, 32), {St::multi_pass, 1024, 4, 1, 8}));
}

TEST_CASE("backward: the heuristic is the forward's, with fewer vectors a step where needed") {
  auto h = [](SoftmaxDType dt, int cols) {
    const SoftmaxParams p{dt, cols, 1024};
    return softmax_backward_kernel_name(
        p, softmax_backward_heuristic(p, softmax_backward_configs(p, 32)));
  };
  CHECK(h(SoftmaxDType::f16, 128) == "softmax_backward__f16__cols128__t8v8r16");
  CHECK(h(SoftmaxDType::f16, 8192) == "softmax_backward__f16__cols8192__t512v8");
  CHECK(h(SoftmaxDType::f16, 1001) == "softmax_backward__f16__cols1001__t128v1");
  CHECK(h(SoftmaxDType::f16, 65536) == "softmax_backward__f16__cols65536__multipass_t1024v8i4");
  // The forward's 8 vectors a step (64 f16, or 128 bytes of f32 at 1024 threads) halved.
  CHECK(h(SoftmaxDType::f16, 1 << 20) == "softmax_backward__f16__cols1048576__multipass_t1024v8i4");
  CHECK(h(SoftmaxDType::f32, 65536) == "softmax_backward__f32__cols65536__multipass_t1024v4i4");
  CHECK(h(SoftmaxDType::f32, 16384) == "softmax_backward__f32__cols16384__multipass_t512v4i4");
}

TEST_CASE("backward: unsupported problems and configs are refused, naming the backward") {
  CHECK(backward_error_of({SoftmaxDType::f16, 4096, 10}).empty());
  CHECK(backward_error_of({SoftmaxDType::f32, 1 << 20, 2147483647}).empty());
  const std::string zero = backward_error_of({SoftmaxDType::f16, 0, 10});
  CHECK(has(zero, "kiln: softmax_backward: cols = 0"));
  CHECK(has(zero, "1 to 1048576"));
  CHECK(has(backward_error_of({SoftmaxDType::bf16, (1 << 20) + 1, 10}), "cols = 1048577"));
  CHECK(has(backward_error_of({SoftmaxDType::f32, 10, -1}), "kiln: softmax_backward: rows = -1"));
  CHECK(has(backward_error_of({SoftmaxDType::f32, 10, 2147483648LL}), "0 to 2147483647"));
  const std::string dtype = backward_error_of({SoftmaxDType(7), 10, 1});
  CHECK(has(dtype, "kiln: softmax_backward: dtype"));
  CHECK(has(dtype, "use f16, bf16 or f32"));
  // The forward's messages are unchanged.
  CHECK(has(error_of({SoftmaxDType::f16, 0, 10}), "kiln: softmax: cols = 0"));

  const SoftmaxParams p{SoftmaxDType::f16, 4096, 100};
  using S = SoftmaxStrategy;
  CHECK(backward_config_error_of(p, {S::one_pass, 256, 8, 1, 2}).empty());
  const std::string vec = backward_config_error_of(p, {S::one_pass, 256, 16, 1, 1});
  CHECK(has(vec, "kiln: softmax_backward config {"));
  CHECK(has(vec, "}: vector_width must be"));
  CHECK(has(backward_config_error_of(p, {S::one_pass, 32, 8, 1, 16}, 64), "whole warps of 64"));
  CHECK(has(backward_config_error_of(p, {S::one_pass, 256, 8, 1, 3}), "vectors_per_thread = 2"));
  CHECK(has(backward_config_error_of(p, {S::multi_pass, 256, 8, 2, 2}), "one row per block"));
  // Within the forward's 128 bytes, over the backward's 32 elements of each of y and dy.
  const std::string big = backward_config_error_of(p, {S::one_pass, 64, 8, 2, 8});
  CHECK(has(big, "at most 64 bytes of each of y and dy"));
  CHECK(has(big, "128 bytes here"));
  CHECK(has(backward_config_error_of(p, {S::multi_pass, 256, 8, 1, 8}), "at most 32 elements"));
  CHECK(has(backward_config_error_of({SoftmaxDType::f32, 65536, 1}, {S::multi_pass, 1024, 4, 1, 8}),
            "at most 64 bytes"));
  CHECK(backward_config_error_of({SoftmaxDType::f32, 65536, 1}, {S::multi_pass, 512, 4, 1, 8})
            .empty());
  // A cluster config, valid for the forward, is not the backward's (its kernel would take
  // a slice of each row for the whole row).
  const SoftmaxParams wide{SoftmaxDType::f16, 65536, 8};
  const SoftmaxConfig clustered{S::one_pass, 1024, 8, 1, 4, 2};
  CHECK_NOTHROW(validate_softmax_config(wide, clustered, 32));
  CHECK(has(backward_config_error_of(wide, clustered), "cluster_blocks = 1"));
}

TEST_CASE("backward: kernel names and the generated header") {
  using S = SoftmaxStrategy;
  CHECK(softmax_backward_kernel_name({SoftmaxDType::f16, 4096, 5}, {S::one_pass, 256, 8, 1, 2}) ==
        "softmax_backward__f16__cols4096__t256v8");
  CHECK(softmax_backward_kernel_name({SoftmaxDType::bf16, 128, 5}, {S::one_pass, 16, 8, 8, 1}) ==
        "softmax_backward__bf16__cols128__t16v8r8");
  CHECK(softmax_backward_kernel_name({SoftmaxDType::f32, 1 << 20, 5},
                                     {S::multi_pass, 1024, 4, 1, 4}) ==
        "softmax_backward__f32__cols1048576__multipass_t1024v4i4");

  const SoftmaxParams p{SoftmaxDType::bf16, 4096, 77};
  const SoftmaxConfig c{S::one_pass, 32, 8, 8, 16};
  const std::string h = kiln::ops::detail::softmax_backward_spec(p, c).header();
  CHECK(has(h, "#define SOFTMAX_BACKWARD 1"));
  CHECK(has(h, "using In = kiln::Tensor<const kiln::bf16, kiln::Extent<COL, 4096>>;"));
  CHECK(has(h, "using Out = kiln::Tensor<kiln::bf16, kiln::Extent<COL, 4096>>;"));
  CHECK(has(h, "inline constexpr int kIters = 16;"));
  CHECK(has(h, "inline constexpr int kMultiPass = 0;"));
  CHECK_FALSE(has(h, "77"));  // rows are a run-time argument
  // The forward's header is the forward's: no backward macro.
  CHECK_FALSE(has(kiln::ops::detail::softmax_spec(p, c).header(), "SOFTMAX_BACKWARD"));
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
  // Clusters (sm_90; on older targets their cluster calls compile to a trap): one pass
  // over a quarter of a row, multi pass over an eighth.
  out.push_back({{SoftmaxDType::f16, 65536, 1}, {S::one_pass, 1024, 8, 1, 2, 4}});
  out.push_back({{SoftmaxDType::f32, 1 << 20, 1}, {S::multi_pass, 1024, 4, 1, 4, 8}});
  // Rows staged in shared memory: 128 KiB of f16 by 1024 threads, 32 KiB of f32 by 512,
  // and a cluster of 4 blocks each with 64 KiB of a 256 KiB f32 row.
  out.push_back({{SoftmaxDType::f16, 65536, 1}, {S::staged, 1024, 8, 1, 8}});
  out.push_back({{SoftmaxDType::f32, 8192, 1}, {S::staged, 512, 4, 1, 4}});
  out.push_back({{SoftmaxDType::f32, 65536, 1}, {S::staged, 1024, 4, 1, 4, 4}});
  // Rows of 256 KiB, 192 KiB staged and the rest held in registers: f32 by 1024 threads (4
  // vectors a thread), bf16 by 512 (8).
  SoftmaxConfig f32_held{S::staged, 1024, 4, 1, 16}, bf16_held{S::staged, 512, 8, 1, 32};
  f32_held.staged_held = 4;
  bf16_held.staged_held = 8;
  out.push_back({{SoftmaxDType::f32, 65536, 1}, f32_held});
  out.push_back({{SoftmaxDType::bf16, 131072, 1}, bf16_held});
  // A 2 MiB f16 row over a cluster of 16 blocks (not portable), 128 KiB each.
  out.push_back({{SoftmaxDType::f16, 1 << 20, 1}, {S::staged, 1024, 8, 1, 8, 16}});
  // Rows split across a persistent grid (NVIDIA): every split shape in each dtype over
  // rows of 1M (f32: the shapes of 256 slices and fewer) with no ring or a ring of 3, a
  // ring of 4 and one of 5 in bf16 (whose code differs from the ring of 3's only in how far
  // ahead it copies), and ragged slices (100000).
  for (auto dt : all_dtypes) {
    for (const SoftmaxConfig& c :
         kiln::ops::detail::softmax_split_configs({dt, 1 << 20, 1}, 32, 132)) {
      if (c.split_ring <= 3) out.push_back({{dt, 1 << 20, 1}, c});
    }
  }
  out.push_back({{SoftmaxDType::bf16, 1 << 20, 1}, {S::split, 256, 8, 1, 4, 1, 1, 132, 4}});
  out.push_back({{SoftmaxDType::bf16, 1 << 20, 1}, {S::split, 256, 8, 1, 8, 1, 1, 132, 5}});
  out.push_back({{SoftmaxDType::f32, 100000, 1}, {S::split, 64, 4, 1, 16, 1, 4, 528}});
  out.push_back({{SoftmaxDType::bf16, 100000, 1}, {S::split, 256, 8, 1, 8, 1, 2, 264}});
  return out;
}

kiln::jit::Program program_for(const Case& k) {
  kiln::gen::Spec spec = kiln::ops::detail::softmax_spec(k.p, k.c);
  spec.kernel_name(softmax_kernel_name(k.p, k.c));
  kiln::jit::Program program = kiln::jit::program_from_file("softmax.cu");
  program.headers.push_back({"spec.hpp", spec.header()});
  return program;
}

// The backward's kinds: the most a thread holds of y and dy in one pass (32 elements at
// 512 and 1024 threads, 128 bytes of f32) and in a multi-pass step, a kind per dtype and
// strategy, and the forward's shapes (sub-warp rows, ragged rows, a row of 1). Every
// candidate of 33 problems (3 dtypes, 11 row lengths up to 100003) was compiled once for
// sm_80 and sm_90 with no local memory; the test keeps to these, for time.
std::vector<Case> every_backward_kind() {
  using S = SoftmaxStrategy;
  const SoftmaxDType f16 = SoftmaxDType::f16, bf16 = SoftmaxDType::bf16, f32 = SoftmaxDType::f32;
  return {
      {{f16, 32768, 1}, {S::one_pass, 1024, 8, 1, 4}},  // 32 of each at 1024 threads
      {{f16, 128, 1}, {S::one_pass, 4, 8, 64, 4}},      // sub-warp rows
      {{f16, 65536, 1}, {S::multi_pass, 1024, 8, 1, 4}},
      {{bf16, 16384, 1}, {S::one_pass, 512, 8, 1, 4}},    // 32 of each at 512 threads
      {{bf16, 12345, 1}, {S::multi_pass, 256, 1, 1, 8}},  // ragged: scalar loads
      {{f32, 16384, 1}, {S::one_pass, 512, 4, 1, 8}},     // 128 bytes of each
      {{f32, 65536, 1}, {S::multi_pass, 512, 4, 1, 8}},   // 128 bytes of each a step
      {{f32, 1, 1}, {S::one_pass, 1, 1, 128, 1}},
      {{f16, 1001, 1}, {S::one_pass, 64, 1, 2, 16}},
      // Split rows (NVIDIA; grids for 132 SMs): each shape of split_backward_shapes, over
      // rows of 1M (f16, bf16) and ragged slices (f32 100000: 25 slices of 1024 vectors).
      {{f16, 1 << 20, 1}, {S::split, 256, 8, 1, 4, 1, 2, 264}},
      {{bf16, 1 << 20, 1}, {S::split, 128, 8, 1, 4, 1, 4, 528}},
      {{f16, 1 << 20, 1}, {S::split, 256, 8, 1, 8, 1, 1, 132}},
      {{f32, 100000, 1}, {S::split, 128, 4, 1, 8, 1, 2, 264}},
      // ... ringed (rings of y and dy): rings of 3 to 5, ragged slices too.
      {{f16, 1 << 20, 1}, {S::split, 256, 8, 1, 4, 1, 1, 132, 5}},
      {{bf16, 1 << 20, 1}, {S::split, 256, 8, 1, 8, 1, 1, 132, 3}},
      {{f32, 100000, 1}, {S::split, 128, 4, 1, 4, 1, 2, 264, 4}},
  };
}

kiln::jit::Program backward_program_for(const Case& k) {
  kiln::gen::Spec spec = kiln::ops::detail::softmax_backward_spec(k.p, k.c);
  spec.kernel_name(softmax_backward_kernel_name(k.p, k.c));
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

TEST_CASE("NVRTC: every kind of backward config compiles for sm_80 to sm_90, in registers") {
  bool first = true;
  for (const auto& k : every_backward_kind()) {
    validate_softmax_backward_config(k.p, k.c, 32);
    const std::string name = softmax_backward_kernel_name(k.p, k.c);
    CAPTURE(name);
    // No local memory: y and dy held in registers stay there (checked for every target).
    const auto ptx = kiln_test::compile_for_nvidia_targets(backward_program_for(k), name, first);
    first = false;
    // The backward's entry point alone: the forward's kernel is not compiled in.
    for (const std::string& text : ptx) CHECK(text.find(".entry softmax__") == std::string::npos);
  }
}

#ifdef KILN_TEST_HIP_CLANG
TEST_CASE("gfx942: every kind of config compiles with clang's HIP mode (wavefronts of 64)") {
  kiln_test::TempDir dir("kiln-softmax-hip");
  for (const auto& k : every_kind()) {
    if (k.c.threads_per_row * k.c.rows_per_block % 64 != 0) continue;
    if (k.c.cluster_blocks > 1) continue;                  // (NVIDIA's clusters)
    if (k.c.strategy == SoftmaxStrategy::split) continue;  // NVIDIA GPUs only
    const std::string name = softmax_kernel_name(k.p, k.c);
    CAPTURE(name);
    kiln_test::compile_for_gfx942(program_for(k), "softmax.cu", name, dir);
  }
}

TEST_CASE("gfx942: every kind of backward config compiles with clang's HIP mode") {
  kiln_test::TempDir dir("kiln-softmax-backward-hip");
  for (const auto& k : every_backward_kind()) {
    if (k.c.threads_per_row * k.c.rows_per_block % 64 != 0) continue;
    if (k.c.strategy == SoftmaxStrategy::split) continue;  // NVIDIA GPUs only
    const std::string name = softmax_backward_kernel_name(k.p, k.c);
    CAPTURE(name);
    kiln_test::compile_for_gfx942(backward_program_for(k), "softmax.cu", name, dir);
  }
}
#endif

TEST_CASE("backward split rows: candidates, their rules, names, launch and the heuristic") {
  using S = SoftmaxStrategy;
  using kiln::ops::detail::softmax_backward_split_configs;
  const int sms = 132;
  for (auto dt : all_dtypes) {
    const int vec = dt == SoftmaxDType::f32 ? 4 : 8;
    for (int cols : kiln_test::split_test_cols) {
      const SoftmaxParams p{dt, cols, 64};
      CAPTURE(nlohmann::json(p).dump());
      const bool long_row = std::int64_t(cols) * kiln::gen::size_of(dt) >= 64 * 1024;
      const auto split = softmax_backward_split_configs(p, 32, sms, 228 * 1024, 227 * 1024);
      CHECK(split.empty() == !long_row);
      std::set<std::string> names;
      std::size_t ringed = 0;
      for (const SoftmaxConfig& c : split) {
        CAPTURE(nlohmann::json(c).dump());
        CHECK_NOTHROW(validate_softmax_backward_config(p, c, 32));
        kiln_test::check_split_config(c, vec, sms, kiln::ops::detail::split_slices(p.cols, c),
                                      kiln::ops::detail::softmax_launch(p, c));
        CHECK(std::int64_t(c.threads_per_row) * c.vectors_per_thread * c.blocks_per_sm <= 2048);
        const std::string name = softmax_backward_kernel_name(p, c);
        CHECK(names.insert(name).second);
        CHECK(has(name, "softmax_backward__"));
        CHECK(has(name, "__split_t"));
        const std::string h = kiln::ops::detail::softmax_backward_spec(p, c).header();
        CHECK(has(h, "#define SOFTMAX_BACKWARD 1"));
        CHECK(has(h, "SOFTMAX_SPLIT"));
        CHECK(has(h, "kSplitMinBlocks = " + std::to_string(c.blocks_per_sm)));
        CHECK(has(h, "kSplitRing = " + std::to_string(c.split_ring)));
        // Ringed ones take rings of y and dy (3 to 5 slices each) in shared memory, their
        // blocks within 228 KiB an SM.
        const auto lc = kiln::ops::detail::softmax_backward_launch(p, c);
        CHECK(lc.shared_bytes ==
              unsigned(2 * 16 * c.split_ring * c.threads_per_row * c.vectors_per_thread));
        CHECK(c.blocks_per_sm * (std::int64_t(lc.shared_bytes) + 2048) <= 228 * 1024);
        ringed += c.split_ring > 0;
        if (c.split_ring > 0) {
          CHECK(c.split_ring >= 3);
          CHECK(c.split_ring <= 5);
          CHECK(name.substr(name.size() - 2) == "q" + std::to_string(c.split_ring));
        }
      }
      // Every ringed shape on rows of 1M, but in f32 (256 slices of 1024 vectors, more
      // than 132 blocks alone) 256 x 8 alone.
      if (cols == 1 << 20) {
        CHECK(ringed == (dt == SoftmaxDType::f32
                             ? 1
                             : std::size(kiln::ops::detail::softmax_backward_ring_shapes)));
      }
      // Not on 64-lane wavefronts.
      CHECK(softmax_backward_split_configs(p, 64, sms, 228 * 1024, 227 * 1024).empty());
      // The factory offers them on NVIDIA GPUs of sm_80 and later; untuned, it takes 256
      // threads of 8 vectors by a block an SM for rows of 128 KiB and more where offered.
      const auto h200 =
          kiln::ops::softmax_backward_factory().configs(p, kiln_test::h200_properties());
      CHECK(std::count_if(h200.begin(), h200.end(), [](const SoftmaxConfig& c) {
              return c.strategy == S::split;
            }) == std::ptrdiff_t(split.size()));
      const SoftmaxConfig untuned = softmax_backward_heuristic(p, h200);
      const bool offered = std::any_of(split.begin(), split.end(), [](const SoftmaxConfig& c) {
        return c.threads_per_row == 256 && c.vectors_per_thread == 8 && c.blocks_per_sm == 1;
      });
      kiln_test::check_split_heuristic(
          untuned, std::int64_t(cols) * kiln::gen::size_of(dt) >= 128 * 1024 && offered, 1);
      for (const auto& c :
           kiln::ops::softmax_backward_factory().configs(p, kiln_test::mi300_properties())) {
        CHECK(c.strategy != S::split);
      }
    }
  }
  // f16 rows of 1M by 256 threads of 4 vectors, 2 blocks an SM: 128 slices, one slot word
  // each; what the kernel cannot run is refused, naming the rule.
  const SoftmaxParams p{SoftmaxDType::f16, 1 << 20, 64};
  const SoftmaxConfig c{S::split, 256, 8, 1, 4, 1, 2, 264};
  CHECK(kiln::ops::detail::split_slices(p.cols, c) == 128);
  CHECK(softmax_backward_kernel_name(p, c) ==
        "softmax_backward__f16__cols1048576__split_t256v8i4b2");
  CHECK(has(backward_config_error_of(p, {S::split, 256, 8, 1, 8, 1, 2, 264}),
            "at most 2048 vectors of a slice"));
  CHECK(has(backward_config_error_of(p, {S::split, 256, 8, 1, 4, 1, 2, 100}),
            "fewer than a row's 128 slices"));
  CHECK(
      has(backward_config_error_of(p, {S::split, 256, 8, 1, 4, 2, 2, 264}), "cluster_blocks = 1"));
  // The factory's spec refuses a grid the device does not hold at once.
  CHECK_THROWS_WITH_AS(kiln::ops::detail::softmax_backward_description().spec(
                           p, {S::split, 256, 8, 1, 4, 1, 2, 528}, kiln_test::h200_properties()),
                       doctest::Contains("is not resident at once"), kiln::Error);
  // ... and ringed blocks whose rings the SM's shared memory does not hold: 256 x 4 with
  // rings of 5 take 160 KiB a block, one of which an H200 SM holds, two not.
  const SoftmaxConfig ringed{S::split, 256, 8, 1, 4, 1, 1, 132, 5};
  CHECK_NOTHROW(kiln::ops::detail::softmax_backward_description().spec(
      p, ringed, kiln_test::h200_properties()));
  SoftmaxConfig two = ringed;
  two.blocks_per_sm = 2;
  two.grid_blocks = 264;
  CHECK_THROWS_WITH_AS(
      kiln::ops::detail::softmax_backward_description().spec(p, two, kiln_test::h200_properties()),
      doctest::Contains("bytes of shared memory do not fit an SM"), kiln::Error);
}

TEST_CASE("split rows: two slot buffers in turns, each launch's words zero when it starts") {
  // The bookkeeping of kiln's slot buffers (SlotTurns) against buffers simulated on the
  // host: a launch of n words must find the first n words of its buffer zero; it writes
  // them (tags) and zeroes the first n of the other, as the split kernels do. Random
  // sequences of sizes, launches that are never queued, and a pair that starts dirty.
  std::mt19937 rng(7);
  for (int sequence = 0; sequence < 200; ++sequence) {
    const std::size_t capacity = 64;
    std::vector<std::uint64_t> buffers[2] = {
        std::vector<std::uint64_t>(capacity, 0x1'0000'0001ull),
        std::vector<std::uint64_t>(capacity, 0x1'0000'0002ull)};
    kiln::ops::SlotTurns turns;
    int memsets = 0, launches = 0;
    std::size_t last = 0;
    for (int step = 0; step < 50; ++step) {
      // Mostly a size repeated, as calls of one shape take; sometimes another.
      const std::size_t words = rng() % 4 == 0 || last == 0 ? 1 + rng() % capacity : last;
      auto& own = buffers[turns.turn()];
      auto& next = buffers[1 - turns.turn()];
      if (turns.needs_zeroing(words)) {
        std::fill(own.begin(), own.begin() + std::ptrdiff_t(words), 0);
        turns.zeroed(words);
        ++memsets;
      }
      CAPTURE(sequence);
      CAPTURE(step);
      REQUIRE(std::all_of(own.begin(), own.begin() + std::ptrdiff_t(words),
                          [](std::uint64_t w) { return w == 0; }));
      if (rng() % 10 == 0) {  // the launch failed before it was queued (or may have)
        if (rng() % 2) std::fill(own.begin(), own.begin() + std::ptrdiff_t(words), 7);
        turns.forget();
        continue;
      }
      for (std::size_t i = 0; i < words; ++i) {
        own[i] = 0x1'0000'0000ull | i;
        next[i] = 0;
      }
      turns.launched(words);
      ++launches;
      last = words;
    }
    CHECK(memsets < launches);  // most launches take the words the one before zeroed
  }
  // One size, over and over: only the first launch zeroes its slots on the stream.
  kiln::ops::SlotTurns turns;
  CHECK(turns.needs_zeroing(10));
  turns.zeroed(10);
  for (int i = 0; i < 5; ++i) {
    CHECK_FALSE(turns.needs_zeroing(10));
    CHECK_FALSE(turns.needs_zeroing(3));
    turns.launched(10);
  }
  CHECK(turns.needs_zeroing(11));  // more words than the launch before zeroed
  turns.forget();
  CHECK(turns.needs_zeroing(1));
}
