// kiln::ops LayerNorm and RMSNorm without a GPU: the configs each problem gets, the
// heuristic, validation messages, kernel names and the generated header (unit); every kind
// of config of both norms compiled by NVRTC for each NVIDIA target (nvrtc), and by clang's
// HIP mode for gfx942 (hip).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "../devices.hpp"
#include "../nvrtc_support.hpp"
#include "../support.hpp"
#include "kiln/jit/compiler.hpp"
#include "kiln/jit/sources.hpp"
#include "kiln/ops/detail/norm_configs.hpp"
#include "kiln/ops/norm.hpp"
#include "split_test_support.hpp"

using namespace kiln::ops;
using kiln::ops::detail::norm_configs;
using kiln::ops::detail::norm_heuristic;
using kiln::ops::detail::norm_kernel_name;
using kiln::ops::detail::norm_split_configs;
using kiln::ops::detail::norm_split_slices;
using kiln::ops::detail::norm_split_slot_words;
using kiln::ops::detail::validate_norm;
using kiln::ops::detail::validate_norm_config;
using NormDType = kiln::gen::DType;  // f16, bf16 or f32 for a norm

namespace {

std::string error_of(const NormParams& p) {
  try {
    validate_norm(p);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const NormDType all_dtypes[] = {NormDType::f16, NormDType::bf16, NormDType::f32};
const NormKind both_kinds[] = {NormKind::layer_norm, NormKind::rms_norm};

/// Checks that the forward refuses config `c` for `p`, naming `rule`.
void refused_config(const NormParams& p, const NormConfig& c, const char* rule) {
  CAPTURE(nlohmann::json(c).dump());
  CHECK_THROWS_WITH_AS(validate_norm_config(p, c, 32), doctest::Contains(rule), kiln::Error);
}

}  // namespace

TEST_CASE("every candidate config is valid, and the heuristic picks one of them") {
  for (int warp : {32, 64}) {
    for (auto kind : both_kinds) {
      for (auto dt : all_dtypes) {
        for (int cols : {1, 3, 100, 1001, 4096, 8192, 12345, 65536, 1 << 20}) {
          const NormParams p{kind, dt, cols, cols % 2 == 0, 1000};
          CAPTURE(warp);
          CAPTURE(nlohmann::json(p).dump());
          const auto configs = norm_configs(p, warp);
          REQUIRE_FALSE(configs.empty());
          std::set<std::string> names;
          for (const auto& c : configs) {
            CAPTURE(nlohmann::json(c).dump());
            CHECK_NOTHROW(validate_norm_config(p, c, warp));
            CHECK(names.insert(norm_kernel_name(p, c)).second);  // names tell configs apart
          }
          const NormConfig h = norm_heuristic(p, configs);
          CHECK(std::find(configs.begin(), configs.end(), h) != configs.end());
          const bool long_row = std::int64_t(cols) * kiln::gen::size_of(dt) > 16 * 1024;
          CHECK(h.strategy == (long_row ? NormStrategy::multi_pass : NormStrategy::one_pass));
        }
      }
    }
  }
}

TEST_CASE("the norms' configs are softmax's for the same row") {
  for (int cols : {128, 1001, 8192, 65536}) {
    const NormParams p{NormKind::rms_norm, NormDType::bf16, cols, true, 64};
    const auto norm = norm_configs(p, 32);
    const auto softmax = kiln::ops::detail::softmax_configs({NormDType::bf16, cols, 64}, 32);
    REQUIRE(norm.size() == softmax.size());
    for (std::size_t i = 0; i < norm.size(); ++i) {
      CHECK(kiln::ops::detail::to_softmax(norm[i]) == softmax[i]);
    }
  }
}

TEST_CASE("the heuristic on common shapes") {
  auto h = [](NormKind kind, NormDType dt, int cols, bool residual = false) {
    const NormParams p{kind, dt, cols, residual, 1024};
    return norm_kernel_name(p, norm_heuristic(p, norm_configs(p, 32)));
  };
  CHECK(h(NormKind::layer_norm, NormDType::f16, 128) == "norm__layer__f16__cols128__t8v8r16");
  CHECK(h(NormKind::rms_norm, NormDType::bf16, 4096, true) ==
        "norm__rms__bf16__cols4096__residual__t256v8");
  CHECK(h(NormKind::layer_norm, NormDType::f16, 1001) == "norm__layer__f16__cols1001__t128v1");
  CHECK(h(NormKind::rms_norm, NormDType::f32, 8192) ==
        "norm__rms__f32__cols8192__multipass_t512v4i2");
  CHECK(h(NormKind::layer_norm, NormDType::f16, 1 << 20) ==
        "norm__layer__f16__cols1048576__multipass_t1024v8i8");
}

TEST_CASE("unsupported problems are refused with what is supported") {
  CHECK(error_of({NormKind::layer_norm, NormDType::f16, 4096, false, 10}).empty());
  CHECK(error_of({NormKind::rms_norm, NormDType::f16, 1, true, 0}).empty());
  CHECK(error_of({NormKind::rms_norm, NormDType::f32, 1 << 20, false, 2147483647}).empty());
  const std::string zero = error_of({NormKind::rms_norm, NormDType::f16, 0, false, 10});
  CHECK(has(zero, "kiln: rms_norm: cols = 0"));
  CHECK(has(zero, "1 to 1048576"));
  CHECK(has(error_of({NormKind::layer_norm, NormDType::f16, (1 << 20) + 1, false, 10}),
            "kiln: layer_norm: cols = 1048577"));
  const std::string negative = error_of({NormKind::layer_norm, NormDType::f32, 10, false, -1});
  CHECK(has(negative, "rows = -1"));
  CHECK(has(negative, "0 to 2147483647"));
  CHECK(has(error_of({NormKind::layer_norm, NormDType::f32, 10, false, 2147483648LL}),
            "rows = 2147483648"));
  CHECK(has(error_of({NormKind::layer_norm, NormDType::f64, 10, false, 1}),
            "dtype f64 is not supported; use f16, bf16 or f32"));
  CHECK(has(error_of({NormKind(5), NormDType::f32, 10, false, 1}), "use layer_norm or rms_norm"));
}

TEST_CASE("configs the kernel cannot run are refused, naming the norm and the rule") {
  const NormParams p{NormKind::rms_norm, NormDType::f16, 4096, false, 100};
  auto error_of_config = [&](NormConfig c, int warp = 32) -> std::string {
    try {
      validate_norm_config(p, c, warp);
    } catch (const kiln::Error& e) {
      return e.what();
    }
    return "";
  };
  using S = NormStrategy;
  CHECK(error_of_config({S::one_pass, 256, 8, 1, 2}).empty());
  const std::string wide = error_of_config({S::one_pass, 256, 16, 1, 1});
  CHECK(has(wide, "kiln: rms_norm config {"));
  CHECK(has(wide, R"("kind":"rms_norm")"));
  CHECK(has(wide, "}: vector_width must be a power of 2"));
  CHECK_FALSE(has(wide, "softmax"));
  CHECK(has(error_of_config({S::one_pass, 96, 8, 1, 6}), "threads_per_row"));
  CHECK(has(error_of_config({S::one_pass, 32, 8, 1, 16}, 64), "whole warps of 64"));
  CHECK(has(error_of_config({S::one_pass, 256, 8, 1, 3}), "vectors_per_thread = 2"));
  CHECK(has(error_of_config({S::one_pass, 32, 8, 4, 16}), "at most 128 bytes"));
  CHECK(has(error_of_config({S::multi_pass, 256, 8, 2, 2}), "one row per block"));
}

TEST_CASE("kernel names carry the kind, the row, the residual and the config") {
  using S = NormStrategy;
  CHECK(norm_kernel_name({NormKind::layer_norm, NormDType::f16, 4096, false, 5},
                         {S::one_pass, 256, 8, 1, 2}) == "norm__layer__f16__cols4096__t256v8");
  CHECK(norm_kernel_name({NormKind::rms_norm, NormDType::bf16, 128, true, 5},
                         {S::one_pass, 16, 8, 8, 1}) ==
        "norm__rms__bf16__cols128__residual__t16v8r8");
  CHECK(norm_kernel_name({NormKind::layer_norm, NormDType::f32, 1 << 20, false, 5},
                         {S::multi_pass, 1024, 4, 1, 4}) ==
        "norm__layer__f32__cols1048576__multipass_t1024v4i4");
  // The row count is not part of the name: one binary serves every row count.
  CHECK(norm_kernel_name({NormKind::rms_norm, NormDType::f16, 4096, false, 1},
                         {S::one_pass, 256, 8, 1, 2}) ==
        norm_kernel_name({NormKind::rms_norm, NormDType::f16, 4096, false, 99999},
                         {S::one_pass, 256, 8, 1, 2}));
  for (const auto& c : norm_configs({NormKind::layer_norm, NormDType::f16, 8192, true, 1}, 32)) {
    CHECK(kiln::gen::is_identifier(
        norm_kernel_name({NormKind::layer_norm, NormDType::f16, 8192, true, 1}, c)));
  }
}

TEST_CASE("params and configs: JSON, and a hash that follows the value") {
  const NormParams p{NormKind::rms_norm, NormDType::bf16, 4096, true, 123};
  CHECK(nlohmann::json(p).dump() ==
        R"({"cols":4096,"dtype":"bf16","kind":"rms_norm","residual":true,"rows":123})");
  CHECK(nlohmann::json(p).get<NormParams>() == p);
  const NormConfig c{NormStrategy::multi_pass, 512, 8, 1, 4};
  CHECK(nlohmann::json(c)["strategy"] == "multi_pass");
  CHECK(nlohmann::json(c).get<NormConfig>() == c);
  static_assert(std::has_unique_object_representations_v<NormConfig>);
  static_assert(std::is_trivially_copyable_v<NormParams>);
  // Every field reaches the hash the factory's memo uses.
  std::unordered_set<std::size_t> hashes;
  const std::hash<NormParams> hash;
  hashes.insert(hash(p));
  NormParams q = p;
  q.kind = NormKind::layer_norm;
  hashes.insert(hash(q));
  q = p;
  q.dtype = NormDType::f16;
  hashes.insert(hash(q));
  q = p;
  q.cols = 4095;
  hashes.insert(hash(q));
  q = p;
  q.residual = false;
  hashes.insert(hash(q));
  q = p;
  q.rows = 124;
  hashes.insert(hash(q));
  CHECK(hashes.size() == 6);
  CHECK(hash(p) == hash(NormParams{NormKind::rms_norm, NormDType::bf16, 4096, true, 123}));
}

TEST_CASE("the generated header holds softmax's row tensors and the norm's constants") {
  const NormParams p{NormKind::rms_norm, NormDType::f16, 4096, true, 77};
  const NormConfig c{NormStrategy::one_pass, 32, 8, 8, 16};
  const std::string h = kiln::ops::detail::norm_spec(p, c).header();
  CHECK(has(h, "using In = kiln::Tensor<const kiln::f16, kiln::Extent<COL, 4096>>;"));
  CHECK(has(h, "using Out = kiln::Tensor<kiln::f16, kiln::Extent<COL, 4096>>;"));
  CHECK(has(h, "inline constexpr int kIters = 16;"));
  CHECK(has(h, "inline constexpr int kRms = 1;"));
  CHECK(has(h, "inline constexpr int kResidual = 1;"));
  CHECK_FALSE(has(h, "77"));  // rows are a run-time argument
  const std::string l =
      kiln::ops::detail::norm_spec({NormKind::layer_norm, NormDType::f32, 3, false, 1},
                                   {NormStrategy::multi_pass, 256, 1, 1, 2})
          .header();
  CHECK(has(l, "inline constexpr int kRms = 0;"));
  CHECK(has(l, "inline constexpr int kResidual = 0;"));
  CHECK(has(l, "inline constexpr int kMultiPass = 1;"));
}

TEST_CASE("staged rows: x and the residual in a block's shared memory, on NVIDIA GPUs") {
  using S = NormStrategy;
  using kiln::ops::detail::norm_shared_bytes;
  using kiln::ops::detail::norm_staged_configs;
  constexpr std::int64_t h200 = 227 * 1024;
  // 128 KiB rows: x alone fits 192 KiB, x and the residual do not.
  const NormParams plain{NormKind::layer_norm, NormDType::f16, 65536, false, 64};
  const NormParams with_residual{NormKind::layer_norm, NormDType::f16, 65536, true, 64};
  CHECK(norm_staged_configs(plain, 32, h200) ==
        std::vector<NormConfig>{{S::staged, 512, 8, 1, 16}, {S::staged, 1024, 8, 1, 8}});
  CHECK(norm_staged_configs(with_residual, 32, h200).empty());
  const NormParams half{NormKind::rms_norm, NormDType::bf16, 32768, true, 64};  // 2 x 64 KiB
  const auto configs = norm_staged_configs(half, 32, h200);
  REQUIRE(configs.size() == 2);
  for (const auto& c : configs) {
    CAPTURE(norm_kernel_name(half, c));
    CHECK_NOTHROW(validate_norm_config(half, c, 32));
    CHECK(norm_shared_bytes(half, c) == 2 * 65536);
    CHECK(kiln::ops::detail::norm_launch(half, c).shared_bytes == 2 * 65536);
  }
  CHECK(norm_kernel_name(half, configs[1]) ==
        "norm__rms__bf16__cols32768__residual__staged_t1024v8i4");
  // Too much for a block: refused, naming the norm.
  CHECK_THROWS_WITH_AS(validate_norm_config(with_residual, {S::staged, 1024, 8, 1, 8}, 32),
                       doctest::Contains("at most 196608 bytes of x and the residual"),
                       kiln::Error);
  // Rows of 192 to 256 KiB without the residual: 192 KiB staged, the rest of each thread's
  // vectors held in registers (softmax's staged_held), none with the residual.
  auto held = [](NormConfig c, int in_registers) {
    c.staged_held = in_registers;
    return c;
  };
  const NormParams f32_256k{NormKind::layer_norm, NormDType::f32, 65536, false, 64};
  const NormConfig h4 = held({S::staged, 1024, 4, 1, 16}, 4);
  CHECK(norm_staged_configs(f32_256k, 32, h200) ==
        std::vector<NormConfig>{held({S::staged, 512, 4, 1, 32}, 8), h4});
  CHECK(
      norm_staged_configs({NormKind::rms_norm, NormDType::f32, 65536, true, 64}, 32, h200).empty());
  CHECK_NOTHROW(validate_norm_config(f32_256k, h4, 32));
  CHECK(norm_shared_bytes(f32_256k, h4) == 196608);
  CHECK(norm_kernel_name(f32_256k, h4) == "norm__layer__f32__cols65536__staged_t1024v4i16h4");
  const std::string h4_header = kiln::ops::detail::norm_spec(f32_256k, h4).header();
  CHECK(has(h4_header, "inline constexpr int kStagedHeld = 4;"));
  CHECK(has(h4_header, "inline constexpr int kIters = 16;"));
  CHECK(has(kiln::ops::detail::norm_spec(half, configs[1]).header(),
            "inline constexpr int kStagedHeld = 0;"));
  CHECK(nlohmann::json(h4).get<NormConfig>() == h4);
  // The untuned choice: by 1024 threads, as for rows of 64 KiB and more that a block stages
  // whole (on an H100: LayerNorm f32 1024 x 65536 189.9 us against the split rows' 194.4).
  const auto f32_all = kiln::ops::norm_factory().configs(f32_256k, kiln_test::h200_properties());
  CHECK(norm_heuristic(f32_256k, f32_all) == h4);
  // Where a smaller shared memory than an H100's makes rows of at most 192 KiB held in
  // part (128 KiB of f16 where a block has 99 KiB), the heuristic leaves them to tuning.
  const NormParams f16_128k{NormKind::rms_norm, NormDType::f16, 65536, false, 64};
  std::vector<NormConfig> ada = norm_staged_configs(f16_128k, 32, 99 * 1024);
  REQUIRE(ada.size() == 2);
  CHECK(ada[0].staged_held == 5);
  for (const NormConfig& c : kiln::ops::detail::norm_split_configs(f16_128k, 32, 128)) {
    ada.push_back(c);
  }
  CHECK(norm_heuristic(f16_128k, ada).strategy == S::split);
  nlohmann::json before = nlohmann::json(NormConfig{S::staged, 1024, 8, 1, 8});
  before.erase("staged_held");  // (records written before the field)
  CHECK(before.get<NormConfig>() == NormConfig{S::staged, 1024, 8, 1, 8});
  refused_config({NormKind::rms_norm, NormDType::f32, 32768, true, 64},
                 held({S::staged, 1024, 4, 1, 8}, 2),
                 "staged_held (vectors held in registers) takes neither staged_ahead nor the "
                 "residual");
  NormConfig ahead_held = held({S::staged, 1024, 4, 1, 8, 1, 1, 132, 0, 2}, 2);
  refused_config({NormKind::rms_norm, NormDType::f32, 32768, false, 64}, ahead_held,
                 "takes neither staged_ahead nor the residual");
  refused_config(f32_256k, held({S::staged, 1024, 4, 1, 16}, 5),
                 "at most 64 bytes of the row in registers");
  refused_config(f32_256k, held({S::multi_pass, 1024, 4, 1, 4}, 1),
                 "staged_held is staged configs'");
  refused_config({NormKind::rms_norm, NormDType::f16, 1 << 20, false, 64},
                 held({S::split, 256, 8, 1, 8, 1, 2, 264}, 1),
                 "staged_held is staged configs' (0 for split ones)");
  CHECK_THROWS_WITH_AS(
      kiln::ops::detail::validate_norm_backward_config(
          {NormKind::layer_norm, NormDType::f32, 65536, true, true, 64}, h4, 32),
      doctest::Contains("staged_held is the forward's staged configs' (0 in the backward)"),
      kiln::Error);
  // The header: one pass's constants, and the staged kernel's own.
  const std::string h = kiln::ops::detail::norm_spec(half, configs[1]).header();
  CHECK(has(h, "#define NORM_STAGED 1"));
  CHECK(has(h, "inline constexpr int kStagedMinBlocks = 1;"));  // 128 KiB a block
  CHECK(has(h, "inline constexpr int kMultiPass = 0;"));
  CHECK_FALSE(has(h, "SOFTMAX_STAGED"));
  CHECK_FALSE(has(kiln::ops::detail::norm_spec(plain, {S::one_pass, 1024, 8, 1, 8}).header(),
                  "NORM_STAGED"));
  // The factory offers them on an H200, not on an MI300; the backward refuses them.
  const kiln::rt::DeviceProperties d = kiln_test::h200_properties();
  const kiln::rt::DeviceProperties mi300 = kiln_test::mi300_properties();
  auto staged = [&](const kiln::rt::DeviceProperties& dev, bool ahead) {
    int n = 0;
    for (const auto& c : kiln::ops::norm_factory().configs(plain, dev)) {
      n += c.strategy == S::staged && (c.staged_ahead > 0) == ahead;
    }
    return n;
  };
  CHECK(staged(d, false) == 2);
  CHECK(staged(d, true) == 2);  // (norm_staged_ahead_configs)
  CHECK(staged(mi300, false) == 0);
  CHECK(staged(mi300, true) == 0);
  // The heuristic stages rows of x of 32 KiB and more (64 KiB with the residual): 512
  // threads under 64 KiB staged, 1024 from 64 KiB; never on the MI300, which has none.
  auto chosen = [&](NormKind kind, NormDType dt, int cols, bool residual,
                    const kiln::rt::DeviceProperties& dev) {
    const NormParams p{kind, dt, cols, residual, 1024};
    return norm_kernel_name(p, norm_heuristic(p, kiln::ops::norm_factory().configs(p, dev)));
  };
  CHECK(chosen(NormKind::layer_norm, NormDType::f16, 65536, false, d) ==
        "norm__layer__f16__cols65536__staged_t1024v8i8");
  // Where the memory moves 30 GB/s an SM or more (an H200's 4.8 TB/s over 132 SMs; not an
  // H100's 3.35 TB/s), f16 rows staged ahead by 4 vectors where they are offered (an SM
  // holding one staged block: rows of 65536); the factory's heuristic reads the device's
  // memory clock and bus width.
  kiln::rt::DeviceProperties fast = d, slow = d;
  fast.memory_clock_khz = 3'125'000;  // 2 x 3.125 GHz x 6144 bits / 8: 4.8 TB/s
  fast.memory_bus_bits = 6144;
  slow.memory_clock_khz = 2'619'000;  // 3.35 TB/s
  slow.memory_bus_bits = 5120;
  auto untuned = [&](NormKind kind, NormDType dt, int cols, bool residual,
                     const kiln::rt::DeviceProperties& dev) {
    const NormParams p{kind, dt, cols, residual, 1024};
    const auto& f = kiln::ops::norm_factory();
    return norm_kernel_name(p, f.heuristic(p, f.configs(p, dev), dev));
  };
  CHECK(untuned(NormKind::layer_norm, NormDType::f16, 65536, false, fast) ==
        "norm__layer__f16__cols65536__staged_t1024v8i8a4");
  CHECK(untuned(NormKind::rms_norm, NormDType::f16, 65536, false, fast) ==
        "norm__rms__f16__cols65536__staged_t1024v8i8a4");
  // (bf16 and f32 rows staged ahead are yet to be timed on an H200: a block a row.)
  CHECK(untuned(NormKind::rms_norm, NormDType::bf16, 65536, false, fast) ==
        "norm__rms__bf16__cols65536__staged_t1024v8i8");
  CHECK(untuned(NormKind::layer_norm, NormDType::f32, 32768, false, fast) ==
        "norm__layer__f32__cols32768__staged_t1024v4i8");
  CHECK(untuned(NormKind::layer_norm, NormDType::f16, 65536, false, slow) ==
        "norm__layer__f16__cols65536__staged_t1024v8i8");
  CHECK(untuned(NormKind::layer_norm, NormDType::f16, 65536, false, d) ==
        "norm__layer__f16__cols65536__staged_t1024v8i8");  // (bandwidth unknown)
  // Rows two staged blocks share an SM with (32 KiB) and rows no block stages are as before.
  CHECK(untuned(NormKind::rms_norm, NormDType::f16, 16384, false, fast) ==
        "norm__rms__f16__cols16384__staged_t512v8i4");
  CHECK(untuned(NormKind::rms_norm, NormDType::f16, 1048576, false, fast) ==
        "norm__rms__f16__cols1048576__split_t256v8i8b2");
  // Whatever the row, on either device the choice is one of the factory's candidates.
  for (const auto* dev : {&fast, &slow}) {
    for (auto kind : {NormKind::layer_norm, NormKind::rms_norm}) {
      for (auto dt : {NormDType::f16, NormDType::bf16, NormDType::f32}) {
        for (int cols : {4096, 16384, 32768, 65536, 131072, 1 << 20}) {
          for (bool residual : {false, true}) {
            const NormParams p{kind, dt, cols, residual, 1024};
            CAPTURE(nlohmann::json(p).dump());
            const auto& f = kiln::ops::norm_factory();
            const auto candidates = f.configs(p, *dev);
            const NormConfig choice = f.heuristic(p, candidates, *dev);
            CHECK(std::find(candidates.begin(), candidates.end(), choice) != candidates.end());
          }
        }
      }
    }
  }
  CHECK(chosen(NormKind::rms_norm, NormDType::bf16, 16384, false, d) ==
        "norm__rms__bf16__cols16384__staged_t512v8i4");
  CHECK(chosen(NormKind::layer_norm, NormDType::f32, 16384, false, d) ==
        "norm__layer__f32__cols16384__staged_t1024v4i4");
  CHECK(chosen(NormKind::rms_norm, NormDType::f16, 32768, true, d) ==
        "norm__rms__f16__cols32768__residual__staged_t1024v8i4");
  CHECK(chosen(NormKind::layer_norm, NormDType::f16, 16384, true, d) ==
        "norm__layer__f16__cols16384__residual__multipass_t512v8i2");
  // LayerNorm's 16-bit rows of 16 KiB: two passes over 256 threads; RMSNorm's, with the
  // residual, and the backward's: softmax's heuristic.
  CHECK(chosen(NormKind::layer_norm, NormDType::f16, 8192, false, d) ==
        "norm__layer__f16__cols8192__multipass_t256v8i2");
  CHECK(chosen(NormKind::layer_norm, NormDType::bf16, 8192, false, d) ==
        "norm__layer__bf16__cols8192__multipass_t256v8i2");
  CHECK(chosen(NormKind::layer_norm, NormDType::f16, 4096, false, d) ==
        "norm__layer__f16__cols4096__t256v8");
  CHECK(chosen(NormKind::rms_norm, NormDType::f16, 8192, false, d) ==
        "norm__rms__f16__cols8192__t512v8");
  CHECK(chosen(NormKind::layer_norm, NormDType::f16, 8192, true, d) ==
        "norm__layer__f16__cols8192__residual__t512v8");
  CHECK(kiln::ops::detail::norm_backward_heuristic(
            {NormKind::layer_norm, NormDType::f16, 8192, true, true, 1024},
            kiln::ops::norm_backward_factory().configs(
                {NormKind::layer_norm, NormDType::f16, 8192, true, true, 1024}, d))
            .strategy == NormStrategy::one_pass);
  CHECK(chosen(NormKind::layer_norm, NormDType::f16, 65536, false, mi300) ==
        "norm__layer__f16__cols65536__multipass_t1024v8i4");
  CHECK_THROWS_WITH_AS(kiln::ops::detail::validate_norm_backward_config(
                           {NormKind::layer_norm, NormDType::f16, 65536, true, false, 64},
                           {S::staged, 1024, 8, 1, 8}, 32),
                       doctest::Contains("staged rows are the forward's"), kiln::Error);
  CHECK(nlohmann::json(NormConfig{S::staged, 1024, 8, 1, 8}).dump().find("\"staged\"") !=
        std::string::npos);
}

TEST_CASE("staged rows ahead: a persistent grid whose blocks copy their next row early") {
  using S = NormStrategy;
  using kiln::ops::detail::norm_shared_bytes;
  using kiln::ops::detail::norm_staged_ahead_configs;
  const kiln::rt::DeviceProperties d = kiln_test::h200_properties();
  const kiln::rt::DeviceProperties a100 = kiln_test::a100_properties();
  auto ahead_configs = [](const NormParams& p, const kiln::rt::DeviceProperties& dev) {
    return norm_staged_ahead_configs(p, 32, std::int64_t(dev.shared_per_block_optin),
                                     std::int64_t(dev.shared_per_multiprocessor),
                                     dev.multiprocessors);
  };
  auto ahead = [](NormConfig c, int vectors) {  // c, a block an SM, 132 of them
    c.blocks_per_sm = 1;
    c.grid_blocks = 132;
    c.staged_ahead = vectors;
    return c;
  };
  // 128 KiB rows of x: 1024 threads of 8 vectors (512 of 16 take more than 8 vectors a
  // thread), 2 and 4 vectors ahead (8 would be 256 KiB).
  const NormParams plain{NormKind::layer_norm, NormDType::f16, 65536, false, 1024};
  const NormConfig t1024{S::staged, 1024, 8, 1, 8};
  CHECK(ahead_configs(plain, d) == std::vector<NormConfig>{ahead(t1024, 2), ahead(t1024, 4)});
  CHECK(norm_shared_bytes(plain, ahead(t1024, 2)) == 160 * 1024);
  CHECK(norm_shared_bytes(plain, ahead(t1024, 4)) == 192 * 1024);
  // f32 rows of 128 KiB alike; x and the residual, 64 KiB each: 2 vectors ahead of each.
  const NormParams f32{NormKind::rms_norm, NormDType::f32, 32768, false, 1024};
  CHECK(ahead_configs(f32, d) == std::vector<NormConfig>{ahead({S::staged, 1024, 4, 1, 8}, 2),
                                                         ahead({S::staged, 1024, 4, 1, 8}, 4)});
  const NormParams residual{NormKind::layer_norm, NormDType::bf16, 32768, true, 1024};
  const NormConfig t512i8{S::staged, 512, 8, 1, 8}, t1024i4{S::staged, 1024, 8, 1, 4};
  CHECK(ahead_configs(residual, d) ==
        std::vector<NormConfig>{ahead(t512i8, 2), ahead(t512i8, 4), ahead(t1024i4, 2)});
  CHECK(norm_shared_bytes(residual, ahead(t1024i4, 2)) == 2 * 6 * 1024 * 16);
  // None where an SM holds several staged blocks (rows of 32 KiB), or where no vector ahead
  // fits the block (an A100's 163 KiB), or without staged rows (an MI300).
  CHECK(ahead_configs({NormKind::layer_norm, NormDType::f16, 16384, false, 1024}, d).empty());
  CHECK(ahead_configs(plain, a100).empty());
  CHECK(ahead_configs(plain, kiln_test::mi300_properties()).empty());
  for (const auto& c : ahead_configs(plain, d)) CHECK_NOTHROW(validate_norm_config(plain, c, 32));

  // Names, header and launch: at most grid_blocks blocks, at least one.
  CHECK(norm_kernel_name(plain, ahead(t1024, 4)) ==
        "norm__layer__f16__cols65536__staged_t1024v8i8a4");
  CHECK(norm_kernel_name(residual, ahead(t1024i4, 2)) ==
        "norm__layer__bf16__cols32768__residual__staged_t1024v8i4a2");
  const std::string h = kiln::ops::detail::norm_spec(plain, ahead(t1024, 4)).header();
  CHECK(has(h, "#define NORM_STAGED 1"));
  CHECK(has(h, "inline constexpr int kStagedAhead = 4;"));
  CHECK(has(h, "inline constexpr int kStagedMinBlocks = 1;"));
  CHECK(has(kiln::ops::detail::norm_spec(plain, t1024).header(),
            "inline constexpr int kStagedAhead = 0;"));
  for (const auto& [rows, grid] : {std::pair{1024, 132}, {133, 132}, {5, 5}, {0, 1}}) {
    NormParams p = plain;
    p.rows = rows;
    const auto lc = kiln::ops::detail::norm_launch(p, ahead(t1024, 4));
    CHECK(lc.grid.x == unsigned(grid));
    CHECK(lc.block.x == 1024);
    CHECK(lc.shared_bytes == 192 * 1024);
    CHECK_FALSE(lc.cooperative);  // (no block waits for another)
    CHECK(kiln::ops::detail::norm_launch(p, t1024).grid.x == unsigned(std::max(rows, 1)));
  }
  // JSON: the field, and records written before it read as 0.
  CHECK(nlohmann::json(ahead(t1024, 2)).get<NormConfig>() == ahead(t1024, 2));
  nlohmann::json old = nlohmann::json(t1024);
  old.erase("staged_ahead");
  CHECK(old.get<NormConfig>() == t1024);
  // The untuned choice stays a row a block (its rows ahead are yet to run on a GPU).
  CHECK(
      norm_kernel_name(plain, norm_heuristic(plain, kiln::ops::norm_factory().configs(plain, d))) ==
      "norm__layer__f16__cols65536__staged_t1024v8i8");

  // What the kernel cannot run is refused, naming the rule.
  const auto refused = refused_config;
  NormConfig bad = ahead(t1024, 4);
  bad.strategy = S::multi_pass;
  refused(plain, bad, "staged_ahead is staged configs' (0 for the others)");
  refused(plain, ahead(t1024, 9), "staged_ahead is 0 to vectors_per_thread (8)");
  refused(plain, ahead(t1024, -1), "staged_ahead is 0 to vectors_per_thread (8)");
  refused(plain, ahead({S::staged, 512, 8, 1, 16}, 2),
          "staged_ahead takes rows of at most 8 vectors a thread (16 here)");
  refused(plain, ahead(t1024, 8), "a staged block holds at most 196608 bytes");
  bad = ahead(t1024, 2);
  bad.blocks_per_sm = 0;
  refused(plain, bad, "a staged_ahead config's grid is persistent");
  bad = ahead(t1024, 2);
  bad.grid_blocks = 0;
  refused(plain, bad, "a staged_ahead config's grid is persistent");
  bad = t1024;
  bad.grid_blocks = 132;
  refused(plain, bad, "blocks_per_sm, grid_blocks and split_ring are split configs'");
  NormConfig split{S::split, 256, 8, 1, 8, 1, 1, 132};
  split.staged_ahead = 2;
  refused({NormKind::layer_norm, NormDType::f16, 1 << 20, false, 64}, split,
          "staged_ahead is staged configs' (0 for split ones)");
  CHECK_THROWS_WITH_AS(kiln::ops::detail::validate_norm_backward_config(
                           {NormKind::layer_norm, NormDType::f16, 65536, false, false, 64},
                           ahead({S::one_pass, 1024, 8, 1, 8}, 2), 32),
                       doctest::Contains("staged_ahead is the forward's staged configs'"),
                       kiln::Error);
}

// ---- The backward passes ----

using kiln::ops::detail::norm_backward_configs;
using kiln::ops::detail::norm_backward_heuristic;
using kiln::ops::detail::norm_backward_kernel_name;
using kiln::ops::detail::validate_norm_backward;
using kiln::ops::detail::validate_norm_backward_config;

TEST_CASE("backward: every candidate is valid and holds what fits in registers") {
  for (int warp : {32, 64}) {
    for (auto kind : both_kinds) {
      for (auto dt : all_dtypes) {
        for (int cols : {1, 3, 100, 1001, 4096, 8192, 12345, 65536, 1 << 20}) {
          const bool bias = kind == NormKind::layer_norm && cols % 2 == 1;
          const NormBackwardParams p{kind, dt, cols, cols > 3, bias, 1000};
          CAPTURE(warp);
          CAPTURE(nlohmann::json(p).dump());
          const auto configs = norm_backward_configs(p, warp, warp == 32);
          REQUIRE_FALSE(configs.empty());
          std::set<std::string> names;
          for (const auto& c : configs) {
            CAPTURE(nlohmann::json(c).dump());
            CHECK_NOTHROW(validate_norm_backward_config(p, c, warp));
            const std::int64_t block = std::int64_t(c.threads_per_row) * c.rows_per_block;
            if (c.strategy == NormStrategy::one_pass) {
              CHECK(kiln::ops::detail::norm_backward_held_bytes(p, c) <=
                    kiln::ops::detail::norm_backward_register_bytes(block));
            }
            if (c.strategy == NormStrategy::multi_pass) {  // a step as softmax's backward loads
              CHECK(kiln::ops::detail::softmax_backward_fits(
                  kiln::ops::detail::norm_row(kiln::ops::detail::norm_forward(p)),
                  kiln::ops::detail::to_softmax(c)));
            }
            CHECK(names.insert(norm_backward_kernel_name(p, c)).second);
          }
          const NormConfig h = norm_backward_heuristic(p, configs);
          CHECK(std::find(configs.begin(), configs.end(), h) != configs.end());
        }
      }
    }
  }
  // The backward keeps fewer one-pass candidates than the forward where threads would
  // hold too much: f32 rows of 4000 over 256 threads, 64 bytes of the row a thread for
  // the forward, 256 of h, dy and the two sums for the backward.
  const NormBackwardParams p{NormKind::layer_norm, NormDType::f32, 4000, true, true, 64};
  const auto forward = norm_configs(kiln::ops::detail::norm_forward(p), 32);
  const auto backward = norm_backward_configs(p, 32);
  CHECK(backward.size() < forward.size());
  for (const auto& c : backward) {
    CHECK(std::find(forward.begin(), forward.end(), c) != forward.end());
  }
}

TEST_CASE(
    "backward: clusters share the rows no block holds, on sm_90, and the heuristic takes them") {
  using S = NormStrategy;
  using kiln::ops::detail::norm_backward_cluster_configs;
  // Rows a one-pass block holds with its sums (8192 f16; 16384 f16 without sums) get no
  // clusters; 32768 f16 without sums does.
  const NormBackwardParams held{NormKind::layer_norm, NormDType::f16, 8192, true, true, 4096};
  for (const auto& c : norm_backward_configs(held, 32, true)) CHECK(c.cluster_blocks == 1);
  NormBackwardParams dx_only{NormKind::rms_norm, NormDType::f16, 16384, false, false, 4096};
  for (const auto& c : norm_backward_configs(dx_only, 32, true)) CHECK(c.cluster_blocks == 1);
  dx_only.cols = 32768;
  CHECK(norm_backward_heuristic(dx_only, norm_backward_configs(dx_only, 32, true)) ==
        NormConfig{NormStrategy::one_pass, 512, 8, 1, 4, 2});
  // 16384 f16 with both sums: halves over 512 threads, quarters and eighths.
  NormBackwardParams p{NormKind::layer_norm, NormDType::f16, 16384, true, true, 4096};
  const auto with = norm_backward_configs(p, 32, true);
  const auto without = norm_backward_configs(p, 32, false);
  CHECK(with.size() > without.size());
  for (const auto& c : without) CHECK(c.strategy == S::multi_pass);
  const auto shared = norm_backward_cluster_configs(p, 32);
  CHECK(std::find(shared.begin(), shared.end(), NormConfig{S::one_pass, 512, 8, 1, 2, 2}) !=
        shared.end());
  for (const auto& c : shared) {
    CAPTURE(nlohmann::json(c).dump());
    CHECK(c.strategy == S::one_pass);
    CHECK(c.rows_per_block == 1);
    CHECK(c.vectors_per_thread * c.threads_per_row * c.cluster_blocks >= 16384 / 8);
    CHECK(std::find(with.begin(), with.end(), c) != with.end());
  }
  CHECK(norm_backward_heuristic(p, with) == NormConfig{S::one_pass, 512, 8, 1, 2, 2});
  CHECK(norm_backward_heuristic(p, without).strategy == S::multi_pass);
  CHECK(norm_backward_kernel_name(p, {S::one_pass, 512, 8, 1, 2, 2}) ==
        "norm_backward__layer__f16__cols16384__dw_db__t512v8c2");
  // 65536 f16: eighths, by 512 threads (256 would hold 384 bytes a thread).
  p.cols = 65536;
  const auto wide = norm_backward_cluster_configs(p, 32);
  REQUIRE_FALSE(wide.empty());
  for (const auto& c : wide) CHECK(c.cluster_blocks == 8);
  CHECK(norm_backward_heuristic(p, norm_backward_configs(p, 32, true)) ==
        NormConfig{S::one_pass, 512, 8, 1, 2, 8});
  // dx alone (as a call taking the sums from the weight-gradient kernel asks): clusters of
  // 2 blocks, but two passes rather than 4 or more blocks (f16 65536, f32 32768 and 65536).
  NormBackwardParams alone = p;
  alone.weight_grad = alone.bias_grad = false;
  CHECK(norm_backward_heuristic(alone, norm_backward_configs(alone, 32, true)) ==
        NormConfig{S::multi_pass, 1024, 8, 1, 4});
  alone.dtype = NormDType::f32;
  for (int cols : {32768, 65536}) {
    alone.cols = cols;
    CHECK(norm_backward_heuristic(alone, norm_backward_configs(alone, 32, true)) ==
          NormConfig{S::multi_pass, 1024, 4, 1, 4});
  }
  alone.cols = 16384;
  CHECK(norm_backward_heuristic(alone, norm_backward_configs(alone, 32, true)) ==
        NormConfig{S::one_pass, 512, 4, 1, 4, 2});
  // A row of 1M holds no slice of an eighth in one pass: multi pass only, by 1024 threads
  // loading 4 vectors a step (softmax's 8 would spill), for every dtype; 1024 threads
  // loading 8 vectors are no candidate, and no config to ask for.
  p.cols = 1 << 20;
  CHECK(norm_backward_cluster_configs(p, 32).empty());
  auto error_of = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const kiln::Error& e) {
      return e.what();
    }
    return "";
  };
  for (auto dt : all_dtypes) {
    for (bool sums : {false, true}) {
      const NormBackwardParams q{NormKind::layer_norm, dt, 1 << 20, sums, sums, 64};
      CAPTURE(nlohmann::json(q).dump());
      const auto candidates = norm_backward_configs(q, 32, true);
      const int vec = dt == NormDType::f32 ? 4 : 8;
      CHECK(norm_backward_heuristic(q, candidates) == NormConfig{S::multi_pass, 1024, vec, 1, 4});
      CHECK(std::find(candidates.begin(), candidates.end(),
                      NormConfig{S::multi_pass, 1024, vec, 1, 8}) == candidates.end());
      CHECK(has(error_of([&] {
                  validate_norm_backward_config(q, {S::multi_pass, 1024, vec, 1, 8}, 32);
                }),
                "a multi_pass backward step loads at most 64 bytes of each of h and dy a "
                "thread (128 here) in blocks of 1024 threads"));
    }
  }
  // The rules: one pass only, and never the forward's.
  p.cols = 16384;
  CHECK(has(error_of([&] {
              validate_norm_backward_config(p, {S::multi_pass, 1024, 8, 1, 2, 2}, 32);
            }),
            "a cluster shares a row in one pass (one_pass), not in multi_pass"));
  CHECK(has(error_of([&] {
              kiln::ops::detail::validate_norm_config(kiln::ops::detail::norm_forward(p),
                                                      {S::one_pass, 512, 8, 1, 2, 2}, 32);
            }),
            "the forward runs a row per block or slot (cluster_blocks = 1)"));
  // The factory offers them on sm_90 devices only.
  auto clusters = [&](const kiln::rt::DeviceProperties& d) {
    int n = 0;
    for (const auto& c : kiln::ops::norm_backward_factory().configs(p, d))
      n += c.cluster_blocks > 1;
    return n;
  };
  CHECK(clusters(kiln_test::h200_properties()) > 0);
  CHECK(clusters(kiln_test::a100_properties()) == 0);
  CHECK(clusters(kiln_test::mi300_properties()) == 0);
  // Tuning records from before clusters read as a row per block.
  CHECK(nlohmann::json::parse(R"({"strategy":"one_pass","threads_per_row":512,)"
                              R"("vector_width":8,"rows_per_block":1,"vectors_per_thread":2})")
            .get<NormConfig>()
            .cluster_blocks == 1);
}

TEST_CASE("backward: with dweight or dbias, one pass where two would split the call") {
  using S = NormStrategy;
  auto h = [](NormKind kind, NormDType dt, int cols, bool sums) {
    const NormBackwardParams p{kind, dt, cols, sums, sums && kind == NormKind::layer_norm, 8192};
    return norm_backward_heuristic(p, norm_backward_configs(p, 32, true));
  };
  // Rows of 32 KiB f32: softmax's choice is two passes; a block of 1024 threads holds the
  // row with dweight's sums, so the call runs one kernel and a column sum.
  CHECK(h(NormKind::rms_norm, NormDType::f32, 8192, true) ==
        NormConfig{S::one_pass, 1024, 4, 1, 2});
  CHECK(h(NormKind::rms_norm, NormDType::f32, 8192, false).strategy == S::multi_pass);
  CHECK(h(NormKind::layer_norm, NormDType::f32, 6144, true) ==
        NormConfig{S::one_pass, 512, 4, 1, 3});
  CHECK(h(NormKind::rms_norm, NormDType::f16, 12288, true) ==
        NormConfig{S::one_pass, 512, 8, 1, 3});
  CHECK(h(NormKind::rms_norm, NormDType::bf16, 10972, true).strategy == S::one_pass);
  // No one-pass block holds LayerNorm f32 8192 with both sums: clusters, as before.
  CHECK(h(NormKind::layer_norm, NormDType::f32, 8192, true).cluster_blocks == 2);
  // Nor 1M columns: two passes, split, where no split candidate is offered (the factory
  // offers them on NVIDIA GPUs, and the heuristic then takes one: the split rows' test).
  CHECK(h(NormKind::rms_norm, NormDType::f16, 1 << 20, true).strategy == S::multi_pass);
  // Whatever it picks, the call does not split.
  for (int cols : {4279, 5414, 6144, 8192, 8670, 10972, 12288}) {
    for (auto dt : all_dtypes) {
      const NormBackwardParams p{NormKind::rms_norm, dt, cols, true, false, 8192};
      const auto candidates = norm_backward_configs(p, 32, true);
      const bool held = std::any_of(candidates.begin(), candidates.end(),
                                    [](const NormConfig& c) { return c.strategy == S::one_pass; });
      CAPTURE(cols);
      CAPTURE(nlohmann::json(dt).dump());
      if (held)
        CHECK_FALSE(
            kiln::ops::detail::norm_backward_split(p, norm_backward_heuristic(p, candidates)));
    }
  }
}

TEST_CASE("backward: unsupported problems and configs are refused with the rule") {
  auto error_of_backward = [](const NormBackwardParams& p) -> std::string {
    try {
      validate_norm_backward(p);
    } catch (const kiln::Error& e) {
      return e.what();
    }
    return "";
  };
  CHECK(error_of_backward({NormKind::layer_norm, NormDType::f16, 4096, true, true, 10}).empty());
  CHECK(has(error_of_backward({NormKind::rms_norm, NormDType::f16, 4096, true, true, 10}),
            "RMSNorm has no bias, hence no dbias"));
  CHECK(has(error_of_backward({NormKind::rms_norm, NormDType::f16, 0, false, false, 10}),
            "cols = 0"));
  CHECK(has(error_of_backward({NormKind::layer_norm, NormDType::f64, 8, false, false, 10}),
            "dtype f64"));
  const NormBackwardParams p{NormKind::layer_norm, NormDType::f32, 4096, true, true, 100};
  std::string e;
  try {
    // 16 floats of h and of dy and two sums each: 256 bytes a thread in blocks of 256
    // (the forward's 64 bytes of the row are within its budget).
    validate_norm_backward_config(p, {NormStrategy::one_pass, 256, 4, 1, 4}, 32);
  } catch (const kiln::Error& error) {
    e = error.what();
  }
  CHECK(has(e, "kiln: layer_norm backward config {"));
  CHECK(has(e, "one_pass backward holds at most"));
  CHECK(has(e, "(h, dy and the f32 sums of dweight and dbias: 256 here)"));
}

TEST_CASE("backward: kernel names, header, JSON and hash") {
  using S = NormStrategy;
  CHECK(norm_backward_kernel_name({NormKind::layer_norm, NormDType::f16, 4096, true, true, 5},
                                  {S::one_pass, 256, 8, 1, 2}) ==
        "norm_backward__layer__f16__cols4096__dw_db__t256v8");
  CHECK(norm_backward_kernel_name({NormKind::rms_norm, NormDType::bf16, 128, true, false, 5},
                                  {S::one_pass, 16, 8, 8, 1}) ==
        "norm_backward__rms__bf16__cols128__dw__t16v8r8");
  CHECK(norm_backward_kernel_name({NormKind::layer_norm, NormDType::f32, 1 << 20, false, false, 5},
                                  {S::multi_pass, 1024, 4, 1, 4}) ==
        "norm_backward__layer__f32__cols1048576__multipass_t1024v4i4");
  CHECK(norm_backward_kernel_name({NormKind::layer_norm, NormDType::f32, 64, false, true, 5},
                                  {S::one_pass, 16, 4, 8, 1}) ==
        "norm_backward__layer__f32__cols64__db__t16v4r8");
  const NormBackwardParams p{NormKind::rms_norm, NormDType::f16, 4096, true, false, 77};
  const std::string h =
      kiln::ops::detail::norm_backward_spec(p, {S::one_pass, 512, 8, 1, 1}).header();
  CHECK(has(h, "using In = kiln::Tensor<const kiln::f16, kiln::Extent<COL, 4096>>;"));
  CHECK(has(h, "inline constexpr int kRms = 1;"));
  CHECK(has(h, "inline constexpr int kWeightGrad = 1;"));
  CHECK(has(h, "inline constexpr int kBiasGrad = 0;"));
  CHECK_FALSE(has(h, "77"));
  CHECK(nlohmann::json(p).dump() ==
        R"({"bias_grad":false,"cols":4096,"dtype":"f16","kind":"rms_norm","rows":77,)"
        R"("weight_grad":true})");
  CHECK(nlohmann::json(p).get<NormBackwardParams>() == p);
  std::unordered_set<std::size_t> hashes;
  const std::hash<NormBackwardParams> hash;
  NormBackwardParams q = p;
  hashes.insert(hash(q));
  q.weight_grad = false;
  hashes.insert(hash(q));
  q.bias_grad = true;
  hashes.insert(hash(q));
  q = p;
  q.rows = 78;
  hashes.insert(hash(q));
  q = p;
  q.kind = NormKind::layer_norm;
  hashes.insert(hash(q));
  CHECK(hashes.size() == 5);
  // The column sums: one config for a problem on a device, its name and its header.
  using kiln::ops::detail::column_sum_config;
  const kiln::ops::ColumnSumParams cs{NormDType::bf16, 1000};
  CHECK(kiln::ops::detail::column_sum_kernel_name(cs, {}) == "column_sum__bf16__cols1000");
  const std::string ch = kiln::ops::detail::column_sum_spec(cs, {}).header();
  CHECK(has(ch, "using Out = kiln::Tensor<kiln::bf16, kiln::Extent<COL, 1000>>;"));
  CHECK(has(ch, "inline constexpr int kGroups = 8;"));
  // 32 groups where the blocks of 32 columns are fewer than the SMs (32768 x 512's 16
  // blocks on 132 SMs), 8 from as many blocks as SMs on; 8 where the SMs are not known.
  CHECK(column_sum_config(512, 132).groups == 32);
  CHECK(column_sum_config(4192, 132).groups == 32);  // 131 blocks
  CHECK(column_sum_config(4193, 132).groups == 8);   // 132
  CHECK(column_sum_config(65536, 132).groups == 8);
  CHECK(column_sum_config(1, 0).groups == 8);
  CHECK(column_sum_config(512, 132).cols_per_block == 32);
  const kiln::ops::ColumnSumConfig g32 = column_sum_config(512, 132);
  CHECK(kiln::ops::detail::column_sum_kernel_name(cs, g32) == "column_sum__bf16__cols1000__g32");
  CHECK(has(kiln::ops::detail::column_sum_spec(cs, g32).header(),
            "inline constexpr int kGroups = 32;"));
  CHECK(kiln::ops::detail::column_sum_kernel_name(cs, {64, 8}) ==
        "column_sum__bf16__cols1000__w64");
  // Fewer partial rows than groups (a split backward's 2 or 4), rows of whole 4-float
  // vectors from a 16-byte aligned base: each thread 4 columns, a block 4 x 32 x 8 of them.
  using kiln::ops::detail::column_sum_blocks;
  using kiln::ops::detail::column_sum_few;
  alignas(16) static float rows[8];
  const kiln::ops::ColumnSumConfig g8{};
  CHECK(column_sum_few(g8, 1048576, 2, rows));
  CHECK(column_sum_blocks(g8, 1048576, 2, rows) == 1048576 / 1024);
  CHECK(column_sum_blocks(g8, 1000, 7, rows) == 1);
  CHECK_FALSE(column_sum_few(g8, 1048576, 8, rows));  // as many as the groups
  CHECK(column_sum_blocks(g8, 1048576, 8, rows) == 1048576 / 32);
  CHECK_FALSE(column_sum_few(g8, 1002, 2, rows));  // rows of 1002 floats
  CHECK(column_sum_blocks(g8, 1002, 2, rows) == 32);
  CHECK_FALSE(column_sum_few(g8, 1000, 2, rows + 2));  // an 8-byte aligned base
  CHECK(column_sum_few(g32, 512, 31, rows));
  CHECK(column_sum_blocks(g32, 512, 31, rows) == 1);
}

TEST_CASE("backward: the grid, capped with dweight or dbias, and the partial rows it leaves") {
  using S = NormStrategy;
  kiln::rt::DeviceProperties h200;
  h200.multiprocessors = 132;
  h200.max_threads_per_multiprocessor = 2048;
  using kiln::ops::detail::norm_backward_blocks;
  using kiln::ops::detail::norm_backward_min_blocks;
  using kiln::ops::detail::norm_backward_partial_floats;
  // Rows of 128 f16, 16 rows of 8 threads a block of 128: with the sums, 4 blocks an SM
  // (512 threads), in the launch bounds and in the grid; a partial row of each a block.
  const NormConfig short_rows{S::one_pass, 8, 8, 16, 2};
  NormBackwardParams p{NormKind::layer_norm, NormDType::f16, 128, true, true, 100000};
  CHECK(norm_backward_min_blocks(p, short_rows) == 4);
  CHECK(norm_backward_blocks(p, short_rows, h200) == 132 * 4);
  CHECK(has(kiln::ops::detail::norm_backward_spec(p, short_rows).header(),
            "inline constexpr int kMinBlocks = 4;"));
  CHECK(norm_backward_partial_floats(p, short_rows, 528) == 528 * 128 * 2);
  p.bias_grad = false;
  CHECK(norm_backward_partial_floats(p, short_rows, 528) == 528 * 128);
  // Without the sums, a block per row group and no bound; few rows, one block per group
  // either way.
  p.weight_grad = false;
  CHECK(norm_backward_min_blocks(p, short_rows) == 1);
  CHECK(norm_backward_blocks(p, short_rows, h200) == 6250);
  CHECK(norm_backward_partial_floats(p, short_rows, 6250) == 0);
  p.weight_grad = true;
  p.rows = 37;
  CHECK(norm_backward_blocks(p, short_rows, h200) == 3);
  p.rows = 0;
  CHECK(norm_backward_blocks(p, short_rows, h200) == 1);
  // More blocks than SMs only where each takes 4 row groups or more (fewer partial rows):
  // 4096 f16 by 256 threads, 2 blocks an SM, over 512, 1024 and 4096 rows.
  const NormConfig row_a_block{S::one_pass, 256, 8, 1, 2};
  p = {NormKind::layer_norm, NormDType::f16, 4096, true, true, 512};
  CHECK(norm_backward_min_blocks(p, row_a_block) == 2);
  CHECK(norm_backward_blocks(p, row_a_block, h200) == 132);
  p.rows = 1024;
  CHECK(norm_backward_blocks(p, row_a_block, h200) == 256);
  p.rows = 4096;
  CHECK(norm_backward_blocks(p, row_a_block, h200) == 264);
  p.rows = 100;
  CHECK(norm_backward_blocks(p, row_a_block, h200) == 100);
  // Long rows: a block of 1024 threads per row, one an SM.
  const NormConfig long_rows{S::multi_pass, 1024, 8, 1, 2};
  p = {NormKind::rms_norm, NormDType::bf16, 65536, true, false, 64};
  CHECK(norm_backward_min_blocks(p, long_rows) == 1);
  CHECK(norm_backward_blocks(p, long_rows, h200) == 64);
  p.rows = 100000;
  CHECK(norm_backward_blocks(p, long_rows, h200) == 132);
  // Clusters: whole clusters, a partial row each; as many as the driver fits where it says.
  const NormConfig halves{S::one_pass, 512, 8, 1, 2, 2};
  p = {NormKind::layer_norm, NormDType::f16, 16384, true, true, 4096};
  CHECK(norm_backward_blocks(p, halves, h200) == 132);
  CHECK(norm_backward_partial_floats(p, halves, 132) == 66 * 16384 * 2);
  CHECK(norm_backward_blocks(p, halves, h200, 60) == 120);
  const NormConfig eighths{S::one_pass, 1024, 8, 1, 1, 8};
  CHECK(norm_backward_blocks(p, eighths, h200) == 16 * 8);
  p.rows = 5;
  CHECK(norm_backward_blocks(p, eighths, h200) == 5 * 8);
  p.weight_grad = p.bias_grad = false;  // a cluster a row
  p.rows = 4096;
  CHECK(norm_backward_blocks(p, eighths, h200) == 4096 * 8);
}

TEST_CASE("backward: multi pass with dweight or dbias takes them from the weight-gradient kernel") {
  using S = NormStrategy;
  using kiln::ops::detail::norm_backward_split;
  using kiln::ops::detail::norm_weight_grad_grid;
  const NormConfig long_rows{S::multi_pass, 1024, 8, 1, 4};
  const NormConfig short_rows{S::one_pass, 256, 8, 1, 2};
  NormBackwardParams p{NormKind::layer_norm, NormDType::f16, 65536, true, true, 1024};
  CHECK(norm_backward_split(p, long_rows));
  CHECK_FALSE(norm_backward_split(p, short_rows));
  p.weight_grad = p.bias_grad = false;
  CHECK_FALSE(norm_backward_split(p, long_rows));  // dx alone: nothing to split
  p.bias_grad = true;
  CHECK(norm_backward_split(p, long_rows));
  // Its name and header: the backward's without a config part, blocks of 128 threads.
  p.weight_grad = true;
  CHECK(kiln::ops::detail::norm_weight_grad_kernel_name(p, {}) ==
        "norm_weight_grad__layer__f16__cols65536__dw_db");
  const std::string h = kiln::ops::detail::norm_weight_grad_spec(p, {}).header();
  CHECK(has(h, "inline constexpr int kThreadsPerRow = 128;"));
  CHECK(has(h, "inline constexpr int kUnroll = 4;"));
  CHECK(has(h, "inline constexpr int kVec = 8;"));
  CHECK(has(h, "inline constexpr int kWeightGrad = 1;"));
  // Row groups: 4 blocks an SM of 132 where the columns take fewer, groups of 16 rows or
  // more, every row in one group. 1024 x 65536 f16: 64 column blocks, 9 groups of 114.
  auto grid = norm_weight_grad_grid(p, {}, 132);
  CHECK(grid.groups == 9);
  CHECK(grid.rows_per_group == 114);
  // 64 x 2^20: 1024 column blocks fill the device; one group of all 64 rows.
  p.cols = 1 << 20;
  p.rows = 64;
  grid = norm_weight_grad_grid(p, {}, 132);
  CHECK(grid.groups == 1);
  CHECK(grid.rows_per_group == 64);
  // 37 rows of 16384: at most 3 groups (16 rows or more each), covering 37 rows.
  p.cols = 16384;
  p.rows = 37;
  grid = norm_weight_grad_grid(p, {}, 132);
  CHECK(grid.groups == 3);
  CHECK(grid.groups * grid.rows_per_group >= 37);
  CHECK((grid.groups - 1) * grid.rows_per_group < 37);
}

namespace {

// One config of every kind (as softmax_test's), spread over both norms, with and without
// the residual: sub-warp rows, a warp per row, rows over several warps, two passes,
// ragged rows, a row of 1, and the most a one-pass thread holds (no spills).
struct Case {
  NormParams p;
  NormConfig c;
};
std::vector<Case> every_kind() {
  using S = NormStrategy;
  using K = NormKind;
  std::vector<Case> out;
  for (auto dt : all_dtypes) {
    const int vec = dt == NormDType::f32 ? 4 : 8;
    const bool f16 = dt == NormDType::f16;
    out.push_back({{K::layer_norm, dt, 128, f16, 1}, {S::one_pass, 4, vec, 64, 128 / vec / 4}});
    out.push_back({{K::rms_norm, dt, 1024, !f16, 1}, {S::one_pass, 32, vec, 8, 1024 / vec / 32}});
    out.push_back(
        {{K::layer_norm, dt, 8192, !f16, 1}, {S::one_pass, 256, vec, 1, 8192 / vec / 256}});
    out.push_back({{K::rms_norm, dt, 65536, f16, 1}, {S::multi_pass, 1024, vec, 1, 2}});
  }
  out.push_back({{K::layer_norm, NormDType::bf16, 65536, true, 1}, {S::multi_pass, 512, 8, 1, 4}});
  out.push_back({{K::rms_norm, NormDType::f16, 1001, false, 1}, {S::one_pass, 64, 1, 2, 16}});
  out.push_back({{K::layer_norm, NormDType::bf16, 12345, false, 1}, {S::multi_pass, 256, 1, 1, 4}});
  out.push_back({{K::layer_norm, NormDType::f32, 1, true, 1}, {S::one_pass, 1, 1, 128, 1}});
  // The most a one-pass thread holds: 128 bytes of the row at 512 threads, 64 at 1024.
  out.push_back({{K::layer_norm, NormDType::f16, 32768, true, 1}, {S::one_pass, 512, 8, 1, 8}});
  out.push_back({{K::layer_norm, NormDType::f32, 16384, true, 1}, {S::one_pass, 1024, 4, 1, 4}});
  // Rows staged in shared memory: RMSNorm + residual (64 KiB of each), LayerNorm f32 (64 KiB),
  // LayerNorm bf16 + residual (32 KiB of each).
  out.push_back({{K::rms_norm, NormDType::f16, 32768, true, 1}, {S::staged, 1024, 8, 1, 4}});
  out.push_back({{K::layer_norm, NormDType::f32, 16384, false, 1}, {S::staged, 512, 4, 1, 8}});
  out.push_back({{K::layer_norm, NormDType::bf16, 16384, true, 1}, {S::staged, 512, 8, 1, 4}});
  // Staged rows of 256 KiB, each thread's last vectors held in registers: LayerNorm f32
  // by 1024 threads (4 held) and RMSNorm bf16 by 512 (8 held).
  NormConfig f32_held{S::staged, 1024, 4, 1, 16}, bf16_held{S::staged, 512, 8, 1, 32};
  f32_held.staged_held = 4;
  bf16_held.staged_held = 8;
  out.push_back({{K::layer_norm, NormDType::f32, 65536, false, 1}, f32_held});
  out.push_back({{K::rms_norm, NormDType::bf16, 131072, false, 1}, bf16_held});
  // Staged rows ahead: a persistent grid, each thread's copies round a ring.
  out.push_back({{K::layer_norm, NormDType::f16, 65536, false, 1},
                 {S::staged, 1024, 8, 1, 8, 1, 1, 132, 0, 4}});
  out.push_back({{K::rms_norm, NormDType::bf16, 32768, true, 1},
                 {S::staged, 1024, 8, 1, 4, 1, 1, 132, 0, 2}});
  // Split rows (a persistent grid, RMSNorm): f16 of 1M, 128 slices; bf16 of 1M by 256
  // threads; f32 of 1M, 256 slices; ragged slices (100000 columns); 16 vectors a thread.
  out.push_back(
      {{K::rms_norm, NormDType::f16, 1 << 20, false, 1}, {S::split, 128, 8, 1, 8, 1, 4, 528}});
  out.push_back(
      {{K::rms_norm, NormDType::bf16, 1 << 20, false, 1}, {S::split, 256, 8, 1, 8, 1, 2, 264}});
  out.push_back(
      {{K::rms_norm, NormDType::f32, 1 << 20, false, 1}, {S::split, 128, 4, 1, 8, 1, 4, 528}});
  out.push_back(
      {{K::rms_norm, NormDType::f32, 100000, false, 1}, {S::split, 64, 4, 1, 16, 1, 4, 528}});
  out.push_back(
      {{K::rms_norm, NormDType::f16, 100000, false, 1}, {S::split, 64, 8, 1, 8, 1, 8, 1056}});
  // Ringed (a ring of 3 slices in shared memory): each ring shape, both kinds, ragged
  // slices too.
  out.push_back(
      {{K::rms_norm, NormDType::f16, 1 << 20, false, 1}, {S::split, 256, 8, 1, 4, 1, 2, 264, 3}});
  out.push_back({{K::layer_norm, NormDType::bf16, 1 << 20, false, 1},
                 {S::split, 256, 8, 1, 8, 1, 1, 132, 3}});
  out.push_back(
      {{K::layer_norm, NormDType::f32, 100000, false, 1}, {S::split, 128, 4, 1, 8, 1, 2, 264, 3}});
  // Rings of 4 and 5 slices (copying 2 and 3 rounds ahead).
  out.push_back(
      {{K::layer_norm, NormDType::f16, 1 << 20, false, 1}, {S::split, 256, 8, 1, 8, 1, 1, 132, 5}});
  out.push_back(
      {{K::rms_norm, NormDType::bf16, 1 << 20, false, 1}, {S::split, 256, 8, 1, 4, 1, 2, 264, 4}});
  out.push_back(
      {{K::layer_norm, NormDType::f32, 100000, false, 1}, {S::split, 256, 4, 1, 4, 1, 2, 264, 5}});
  // LayerNorm's: 16-bit rows of 1M in 64 slices (4 slot words a lane, loaded early) and in
  // 128 (8 a lane, loaded after the slice's sums), f32 rows of 1M in 128, of 65536 in 16,
  // and ragged ones.
  out.push_back(
      {{K::layer_norm, NormDType::f16, 1 << 20, false, 1}, {S::split, 256, 8, 1, 8, 1, 2, 264}});
  out.push_back(
      {{K::layer_norm, NormDType::f16, 1 << 20, false, 1}, {S::split, 128, 8, 1, 8, 1, 4, 528}});
  out.push_back(
      {{K::layer_norm, NormDType::f32, 1 << 20, false, 1}, {S::split, 256, 4, 1, 8, 1, 2, 264}});
  out.push_back(
      {{K::layer_norm, NormDType::bf16, 1 << 20, false, 1}, {S::split, 256, 8, 1, 8, 1, 2, 264}});
  out.push_back(
      {{K::layer_norm, NormDType::f32, 65536, false, 1}, {S::split, 128, 4, 1, 8, 1, 4, 528}});
  out.push_back(
      {{K::layer_norm, NormDType::f32, 100000, false, 1}, {S::split, 64, 4, 1, 16, 1, 4, 528}});
  out.push_back(
      {{K::layer_norm, NormDType::bf16, 100000, false, 1}, {S::split, 64, 8, 1, 8, 1, 8, 1056}});
  // With the residual (h = x + residual written): unringed and ringed (x's ring, and one of
  // R - 1 slices of the residual's), both kinds, ragged slices too.
  out.push_back(
      {{K::rms_norm, NormDType::f16, 1 << 20, true, 1}, {S::split, 256, 8, 1, 8, 1, 2, 264}});
  out.push_back(
      {{K::layer_norm, NormDType::bf16, 1 << 20, true, 1}, {S::split, 128, 8, 1, 8, 1, 4, 528}});
  out.push_back(
      {{K::layer_norm, NormDType::f32, 100000, true, 1}, {S::split, 64, 4, 1, 16, 1, 4, 528}});
  out.push_back(
      {{K::rms_norm, NormDType::bf16, 1 << 20, true, 1}, {S::split, 256, 8, 1, 4, 1, 2, 264, 3}});
  out.push_back(
      {{K::layer_norm, NormDType::f16, 1 << 20, true, 1}, {S::split, 256, 8, 1, 8, 1, 1, 132, 3}});
  out.push_back(
      {{K::layer_norm, NormDType::bf16, 100000, true, 1}, {S::split, 128, 8, 1, 8, 1, 2, 264, 3}});
  out.push_back(
      {{K::rms_norm, NormDType::f32, 100000, true, 1}, {S::split, 128, 4, 1, 8, 1, 2, 264, 3}});
  // ... 256 x 4 alone with a ring of 5 (the residual's ring of 4), LayerNorm's 176 KiB ...
  out.push_back(
      {{K::layer_norm, NormDType::f16, 1 << 20, true, 1}, {S::split, 256, 8, 1, 4, 1, 1, 132, 5}});
  // ... and a ring of 4 (the residual's ring of 3), which an H200 SM does not hold by two.
  out.push_back(
      {{K::layer_norm, NormDType::bf16, 100000, true, 1}, {S::split, 128, 8, 1, 8, 1, 2, 264, 4}});
  return out;
}

/// Kernel source `file` with `spec` as its "spec.hpp", its entry named `name`.
kiln::jit::Program program_with(const char* file, kiln::gen::Spec spec, const std::string& name) {
  spec.kernel_name(name);
  kiln::jit::Program program = kiln::jit::program_from_file(file);
  program.headers.push_back({"spec.hpp", spec.header()});
  return program;
}

kiln::jit::Program program_for(const Case& k) {
  return program_with("norm.cu", kiln::ops::detail::norm_spec(k.p, k.c),
                      norm_kernel_name(k.p, k.c));
}

}  // namespace

TEST_CASE("NVRTC: every kind of config compiles for sm_80, sm_86, sm_89 and sm_90") {
  bool first = true;
  for (const auto& k : every_kind()) {
    validate_norm_config(k.p, k.c, 32);
    const std::string name = norm_kernel_name(k.p, k.c);
    CAPTURE(name);
    // No local memory in the PTX, and no spills: the row held in registers must stay there.
    // (LayerNorm bf16 kinds spilled 14 to 36 bytes a thread under the one-pass launch
    // bounds until bf16 pairs were converted as 32-bit words.) The kernel cache's
    // in-memory compile is checked on the first kind only.
    kiln_test::compile_for_nvidia_targets(program_for(k), name, first);
    first = false;
  }
}

#ifdef KILN_TEST_HIP_CLANG
TEST_CASE("gfx942: every kind of config compiles with clang's HIP mode (wavefronts of 64)") {
  kiln_test::TempDir dir("kiln-norm-hip");
  for (const auto& k : every_kind()) {
    if (k.c.threads_per_row * k.c.rows_per_block % 64 != 0) continue;
    if (k.c.strategy == NormStrategy::split) continue;  // NVIDIA GPUs only
    const std::string name = norm_kernel_name(k.p, k.c);
    CAPTURE(name);
    kiln_test::compile_for_gfx942(program_for(k), "norm.cu", name, dir);
  }
}
#endif

namespace {

// The backward kernel: one config of every kind, both norms, with and without the sums
// of dweight and dbias; the most a one-pass thread may hold (no spills).
struct BackwardCase {
  NormBackwardParams p;
  NormConfig c;
};
std::vector<BackwardCase> every_backward_kind() {
  using S = NormStrategy;
  using K = NormKind;
  std::vector<BackwardCase> out;
  for (auto dt : all_dtypes) {
    const int vec = dt == NormDType::f32 ? 4 : 8;
    const bool f16 = dt == NormDType::f16;
    out.push_back(
        {{K::layer_norm, dt, 128, true, f16, 1}, {S::one_pass, 16, vec, 16, 128 / vec / 16}});
    out.push_back(
        {{K::rms_norm, dt, 4096, !f16, false, 1}, {S::one_pass, 256, vec, 1, 4096 / vec / 256}});
    out.push_back({{K::layer_norm, dt, 65536, true, true, 1}, {S::multi_pass, 1024, vec, 1, 2}});
  }
  out.push_back(
      {{K::layer_norm, NormDType::f16, 1001, false, false, 1}, {S::one_pass, 64, 1, 2, 16}});
  out.push_back(
      {{K::rms_norm, NormDType::bf16, 12345, true, false, 1}, {S::multi_pass, 256, 1, 1, 4}});
  out.push_back({{K::layer_norm, NormDType::f32, 1, true, true, 1}, {S::one_pass, 1, 1, 128, 1}});
  // The most a one-pass thread holds: 192 bytes at 512 threads, 96 at 1024.
  out.push_back(
      {{K::layer_norm, NormDType::f16, 8192, true, true, 1}, {S::one_pass, 512, 8, 1, 2}});
  out.push_back(
      {{K::layer_norm, NormDType::f32, 4096, true, true, 1}, {S::one_pass, 1024, 4, 1, 1}});
  out.push_back(
      {{K::rms_norm, NormDType::bf16, 16384, false, false, 1}, {S::one_pass, 512, 8, 1, 4}});
  // Clusters (sm_90; on older targets their cluster calls compile to a trap): a row of
  // 16384 f16 in halves over 512 threads with both sums, of 65536 bf16 in eighths with
  // both, the most a thread holds, of 16384 f32 in quarters over 256 without sums.
  out.push_back(
      {{K::layer_norm, NormDType::f16, 16384, true, true, 1}, {S::one_pass, 512, 8, 1, 2, 2}});
  out.push_back(
      {{K::layer_norm, NormDType::bf16, 65536, true, true, 1}, {S::one_pass, 512, 8, 1, 2, 8}});
  out.push_back(
      {{K::layer_norm, NormDType::f32, 16384, false, false, 1}, {S::one_pass, 256, 4, 1, 4, 4}});
  // Split rows (grids for 132 SMs): each shape of split_backward_shapes, with both sums,
  // one, or none; a ragged last slice (bf16 100000: 13 slices of 1024 vectors); RMSNorm's
  // 256 slices of a row of 1M.
  out.push_back({{K::layer_norm, NormDType::f16, 1 << 20, true, true, 1},
                 {S::split, 256, 8, 1, 4, 1, 2, 256}});
  out.push_back({{K::rms_norm, NormDType::bf16, 1 << 20, true, false, 1},
                 {S::split, 128, 8, 1, 4, 1, 4, 512}});
  out.push_back({{K::layer_norm, NormDType::f32, 1 << 20, true, true, 1},
                 {S::split, 256, 4, 1, 8, 1, 1, 128}});
  out.push_back({{K::layer_norm, NormDType::bf16, 100000, false, true, 1},
                 {S::split, 128, 8, 1, 8, 1, 2, 260}});
  out.push_back({{K::layer_norm, NormDType::f16, 65536, false, false, 1},
                 {S::split, 256, 8, 1, 4, 1, 2, 264}});
  // Ringed split rows (rings of h and dy): LayerNorm f16 with both sums, a ring of 4;
  // RMSNorm bf16 with dweight, a ring of 5; LayerNorm f32 without sums on ragged slices,
  // 128 x 8 with a ring of 3.
  out.push_back({{K::layer_norm, NormDType::f16, 1 << 20, true, true, 1},
                 {S::split, 256, 8, 1, 4, 1, 1, 128, 4}});
  out.push_back({{K::rms_norm, NormDType::bf16, 1 << 20, true, false, 1},
                 {S::split, 256, 8, 1, 4, 1, 1, 128, 5}});
  out.push_back({{K::layer_norm, NormDType::f32, 100000, false, false, 1},
                 {S::split, 128, 4, 1, 8, 1, 1, 125, 3}});
  return out;
}

kiln::jit::Program backward_program_for(const BackwardCase& k) {
  return program_with("norm_backward.cu", kiln::ops::detail::norm_backward_spec(k.p, k.c),
                      norm_backward_kernel_name(k.p, k.c));
}

kiln::jit::Program column_sum_program(NormDType dt, int cols,
                                      const kiln::ops::ColumnSumConfig& c = {}) {
  const kiln::ops::ColumnSumParams p{dt, cols};
  return program_with("column_sum.cu", kiln::ops::detail::column_sum_spec(p, c),
                      kiln::ops::detail::column_sum_kernel_name(p, c));
}

kiln::jit::Program weight_grad_program(const NormBackwardParams& p) {
  return program_with("norm_weight_grad.cu", kiln::ops::detail::norm_weight_grad_spec(p, {}),
                      kiln::ops::detail::norm_weight_grad_kernel_name(p, {}));
}

// The weight-gradient kernel's kinds: both sums, one of them, f32, a row of one vector,
// ragged column blocks.
std::vector<NormBackwardParams> every_weight_grad_kind() {
  using K = NormKind;
  return {{K::layer_norm, NormDType::f16, 65536, true, true, 0},
          {K::layer_norm, NormDType::bf16, 16384, false, true, 0},
          {K::rms_norm, NormDType::f32, 100003, true, false, 0},
          {K::rms_norm, NormDType::bf16, 8, true, false, 0}};
}

}  // namespace

TEST_CASE("NVRTC: every kind of backward config compiles for sm_80, sm_86, sm_89 and sm_90") {
  for (const auto& k : every_backward_kind()) {
    validate_norm_backward_config(k.p, k.c, 32);
    const std::string name = norm_backward_kernel_name(k.p, k.c);
    CAPTURE(name);
    // No local-memory spills: h, dy and the sums held in registers stay there.
    kiln_test::compile_for_nvidia_targets(backward_program_for(k), name, false);
  }
  for (auto dt : all_dtypes) {
    kiln_test::compile_for_nvidia_targets(
        column_sum_program(dt, 1000),
        "column_sum__" + std::string(kiln::gen::to_string(dt)) + "__cols1000", false);
  }
  kiln_test::compile_for_nvidia_targets(column_sum_program(NormDType::f16, 512, {32, 32}),
                                        "column_sum__f16__cols512__g32", false);
  // Rows of whole 4-float vectors take the few-parts path too, 1002 columns do not.
  kiln_test::compile_for_nvidia_targets(column_sum_program(NormDType::bf16, 1002),
                                        "column_sum__bf16__cols1002", false);
  for (const auto& p : every_weight_grad_kind()) {
    const std::string name = kiln::ops::detail::norm_weight_grad_kernel_name(p, {});
    CAPTURE(name);
    kiln_test::compile_for_nvidia_targets(weight_grad_program(p), name, false);
  }
}

#ifdef KILN_TEST_HIP_CLANG
TEST_CASE("gfx942: every kind of backward config compiles with clang's HIP mode") {
  kiln_test::TempDir dir("kiln-norm-backward-hip");
  for (const auto& k : every_backward_kind()) {
    if (k.c.threads_per_row * k.c.rows_per_block % 64 != 0) continue;
    if (k.c.cluster_blocks > 1) continue;               // (NVIDIA's clusters)
    if (k.c.strategy == NormStrategy::split) continue;  // NVIDIA GPUs only
    const std::string name = norm_backward_kernel_name(k.p, k.c);
    CAPTURE(name);
    kiln_test::compile_for_gfx942(backward_program_for(k), "norm_backward.cu", name, dir);
  }
  kiln_test::compile_for_gfx942(column_sum_program(NormDType::bf16, 4096), "column_sum.cu",
                                "column_sum__bf16__cols4096", dir);
  kiln_test::compile_for_gfx942(column_sum_program(NormDType::f16, 512, {32, 32}), "column_sum.cu",
                                "column_sum__f16__cols512__g32", dir);
  for (const auto& p : every_weight_grad_kind()) {
    const std::string name = kiln::ops::detail::norm_weight_grad_kernel_name(p, {});
    CAPTURE(name);
    kiln_test::compile_for_gfx942(weight_grad_program(p), "norm_weight_grad.cu", name, dir);
  }
}
#endif

TEST_CASE("split rows: configs, their rules, the heuristic, names, header and launch") {
  using S = NormStrategy;
  const int sms = 132;
  for (auto kind : both_kinds) {
    for (auto dt : all_dtypes) {
      const int vec = dt == NormDType::f32 ? 4 : 8;
      for (int cols : kiln_test::split_test_cols) {
        const NormParams p{kind, dt, cols, false, 64};
        CAPTURE(nlohmann::json(p).dump());
        const auto split = norm_split_configs(p, 32, sms);
        // Rows of 64 KiB and more (LayerNorm's f32 rows of 1M too: 128 slices of 256 x 8
        // vectors, two slot words each, 8 a lane).
        const bool long_row = std::int64_t(cols) * kiln::gen::size_of(dt) >= 64 * 1024;
        CHECK(split.empty() == !long_row);
        std::set<std::string> names;
        for (const NormConfig& c : split) {
          CAPTURE(nlohmann::json(c).dump());
          CHECK_NOTHROW(validate_norm_config(p, c, 32));
          const auto lc = kiln::ops::detail::norm_launch(p, c);
          kiln_test::check_split_config(c, vec, sms, norm_split_slices(p, c), lc);
          // A slice's weight (and LayerNorm's bias) in shared memory: 128 KiB an SM for
          // LayerNorm, 64 KiB for RMSNorm, whatever the config; ringed ones add their ring
          // of 3 to 5 slices, within 228 KiB an SM.
          const int vectors = ((kind == NormKind::layer_norm ? 2 : 1) + c.split_ring) *
                              c.threads_per_row * c.vectors_per_thread;
          CHECK(lc.shared_bytes == unsigned(16 * vectors));
          if (c.split_ring == 0) {
            CHECK(std::int64_t(lc.shared_bytes) * c.blocks_per_sm <= 128 * 1024);
          } else {
            CHECK(c.split_ring >= 3);
            CHECK(c.split_ring <= 5);
            CHECK(c.blocks_per_sm * (std::int64_t(lc.shared_bytes) + 2048) <= 228 * 1024);
            const std::string name = norm_kernel_name(p, c);
            CHECK(name.substr(name.size() - 2) == "q" + std::to_string(c.split_ring));
          }
          CHECK(norm_split_slices(p, c) * norm_split_slot_words(p) <= 256);
          CHECK(names.insert(norm_kernel_name(p, c)).second);
          CHECK(kiln::ops::detail::norm_split_words(p, c) ==
                std::size_t(64 * norm_split_slices(p, c) * norm_split_slot_words(p)));
        }
        // With the residual: the same candidates, a ringed one's ring of R slices of x and
        // R - 1 of the residual's. None on 64-lane wavefronts.
        const NormParams with_residual{kind, dt, cols, true, 64};
        const auto residual_split = norm_split_configs(with_residual, 32, sms);
        CHECK(residual_split.empty() == !long_row);
        for (const NormConfig& c : residual_split) {
          CAPTURE(nlohmann::json(c).dump());
          CHECK_NOTHROW(validate_norm_config(with_residual, c, 32));
          const int ring = c.split_ring > 0 ? 2 * c.split_ring - 1 : 0;
          const int vectors = ((kind == NormKind::layer_norm ? 2 : 1) + ring) * c.threads_per_row *
                              c.vectors_per_thread;
          CHECK(kiln::ops::detail::norm_launch(with_residual, c).shared_bytes ==
                unsigned(16 * vectors));
        }
        const auto all_residual =
            kiln::ops::norm_factory().configs(with_residual, kiln_test::h200_properties());
        // Untuned, the ringed 256 x 8 by a block alone where no staged candidate holds the
        // row (x and the residual).
        const NormConfig h = norm_heuristic(with_residual, all_residual);
        const bool staged_residual =
            std::any_of(all_residual.begin(), all_residual.end(),
                        [](const NormConfig& c) { return c.strategy == S::staged; });
        CAPTURE(nlohmann::json(h).dump());
        kiln_test::check_split_heuristic(h, long_row && !staged_residual, 1);
        if (long_row && !staged_residual) CHECK(h.split_ring == 3);
        // What an H200 holds of the ringed shapes the rules allow: a block's weights (and
        // LayerNorm's bias) and its ring of R slices, with the residual R - 1 more, within
        // 227 KiB, and its blocks with 2 KiB each within 228 KiB an SM. (Without the
        // residual every ringed shape; with it the rings of 3 and 256 x 4 alone with rings
        // of 4 and 5.)
        std::size_t ringed = 0, ringed_residual = 0, held = 0, held_residual = 0;
        for (const NormConfig& c :
             kiln::ops::norm_factory().configs(p, kiln_test::h200_properties())) {
          ringed += c.split_ring > 0;
        }
        for (const NormConfig& c : all_residual) ringed_residual += c.split_ring > 0;
        for (const auto& t : kiln::ops::detail::split_ring_shapes) {
          if (!long_row) break;  // (no split candidates: rows under 64 KiB)
          NormConfig c{S::split, t[0], vec, 1, t[1], 1, t[2], sms * t[2]};
          c.split_ring = t[3];
          if (!kiln::ops::detail::split_rule_broken(cols, dt, c, 32, norm_split_slot_words(p), 8)
                   .empty()) {
            continue;
          }
          const std::int64_t slice = 16 * t[0] * t[1];
          const int weights = kind == NormKind::layer_norm ? 2 : 1;
          auto fits = [&](int slices) {
            const std::int64_t bytes = slices * slice;
            return bytes <= 227 * 1024 && t[2] * (bytes + 2048) <= 228 * 1024;
          };
          held += fits(weights + t[3]);
          held_residual += fits(weights + 2 * t[3] - 1);
        }
        CHECK(ringed == held);
        CHECK(ringed_residual == held_residual);
        CHECK((ringed > 0) == long_row);
        CHECK((ringed_residual > 0) == long_row);
        CHECK(norm_split_configs(p, 64, sms).empty());
        // Untuned, among what the factory offers on an H200: split where no staged
        // candidate holds the row (in shared memory, past 192 KiB partly in registers).
        const auto all = kiln::ops::norm_factory().configs(p, kiln_test::h200_properties());
        const bool staged = std::any_of(
            all.begin(), all.end(), [](const NormConfig& c) { return c.strategy == S::staged; });
        kiln_test::check_split_heuristic(norm_heuristic(p, all), long_row && !staged);
      }
    }
  }
  // LayerNorm f16 rows of 1M with the residual: the rings of 3, and 256 x 4 alone with
  // rings of 4 and 5 (2 + 7 and 2 + 9 slices of 16 KiB).
  {
    const NormParams ln{NormKind::layer_norm, NormDType::f16, 1 << 20, true, 64};
    std::vector<std::string> rings;
    for (const NormConfig& c :
         kiln::ops::norm_factory().configs(ln, kiln_test::h200_properties())) {
      const std::string name = norm_kernel_name(ln, c);
      if (c.split_ring > 0) rings.push_back(name.substr(name.rfind("__") + 2));
    }
    CHECK(rings == std::vector<std::string>{"split_t256v8i4b2q3", "split_t128v8i8b2q3",
                                            "split_t256v8i8b1q3", "split_t256v8i4b1q4",
                                            "split_t256v8i4b1q5"});
  }
  // 16-bit rows of 1M: 128 slices of 8192 elements by the heuristic's config.
  const NormParams p{NormKind::rms_norm, NormDType::f16, 1 << 20, false, 64};
  const NormConfig c{S::split, 128, 8, 1, 8, 1, 4, 528};
  CHECK(norm_split_slices(p, c) == 128);
  CHECK(norm_kernel_name(p, c) == "norm__rms__f16__cols1048576__split_t128v8i8b4");
  const std::string header = kiln::ops::detail::norm_spec(p, c).header();
  CHECK(header.find("NORM_SPLIT") != std::string::npos);
  CHECK(header.find("kSplitMinBlocks = 4") != std::string::npos);
  // JSON: the new fields round-trip; records without them read as 0.
  CHECK(nlohmann::json(c).get<NormConfig>() == c);
  nlohmann::json old = nlohmann::json(NormConfig{S::multi_pass, 1024, 8, 1, 8});
  old.erase("blocks_per_sm");
  old.erase("grid_blocks");
  CHECK(old.get<NormConfig>().grid_blocks == 0);
  // What the kernel cannot run is refused, naming the rule.
  auto refused = [&](const NormParams& q, NormConfig bad, const char* rule) {
    CAPTURE(std::string(rule));
    CHECK_THROWS_WITH_AS(validate_norm_config(q, bad, 32), doctest::Contains(rule), kiln::Error);
  };
  kiln_test::check_split_rules<NormConfig>(
      [&](const NormConfig& bad, const char* rule) { refused(p, bad, rule); });
  refused(p, {S::split, 96, 8, 1, 8, 1, 4, 528}, "64, 128 or 256 threads");
  // Rings of 3 to 5 slices, split configs' only; the heuristic takes none.
  refused(p, {S::split, 256, 8, 1, 4, 1, 2, 264, 2}, "split_ring is 0 (no ring) or 3 to 5");
  refused(p, {S::split, 256, 8, 1, 4, 1, 2, 264, 6}, "3 to 5 slices, not 6");
  CHECK_NOTHROW(validate_norm_config(p, {S::split, 256, 8, 1, 4, 1, 2, 264, 5}, 32));
  refused(p, {S::multi_pass, 1024, 8, 1, 8, 1, 0, 0, 3}, "split_ring are split configs'");
  CHECK(norm_heuristic(p, kiln::ops::norm_factory().configs(p, kiln_test::h200_properties()))
            .split_ring == 0);
  CHECK(norm_kernel_name(p, {S::split, 256, 8, 1, 4, 1, 2, 264, 3}) ==
        "norm__rms__f16__cols1048576__split_t256v8i4b2q3");
  // A split block keeps its slice's weight (and LayerNorm's bias) in shared memory: on an
  // SM of 100 KiB (sm_86, sm_89) LayerNorm keeps only the candidates whose blocks fit
  // (256 x 4 by two blocks: 64 KiB), RMSNorm all its unringed ones; the spec refuses the
  // others.
  {
    kiln::rt::DeviceProperties small = kiln_test::h200_properties();
    small.arch = "sm_89";
    small.compute_major = 8;
    small.shared_per_multiprocessor = 100 * 1024;
    small.shared_per_block_optin = 99 * 1024;
    const NormParams layer_f16{NormKind::layer_norm, NormDType::f16, 1 << 20, false, 64};
    std::size_t kept = 0;
    for (const NormConfig& k : kiln::ops::norm_factory().configs(layer_f16, small)) {
      if (k.strategy != S::split) continue;
      ++kept;
      CHECK(k.blocks_per_sm * (kiln::ops::detail::norm_split_shared_bytes(layer_f16, k) + 2048) <=
            100 * 1024);
    }
    CHECK(kept >= 1);
    CHECK(kept < norm_split_configs(layer_f16, 32, 132).size());
    std::size_t rms = 0, unringed = 0;
    for (const NormConfig& k : kiln::ops::norm_factory().configs(p, small)) {
      rms += k.strategy == S::split;
    }
    for (const NormConfig& k : norm_split_configs(p, 32, 132)) unringed += k.split_ring == 0;
    CHECK(rms >= unringed);  // (every unringed one; ringed ones where they fit)
    CHECK_THROWS_WITH_AS(kiln::ops::detail::norm_description().spec(
                             layer_f16, {S::split, 256, 8, 1, 8, 1, 2, 264}, small),
                         doctest::Contains("do not fit an SM"), kiln::Error);
  }
  refused({NormKind::rms_norm, NormDType::f16, (1 << 20) - 4, false, 64}, c, "must divide cols");
  // LayerNorm's slices take two slot words: 128 slices of 1M at most.
  const NormParams layer{NormKind::layer_norm, NormDType::f16, 1 << 20, false, 64};
  CHECK_NOTHROW(validate_norm_config(layer, c, 32));
  refused(layer, {S::split, 64, 8, 1, 8, 1, 8, 1056}, "8 slot words a lane");
  refused({NormKind::rms_norm, NormDType::f32, 1 << 20, false, 64},
          {S::split, 64, 4, 1, 8, 1, 8, 1056}, "8 slot words a lane");
  // The backward's split grid is a whole multiple of a row's slices: 512 is, for 256
  // slices of 128 x 4 vectors; 528 is not, for 128; and an SM holds at most 2048 vectors
  // of a slice.
  const NormBackwardParams rms_backward{NormKind::rms_norm, NormDType::f16, 1 << 20};
  CHECK_NOTHROW(kiln::ops::detail::validate_norm_backward_config(
      rms_backward, {S::split, 128, 8, 1, 4, 1, 4, 512}, 32));
  CHECK_THROWS_WITH_AS(kiln::ops::detail::validate_norm_backward_config(
                           rms_backward, {S::split, 128, 8, 1, 8, 1, 4, 512}, 32),
                       doctest::Contains("at most 2048 vectors of a slice"), kiln::Error);
  CHECK_THROWS_WITH_AS(kiln::ops::detail::validate_norm_backward_config(rms_backward, c, 32),
                       doctest::Contains("a whole multiple of a row's 128 slices"), kiln::Error);
}

TEST_CASE("backward split rows: candidates, their rules, names, launch and the heuristic") {
  using S = NormStrategy;
  using kiln::ops::detail::norm_backward_split_configs;
  using kiln::ops::detail::norm_backward_split_shared_bytes;
  namespace kd = kiln::ops::detail;
  kiln::rt::DeviceProperties h200 = kiln_test::h200_properties();
  h200.shared_per_multiprocessor = 228 * 1024;
  kiln::rt::DeviceProperties a100 = kiln_test::a100_properties();
  a100.shared_per_multiprocessor = 164 * 1024;
  for (auto kind : both_kinds) {
    for (auto dt : all_dtypes) {
      for (int cols : kiln_test::split_test_cols) {
        for (bool sums : {false, true}) {
          const NormBackwardParams p{kind, dt, cols, sums, sums && kind == NormKind::layer_norm,
                                     64};
          CAPTURE(nlohmann::json(p).dump());
          const bool long_row = std::int64_t(cols) * kiln::gen::size_of(dt) >= 64 * 1024;
          const auto split = norm_backward_split_configs(p, 32, 132, 228 * 1024, 227 * 1024);
          CHECK(split.empty() == !long_row);
          std::set<std::string> names;
          std::size_t ringed = 0;
          for (const NormConfig& c : split) {
            CAPTURE(nlohmann::json(c).dump());
            CHECK_NOTHROW(validate_norm_backward_config(p, c, 32));
            const std::int64_t slices = kd::norm_split_slices(kd::norm_forward(p), c);
            // A grid of whole multiples of a row's slices, resident on 132 SMs.
            CHECK(c.grid_blocks % slices == 0);
            CHECK(c.grid_blocks >= slices);
            CHECK(c.grid_blocks <= 132 * c.blocks_per_sm);
            CHECK(c.grid_blocks + slices > 132 * c.blocks_per_sm);  // the most that fit
            CHECK(c.blocks_per_sm * (norm_backward_split_shared_bytes(p, c) + 2048) <= 228 * 1024);
            CHECK(names.insert(norm_backward_kernel_name(p, c)).second);
            CHECK(names.begin()->find("__split_t") != std::string::npos);
            // Launched cooperatively on the grid, with its shared memory; a partial row of
            // each sum per group of a row's slices.
            const kiln::rt::LaunchConfig lc = kd::norm_backward_launch(p, c);
            CHECK(lc.cooperative);
            CHECK(lc.grid.x == unsigned(c.grid_blocks));
            CHECK(lc.block.x == unsigned(c.threads_per_row));
            CHECK(lc.shared_bytes == unsigned(norm_backward_split_shared_bytes(p, c)));
            CHECK(kd::norm_backward_blocks(p, c, h200) == c.grid_blocks);
            CHECK(kd::norm_backward_partial_rows(p, c, c.grid_blocks) == c.grid_blocks / slices);
            CHECK(kd::norm_backward_partial_floats(p, c, c.grid_blocks) ==
                  c.grid_blocks / slices * cols * (int(p.weight_grad) + int(p.bias_grad)));
            CHECK(kd::norm_backward_split_words(p, c) ==
                  std::size_t(64 * slices * (kind == NormKind::rms_norm ? 1 : 2)));
            const std::string header = kd::norm_backward_spec(p, c).header();
            CHECK(header.find("NORM_SPLIT") != std::string::npos);
            CHECK(header.find("kSplitMinBlocks = " + std::to_string(c.blocks_per_sm)) !=
                  std::string::npos);
            CHECK(header.find("kSplitRing = " + std::to_string(c.split_ring)) != std::string::npos);
            // Ringed: rings of h and dy of 3 to 5 slices each after the weights and sums,
            // in 227 KiB a block.
            const std::int64_t ring_bytes =
                2 * std::int64_t(c.split_ring) * c.threads_per_row * c.vectors_per_thread * 16;
            CHECK(norm_backward_split_shared_bytes(p, c) ==
                  kd::norm_backward_split_sums_bytes(p, c) + ring_bytes);
            CHECK(norm_backward_split_shared_bytes(p, c) <= 227 * 1024);
            ringed += c.split_ring > 0;
            if (c.split_ring > 0) {
              CHECK(c.split_ring >= 3);
              CHECK(c.split_ring <= 5);
              const std::string name = norm_backward_kernel_name(p, c);
              CHECK(name.substr(name.size() - 2) == "q" + std::to_string(c.split_ring));
            }
          }
          if (!long_row) CHECK(ringed == 0);
          // The factory offers them on NVIDIA GPUs of sm_80 and later where their shared
          // memory fits, never on 64-lane wavefronts; untuned, it never takes them.
          const auto all = kiln::ops::norm_backward_factory().configs(p, h200);
          CHECK(std::count_if(all.begin(), all.end(), [](const NormConfig& c) {
                  return c.strategy == S::split;
                }) == std::ptrdiff_t(split.size()));
          // Untuned, split only with the sums where no one-pass block or cluster holds the
          // row: LayerNorm's 256 x 4 by two blocks an SM, RMSNorm's 128 x 4 by four.
          const bool held = std::any_of(all.begin(), all.end(), [](const NormConfig& c) {
            return c.strategy == S::one_pass;
          });
          const NormConfig chosen = norm_backward_heuristic(p, all);
          CHECK((chosen.strategy == S::split) == (sums && long_row && !held));
          if (chosen.strategy == S::split) {
            const NormConfig* preferred = kind == NormKind::layer_norm
                                              ? kd::split_shaped(all, S::split, 256, 4, 2, 0)
                                              : kd::split_shaped(all, S::split, 128, 4, 4, 0);
            const auto first = std::find_if(all.begin(), all.end(), [](const NormConfig& c) {
              return c.strategy == S::split && c.split_ring == 0;
            });
            REQUIRE(first != all.end());
            CHECK(chosen == (preferred ? *preferred : *first));
            if (dt == NormDType::f16) CHECK(preferred);  // (as timed)
          }
          CHECK(norm_backward_split_configs(p, 64, 304, 64 * 1024, 64 * 1024).empty());
          for (const auto& c : kiln::ops::norm_backward_factory().configs(p, a100)) {
            if (c.strategy != S::split) continue;
            CHECK(c.blocks_per_sm * (norm_backward_split_shared_bytes(p, c) + 2048) <= 164 * 1024);
            CHECK(c.grid_blocks <= 108 * c.blocks_per_sm);
          }
          for (const auto& c :
               kiln::ops::norm_backward_factory().configs(p, kiln_test::mi300_properties())) {
            CHECK(c.strategy != S::split);
          }
        }
      }
    }
  }
  // LayerNorm f16 rows of 1M with both sums, 256 threads of 4 vectors, 2 blocks an SM:
  // 128 slices of 8192 elements, a grid of 256 (two groups of a row's slices), 16 KiB of
  // weights and 64 KiB of sums a block.
  const NormBackwardParams p{NormKind::layer_norm, NormDType::f16, 1 << 20, true, true, 64};
  const NormConfig c{S::split, 256, 8, 1, 4, 1, 2, 256};
  CHECK(kd::norm_split_slices(kd::norm_forward(p), c) == 128);
  CHECK(norm_backward_split_shared_bytes(p, c) == 16 * 1024 + 64 * 1024);
  CHECK(norm_backward_kernel_name(p, c) ==
        "norm_backward__layer__f16__cols1048576__dw_db__split_t256v8i4b2");
  const auto offered = norm_backward_split_configs(p, 32, 132, 228 * 1024, 227 * 1024);
  CHECK(std::find(offered.begin(), offered.end(), c) != offered.end());
  // What the kernel cannot run is refused, naming the rule.
  auto refused = [&](const NormBackwardParams& q, NormConfig bad, const char* rule) {
    CAPTURE(std::string(rule));
    CHECK_THROWS_WITH_AS(validate_norm_backward_config(q, bad, 32), doctest::Contains(rule),
                         kiln::Error);
  };
  refused(p, {S::split, 256, 8, 1, 4, 1, 2, 264}, "a whole multiple of a row's 128 slices");
  refused(p, {S::split, 256, 8, 1, 4, 1, 2, 64}, "fewer than a row's 128 slices");
  refused(p, {S::split, 256, 8, 1, 16, 1, 1, 128}, "more than 131072");
  refused(p, {S::split, 96, 8, 1, 4, 1, 2, 256}, "64, 128 or 256 threads");
  refused(p, {S::one_pass, 256, 8, 1, 4, 1, 2, 256}, "are split configs'");
  refused(p, {S::multi_pass, 1024, 8, 1, 8, 1, 0, 0, 3}, "split_ring is split configs'");
  refused(p, {S::split, 256, 8, 1, 4, 1, 1, 128, 6}, "3 to 5 slices, not 6");
  // Ringed: 256 x 4 alone with a ring of 4, 16 KiB of weights, 64 KiB of sums and two rings
  // of 4 slices of 16 KiB (208 KiB).
  const NormConfig ringed{S::split, 256, 8, 1, 4, 1, 1, 128, 4};
  CHECK_NOTHROW(validate_norm_backward_config(p, ringed, 32));
  CHECK(norm_backward_split_shared_bytes(p, ringed) == 208 * 1024);
  CHECK(norm_backward_kernel_name(p, ringed) ==
        "norm_backward__layer__f16__cols1048576__dw_db__split_t256v8i4b1q4");
  CHECK(std::find(offered.begin(), offered.end(), ringed) != offered.end());
  // Of the ringed shapes, LayerNorm's f16 rows of 1M with both sums take 256 x 4 with rings
  // of 3 and 4 and 128 x 8 with 4 (with 5, 240 KiB a block; 128 x 4 cuts a row into 256
  // slices, more slot words than a lane holds); RMSNorm's with dweight take them all.
  auto rings_offered = [](const std::vector<NormConfig>& v) {
    std::vector<std::pair<int, int>> out;
    for (const NormConfig& x : v) {
      if (x.split_ring > 0)
        out.emplace_back(x.threads_per_row * 10 + x.vectors_per_thread, x.split_ring);
    }
    return out;
  };
  CHECK(rings_offered(offered) ==
        std::vector<std::pair<int, int>>{{2564, 3}, {2564, 4}, {1288, 4}});
  const NormBackwardParams rms{NormKind::rms_norm, NormDType::f16, 1 << 20, true, false, 64};
  CHECK(rings_offered(norm_backward_split_configs(rms, 32, 132, 228 * 1024, 227 * 1024)).size() ==
        std::size(kd::norm_backward_ring_shapes));
  // The factory's spec refuses a config whose blocks the device's shared memory does not
  // hold, or whose grid is not resident at once, and split rows on AMD GPUs.
  auto spec_refused = [&](const kiln::rt::DeviceProperties& d, NormConfig bad, const char* rule) {
    CAPTURE(std::string(rule));
    CHECK_THROWS_WITH_AS(kd::norm_backward_description().spec(p, bad, d), doctest::Contains(rule),
                         kiln::Error);
  };
  kiln::rt::DeviceProperties small = h200;
  small.shared_per_multiprocessor = 100 * 1024;
  spec_refused(small, c, "do not fit an SM");
  spec_refused(h200, {S::split, 256, 8, 1, 4, 1, 1, 256}, "is not resident at once");
  CHECK_NOTHROW(kd::norm_backward_description().spec(p, c, h200));
}
