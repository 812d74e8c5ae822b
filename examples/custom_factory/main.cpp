// kiln custom_factory: a kernel kiln does not ship (transpose.cu, a tiled f32 transpose)
// made into a tuned kernel factory from a description, launched, checked against the CPU;
// then its tuning results exported for an application to ship and imported again.
// docs/factories.md walks through it. Without a GPU it compiles every config for sm_90.
//
//   custom_factory [EXPORT_FILE]     (KILN_TUNE=off|model|full; the default here is full)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kiln/kiln.hpp"

// The kernel's tensors: a (ROW: rows, COL: cols) matrix in, its (COL, ROW) transpose out.
KILN_DIM(ROW);
KILN_DIM(COL);
using In =
    kiln::Tensor<const float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL, kiln::dynamic>>;
using Out = kiln::Tensor<float, kiln::Extent<COL, kiln::dynamic>, kiln::Extent<ROW, kiln::dynamic>>;

/// The problem, and one way to run it: a (tile x tile) block of the matrix per thread block
/// of tile * block_rows threads, its shared tile plain, padded or swizzled (bank conflicts).
struct Params {
  std::int64_t rows = 0, cols = 0;
  bool operator==(const Params&) const = default;
};
struct Config {
  int tile = 32, block_rows = 8;
  std::string layout = "padded";  // of the shared tile: "plain", "padded" or "swizzled"
  bool operator==(const Config&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Params, rows, cols)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Config, tile, block_rows, layout)

/// The header of one config: the tensors, the shared tile's layout, and how threads and
/// blocks divide the matrix (transpose.cu says how it uses each).
kiln::gen::Spec transpose_spec(const Params&, const Config& c) {
  using namespace kiln::gen;
  const int pad = c.layout == "padded" ? 1 : 0;  // rows of tile + 1: a column spans banks
  TensorSpec tile("Tile", DType::f32);
  tile.dim("ROW", c.tile, Padding{pad}).dim("COL", c.tile);
  if (c.layout == "swizzled") tile.swizzle(5, 0, c.tile == 32 ? 5 : 6);  // col ^= row % 32
  Spec s;
  s.tensor<In>("In").tensor<Out>("Out").tensor(tile);
  s.fold("ROW_TILE", "ROW", c.tile).fold("COL_TILE", "COL", c.tile);
  s.compound_index("Blocks", {{"ROW_TILE", dynamic}, {"COL_TILE", dynamic}});
  s.compound_index("LoadThreads", {{"ROW", c.block_rows}, {"COL", c.tile}});
  s.compound_index("StoreThreads", {{"COL", c.block_rows}, {"ROW", c.tile}});
  s.constant("kTile", c.tile).constant("kBlockRows", c.block_rows);
  s.constant("kTileFloats", c.tile * (c.tile + pad));
  return s;
}

using TransposeFactory = kiln::factory::Factory<Params, Config>;
TransposeFactory::Description describe_transpose() {
  return {
      .name = "transpose",
      .source = "transpose.cu",  // beside this file
      .configs =
          [](const Params&) {
            std::vector<Config> out;
            for (int tile : {32, 64})
              for (int block_rows : {4, 8, 16})
                for (const char* layout : {"plain", "padded", "swizzled"})
                  out.push_back({tile, block_rows, layout});
            return out;
          },
      .spec = transpose_spec,
      .launch =
          [](const Params& p, const Config& c) {
            auto tiles = [&](std::int64_t n) { return (n + c.tile - 1) / c.tile; };
            return kiln::rt::LaunchConfig(tiles(p.rows) * tiles(p.cols), c.tile * c.block_rows);
          },
      .validate =
          [](const Params& p) {
            if (p.rows < 1 || p.cols < 1 || p.rows * p.cols > INT32_MAX)  // 32-bit offsets
              throw kiln::Error("transpose: 1 to 2^31 - 1 elements, not " +
                                nlohmann::json(p).dump());
          },
      .heuristic =
          [](const Params&, const std::vector<Config>&) {
            return Config{32, 8, "padded"};
          },
      .bytes = [](const Params& p) { return 8.0 * double(p.rows * p.cols); },  // read + write
  };
}

int compile_only(TransposeFactory& transpose, const Params& p);  // below
void print_tuning(TransposeFactory& transpose, const Params& p);
void export_and_import(TransposeFactory& transpose, const Params& p, const char* file);

int main(int argc, char** argv) try {
  TransposeFactory transpose(describe_transpose());
  if (!std::getenv("KILN_TUNE")) {  // time every candidate unless the environment says
    auto o = transpose.tune_options();
    o.policy = kiln::factory::TunePolicy::full;
    transpose.set_tune_options(o);
  }
  const Params p{6000, 4001};  // not multiples of any tile: the edge tiles are checked too
  const int rows = int(p.rows), cols = int(p.cols);
  if (kiln::rt::device_count() == 0) return compile_only(transpose, p);

  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-1000.0f, 1000.0f);
  std::vector<float> in(std::size_t(rows) * std::size_t(cols));
  for (auto& v : in) v = dist(rng);
  kiln::rt::DeviceBuffer<float> d_in(in.size()), d_out(in.size());
  d_in.copy_from(in);
  d_out.fill_bytes(0xff);  // NaN: an element the kernel misses cannot pass
  kiln::rt::Stream stream;
  // The first call tunes (timing every config on these arguments), then launches the best.
  transpose(stream, p, In(d_in.data(), ROW(rows), COL(cols)),
            Out(d_out.data(), COL(cols), ROW(rows)));
  stream.synchronize();

  // Every element against the CPU (a copy is exact; NaN never passes).
  const std::vector<float> out = d_out.to_vector();
  std::size_t wrong = 0;
  for (std::size_t r = 0; r < std::size_t(rows); ++r) {
    for (std::size_t c = 0; c < std::size_t(cols); ++c) {
      if (!(out[c * std::size_t(rows) + r] == in[r * std::size_t(cols) + c])) ++wrong;
    }
  }
  const auto& k = transpose.get(p);  // the kernel the first call chose (a memo hit)
  std::printf("%s, chosen by %s: %d x %d, %zu elements wrong (%s)\n", k.name().c_str(),
              kiln::factory::to_string(k.selected_by()), rows, cols, wrong,
              wrong == 0 ? "correct" : "WRONG");
  print_tuning(transpose, p);
  if (argc == 2) export_and_import(transpose, p, argv[1]);
  return wrong == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}

/// Without a GPU: every config compiled for sm_90 (in parallel, through the caches), as
/// tuning would, each reported.
int compile_only(TransposeFactory& transpose, const Params& p) {
  kiln::rt::DeviceProperties sm90;
  sm90.name = "sm_90 (no GPU here)";
  sm90.arch = "sm_90";
  sm90.warp_size = 32;
  sm90.max_threads_per_block = 1024;
  std::vector<Config> configs = transpose.candidates(p, sm90);
  std::vector<kiln::jit::CompileRequest> requests;
  for (const Config& c : configs) requests.push_back(transpose.compile_request(p, c, sm90));
  const auto outcomes = kiln::jit::KernelCache::global().compile_all(requests);
  int failed = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = transpose.kernel_name(p, configs[i]);
    if (outcomes[i].binary) {
      std::printf("  %-40s %zu-byte binary\n", name.c_str(), outcomes[i].binary->code.size());
      continue;
    }
    ++failed;
    try {
      std::rethrow_exception(outcomes[i].error);
    } catch (const std::exception& e) {
      std::printf("  %-40s FAILED:\n%s\n", name.c_str(), e.what());
    }
  }
  std::printf("%zu configs compiled for sm_90, %d failed; no GPU found, so nothing ran\n",
              configs.size(), failed);
  return failed == 0 ? 0 : 1;
}

/// Every candidate of the tuning database's entry for `p` on device 0.
void print_tuning(TransposeFactory& transpose, const Params& p) {
  const auto entry = transpose.database().find(transpose.tuning_key(p, kiln::rt::Device(0)));
  if (!entry) {
    std::printf("no tuning record for this problem (KILN_TUNE=off: the heuristic, untimed)\n");
    return;
  }
  std::printf("tuning record (%s, %s), %zu candidates:\n", entry->policy.c_str(),
              entry->when.c_str(), entry->candidates.size());
  for (const auto& c : entry->candidates) {
    const std::string name = transpose.kernel_name(p, c.config.get<Config>());
    const char* mark = c.config == entry->best ? "  <- best" : "";
    if (c.status == kiln::factory::CandidateStatus::timed) {
      std::printf("  %-40s %9.2f us  %7.1f GB/s  +-%.1f%%%s\n", name.c_str(), c.time_us,
                  transpose.bytes(p) / (c.time_us * 1e3), 100 * c.spread, mark);
    } else {
      std::printf("  %-40s %s: %s\n", name.c_str(), kiln::factory::to_string(c.status),
                  c.reason.c_str());
    }
  }
}

/// The "ship it" step: the tuning results go to `file`; an application imports them at
/// start-up (kiln::factory::TuningDatabase::global().import_from(file)), so that its first
/// call for a shipped problem times nothing. Here into a database in memory, to leave this
/// machine's own alone.
void export_and_import(TransposeFactory& transpose, const Params& p, const char* file) {
  const std::size_t n = transpose.database().export_to(file, transpose.name());
  std::printf("exported %zu tuning entr%s of '%s' to %s\n", n, n == 1 ? "y" : "ies",
              transpose.name().c_str(), file);
  kiln::factory::TuningDatabase shipped{std::filesystem::path()};
  shipped.import_from(file);
  TransposeFactory app(describe_transpose());
  app.set_database(&shipped);
  auto o = app.tune_options();
  o.policy = kiln::factory::TunePolicy::off;  // no timing: the database, else the heuristic
  app.set_tune_options(o);
  const auto& k = app.get(p);
  std::printf("an application importing it gets %s (chosen by: %s)\n", k.name().c_str(),
              kiln::factory::to_string(k.selected_by()));
}
