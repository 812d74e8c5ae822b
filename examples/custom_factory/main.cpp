// kiln custom_factory: a kernel kiln does not ship (transpose.cu, a tiled f32 transpose)
// made into a kernel factory with its own Params and Config, tuned, checked and timed;
// then its tuning results are exported for an application to ship and imported again.
// docs/factories.md walks through it. Without a GPU it compiles every config for sm_90.
//
//   custom_factory [EXPORT_FILE]     (KILN_TUNE=off|model|full; the default here is full)
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/factory/kernel_factory.hpp"
#include "kiln/jit.hpp"
#include "kiln/rt.hpp"

namespace transpose {

// ---- 1. What a problem is, and what a kernel can be tuned over ----

/// The problem: transpose a row-major (rows, cols) f32 matrix into a (cols, rows) one.
struct Params {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  bool operator==(const Params&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Params, rows, cols)

/// How the shared-memory tile avoids bank conflicts when it is read down a column.
enum class TileLayout { plain, padded, swizzled };
NLOHMANN_JSON_SERIALIZE_ENUM(TileLayout, {{TileLayout::plain, "plain"},
                                          {TileLayout::padded, "padded"},
                                          {TileLayout::swizzled, "swizzled"}})

/// One way to run it: a (tile x tile) block of the matrix per thread block, tile * block_rows
/// threads (each moves tile / block_rows elements), and the shared tile's layout.
struct Config {
  int tile = 32;
  int block_rows = 8;
  TileLayout layout = TileLayout::padded;
  bool operator==(const Config&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Config, tile, block_rows, layout)

// ---- 2. The factory: which configs exist, what each compiles to and how it launches ----

class TransposeFactory : public kiln::factory::KernelFactory<Params, Config> {
 public:
  /// Bump it whenever transpose.cu or the meaning of a Config changes: tuning results of
  /// another version are not used.
  static constexpr int kVersion = 1;

  TransposeFactory() : KernelFactory("transpose", kVersion, kernel_source()) {}

  void validate(const Params& p, const kiln::rt::DeviceProperties&) const override {
    if (p.rows < 1 || p.cols < 1) {
      throw kiln::Error("transpose: the matrix needs at least one row and one column, not " +
                        std::to_string(p.rows) + " x " + std::to_string(p.cols));
    }
    if (p.rows * p.cols > std::int64_t(INT32_MAX)) {
      throw kiln::Error("transpose: " + std::to_string(p.rows) + " x " + std::to_string(p.cols) +
                        " has more than 2^31 - 1 elements, past the 32-bit offsets of kiln's "
                        "tensors; transpose it in blocks of rows");
    }
  }

  std::vector<Config> configs(const Params&,
                              const kiln::rt::DeviceProperties& device) const override {
    std::vector<Config> out;
    for (int tile : {32, 64}) {
      for (int block_rows : {4, 8, 16, 32}) {
        // A block of more threads than the device allows would only be skipped when tuning.
        if (device.max_threads_per_block > 0 && tile * block_rows > device.max_threads_per_block)
          continue;
        for (TileLayout layout : {TileLayout::plain, TileLayout::padded, TileLayout::swizzled})
          out.push_back({tile, block_rows, layout});
      }
    }
    return out;
  }

  /// Under KILN_TUNE=off: the textbook choice, 32 x 32 tiles, 256 threads, padded.
  Config heuristic(const Params&, const std::vector<Config>&,
                   const kiln::rt::DeviceProperties&) const override {
    return {32, 8, TileLayout::padded};
  }

  kiln::gen::Spec spec(const Params&, const Config& c,
                       const kiln::rt::DeviceProperties&) const override {
    using namespace kiln::gen;
    const int pad = c.layout == TileLayout::padded ? 1 : 0;
    TensorSpec tile("Tile", DType::f32);
    if (pad > 0) {
      tile.dim("ROW", c.tile, Padding{pad});  // rows of tile + 1 floats: a column spans banks
    } else {
      tile.dim("ROW", c.tile);
    }
    tile.dim("COL", c.tile);
    if (c.layout == TileLayout::swizzled) {
      // Column bits [0, 5) ^= row bits: element (r, c) moves to column c ^ (r % 32).
      tile.swizzle(5, 0, log2(c.tile));
    }
    Spec s;
    s.dim("ROW")
        .dim("COL")
        .fold("ROW_TILE", "ROW", c.tile)
        .fold("COL_TILE", "COL", c.tile)
        .tensor(TensorSpec("In", DType::f32).read_only().dim("ROW", dynamic).dim("COL", dynamic))
        .tensor(TensorSpec("Out", DType::f32).dim("COL", dynamic).dim("ROW", dynamic))
        .tensor(tile)
        .compound_index("Blocks", {{"ROW_TILE", dynamic}, {"COL_TILE", dynamic}})
        .compound_index("LoadThreads", {{"ROW", c.block_rows}, {"COL", c.tile}})
        .compound_index("StoreThreads", {{"COL", c.block_rows}, {"ROW", c.tile}})
        .constant("kTile", c.tile)
        .constant("kBlockRows", c.block_rows)
        .constant("kTileFloats", c.tile * (c.tile + pad));
    return s;
  }

  kiln::rt::LaunchConfig launch_config(const Params& p, const Config& c,
                                       const kiln::rt::DeviceProperties&) const override {
    const std::int64_t tiles = ceil_div(p.rows, c.tile) * ceil_div(p.cols, c.tile);
    return {{unsigned(tiles)}, {unsigned(c.tile * c.block_rows)}};  // static shared memory only
  }

  /// "transpose__f32__t32x8_padded": what profiles and error messages show.
  std::string kernel_name(const Params&, const Config& c) const override {
    return "transpose__f32__t" + std::to_string(c.tile) + "x" + std::to_string(c.block_rows) + "_" +
           nlohmann::json(c.layout).get<std::string>();
  }

  /// One read and one write of the matrix.
  double bytes(const Params& p) const override {
    return 2.0 * double(p.rows) * double(p.cols) * sizeof(float);
  }

  TuningRun tuning_run(const Params& p, const kiln::rt::Device& device) const override {
    const auto n = std::size_t(p.rows * p.cols);
    auto in = std::make_shared<kiln::rt::DeviceBuffer<float>>(n, device);
    auto out = std::make_shared<kiln::rt::DeviceBuffer<float>>(n, device);
    in->fill_bytes(0);
    const int rows = int(p.rows), cols = int(p.cols);
    return [in, out, rows, cols](const KernelType& k, kiln::rt::StreamRef s) {
      k(s, *in, *out, rows, cols);
    };
  }

 private:
  static kiln::jit::Program kernel_source() {
    kiln::jit::Program program = kiln::jit::program_from_file(CUSTOM_FACTORY_KERNEL);
    program.name = "transpose.cu";  // messages name the file, not the whole path
    return program;
  }
  static std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
  static int log2(int n) {
    int bits = 0;
    while ((1 << bits) < n) ++bits;
    return bits;
  }
};

}  // namespace transpose

namespace {

using transpose::Config;
using transpose::Params;
using transpose::TransposeFactory;

/// A device that need not be here: what compiling every config for sm_90 needs to know.
kiln::rt::DeviceProperties sm90_device() {
  kiln::rt::DeviceProperties d;
  d.name = "sm_90 (no GPU here)";
  d.arch = "sm_90";
  d.warp_size = 32;
  d.max_threads_per_block = 1024;
  return d;
}

/// Without a GPU: compile every candidate, as tuning would, and report each.
int compile_only(const TransposeFactory& factory, const Params& p) {
  const kiln::rt::DeviceProperties device = sm90_device();
  const std::vector<Config> configs = factory.candidates(p, device);
  std::vector<kiln::jit::CompileRequest> requests;
  for (const Config& c : configs) requests.push_back(factory.compile_request(p, c, device));
  const auto t0 = std::chrono::steady_clock::now();
  const auto outcomes = kiln::jit::KernelCache::global().compile_all(requests);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  int failed = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = factory.kernel_name(p, configs[i]);
    if (outcomes[i].binary) {
      std::printf("  %-32s %zu-byte binary\n", name.c_str(), outcomes[i].binary->code.size());
      continue;
    }
    ++failed;
    try {
      std::rethrow_exception(outcomes[i].error);
    } catch (const std::exception& e) {
      std::printf("  %-32s FAILED:\n%s\n", name.c_str(), e.what());
    }
  }
  const auto st = kiln::jit::KernelCache::global().stats();
  std::printf("%zu configs for sm_90 in %.0f ms (%llu compiled, %llu from the disk cache)\n",
              configs.size(), ms, static_cast<unsigned long long>(st.compiles),
              static_cast<unsigned long long>(st.disk_hits));
  if (failed > 0) {
    std::printf("%d of %zu configs did not compile\n", failed, configs.size());
    return 1;
  }
  std::printf("no GPU found: compiled every config only (this is fine on a machine without one)\n");
  return 0;
}

/// Prints every candidate of the tuning database's entry for `p` on `device`.
void print_tuning(TransposeFactory& factory, const Params& p, const kiln::rt::Device& device) {
  const auto entry = factory.database().find(factory.tuning_key(p, device));
  if (!entry) {
    std::printf(
        "the tuning database has no entry for this problem (KILN_TUNE=off chose the "
        "heuristic without timing)\n");
    return;
  }
  std::printf("tuning record (%s, %s), %zu candidates:\n", entry->policy.c_str(),
              entry->when.c_str(), entry->candidates.size());
  for (const auto& c : entry->candidates) {
    const std::string name = factory.kernel_name(p, c.config.get<Config>());
    const char* mark = c.config == entry->best ? "  <- best" : "";
    if (c.status == kiln::factory::CandidateStatus::timed) {
      std::printf("  %-32s %9.2f us  %7.1f GB/s  +-%.1f%%%s\n", name.c_str(), c.time_us,
                  factory.bytes(p) / (c.time_us * 1e3), 100 * c.spread, mark);
    } else {
      std::printf("  %-32s %s: %s\n", name.c_str(), kiln::factory::to_string(c.status),
                  c.reason.c_str());
    }
  }
}

/// Runs `k` on fresh random data, the output poisoned with NaN first; checks every element
/// against the CPU and times it. Returns the number of wrong elements.
std::size_t run_and_check(const TransposeFactory::KernelType& k, const kiln::rt::Device& device) {
  const Params& p = k.params();
  const auto rows = std::size_t(p.rows), cols = std::size_t(p.cols);
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-1000.0f, 1000.0f);
  std::vector<float> in(rows * cols);
  for (auto& v : in) v = dist(rng);

  kiln::rt::DeviceBuffer<float> d_in(in.size(), device), d_out(in.size(), device);
  d_in.copy_from(in);
  d_out.fill_bytes(0xff);  // NaN: an element the kernel misses cannot pass
  kiln::rt::Stream stream(device);
  k(stream, d_in, d_out, int(p.rows), int(p.cols));
  stream.synchronize();

  const std::vector<float> out = d_out.to_vector();
  std::size_t wrong = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      const float want = in[r * cols + c], got = out[c * rows + r];
      if (!(got == want)) {  // a copy is exact; NaN never passes
        if (wrong++ < 5)
          std::printf("  out[%zu][%zu] = %g, want %g\n", c, r, double(got), double(want));
      }
    }
  }

  constexpr int runs = 20;
  kiln::rt::Event start(device), stop(device);
  start.record(stream);
  for (int i = 0; i < runs; ++i) k(stream, d_in, d_out, int(p.rows), int(p.cols));
  stop.record(stream);
  stop.synchronize();
  const double us = 1e3 * double(stop.elapsed_ms_since(start)) / runs;
  std::printf("%s: %lld x %lld, %zu elements wrong; %.2f us a run, %.1f GB/s (%s)\n",
              k.name().c_str(), static_cast<long long>(p.rows), static_cast<long long>(p.cols),
              wrong, us, k.launch_info().bytes / (us * 1e3), wrong == 0 ? "correct" : "WRONG");
  return wrong;
}

/// The "ship it" step: the tuning results go to `file`; an application would import them
/// at start-up, so that its first get() of a shipped problem times nothing.
void export_and_import(TransposeFactory& factory, const Params& p, const kiln::rt::Device& device,
                       const std::filesystem::path& file) {
  const std::size_t n = factory.database().export_to(file, factory.name());
  std::printf("exported %zu tuning entr%s of '%s' to %s\n", n, n == 1 ? "y" : "ies",
              factory.name().c_str(), file.string().c_str());

  // What an application does with it. Here into a database in memory, to leave this
  // machine's own alone; an application would call
  // kiln::factory::TuningDatabase::global().import_from(file) once at start-up.
  kiln::factory::TuningDatabase shipped{std::filesystem::path()};
  shipped.import_from(file);
  TransposeFactory app;
  app.set_database(&shipped);
  auto o = app.tune_options();
  o.policy = kiln::factory::TunePolicy::off;  // no timing: the database, else the heuristic
  app.set_tune_options(o);
  const auto& k = app.get(p, device);
  std::printf("an application importing it gets %s (chosen by: %s)\n", k.name().c_str(),
              kiln::factory::to_string(k.selected_by()));
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc > 2) {
    std::fprintf(stderr, "usage: %s [EXPORT_FILE]\n", argv[0]);
    return 2;
  }
  TransposeFactory factory;
  if (const char* v = std::getenv("KILN_TUNE"); !v || !*v) {
    auto o = factory.tune_options();  // KILN_TUNE_TOP_K and the rest as the environment says
    o.policy = kiln::factory::TunePolicy::full;
    factory.set_tune_options(o);
  }
  // Not multiples of any tile, so the edge tiles are checked too.
  const Params p{6000, 4001};

  if (kiln::rt::device_count() == 0) return compile_only(factory, p);

  kiln::rt::Device device(0);
  std::printf("%s (%s), tuning policy: %s\n", device.properties().name.c_str(),
              device.arch().c_str(), kiln::factory::to_string(factory.tune_options().policy));
  const auto t0 = std::chrono::steady_clock::now();
  const auto& k = factory.get(p, device);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("get(): %s, chosen by %s in %.2f s\n", k.name().c_str(),
              kiln::factory::to_string(k.selected_by()), s);
  print_tuning(factory, p, device);

  const std::size_t wrong = run_and_check(k, device);
  if (argc == 2) {
    export_and_import(factory, p, device, argv[1]);
  } else {
    std::printf("(pass a file name to export the tuning results for an application to ship)\n");
  }
  return wrong == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
