// kiln::factory::Factory without a GPU: a description becomes a KernelFactory whose hooks
// are the description's callables (with or without the device's properties), what it
// lacks is named, and every config compiles through NVRTC.
#include <doctest/doctest.h>

#include <string>

#include "axpy_factory.hpp"
#include "kiln/jit/kernel_cache.hpp"
#include "scale_factory.hpp"

using axpy_test::Config;
using axpy_test::Params;
using Description = kiln::factory::Factory<Params, Config>::Description;

TEST_CASE("a described factory answers every hook from its callables or the defaults") {
  kiln::factory::Factory<Params, Config> f(axpy_test::description());
  const auto dev = factory_test::fake_device();
  const Params p{1000};
  CHECK(f.name() == "axpy");
  CHECK(f.version() == 1);
  CHECK(f.program().name == "kernels/axpy_in_place.cu");
  CHECK(f.candidates(p, dev).size() == 4);
  CHECK(f.heuristic(p, f.candidates(p, dev), dev) == Config{64, 1});  // the first, by default
  const auto lc = f.launch_config(p, Config{256, 4}, dev);
  CHECK(lc.grid.x == 1u);
  CHECK(lc.block.x == 256u);
  CHECK(f.bytes(p) == 12000.0);
  CHECK(f.flops(p) == 0.0);
  CHECK(f.options(p, Config{}, dev).target == "sm_90");
  CHECK(f.kernel_name(p, Config{256, 4}) == "axpy__1000__256_4");
  CHECK_THROWS_WITH_AS(f.candidates(Params{0}, dev), doctest::Contains("n must be"), kiln::Error);
}

TEST_CASE("callables that take the device's properties get them") {
  Description d = axpy_test::description();
  d.configs = [](const Params&, const kiln::rt::DeviceProperties& dev) {
    return std::vector<Config>{{dev.max_threads_per_block, 1}};
  };
  d.heuristic = [](const Params&, const std::vector<Config>& c) { return c.back(); };
  d.kernel_name = [](const Params&, const Config& c) {
    return "axpy_t" + std::to_string(c.threads);
  };
  kiln::factory::Factory<Params, Config> f(d);
  const auto dev = factory_test::fake_device();
  REQUIRE(f.candidates(Params{8}, dev).size() == 1);
  CHECK(f.candidates(Params{8}, dev)[0].threads == 1024);
  CHECK(f.kernel_name(Params{8}, Config{1024, 1}) == "axpy_t1024");
}

TEST_CASE("what a description lacks is named") {
  Description d = axpy_test::description();
  d.spec = {};
  d.launch = {};
  CHECK_THROWS_WITH_AS((kiln::factory::Factory<Params, Config>(d)),
                       doctest::Contains("without: spec launch"), kiln::Error);
  Description none = axpy_test::description();
  none.source.clear();
  CHECK_THROWS_WITH_AS((kiln::factory::Factory<Params, Config>(none)),
                       doctest::Contains("no kernel source"), kiln::Error);
  Description missing = axpy_test::description();
  missing.source = "no_such_kernel.cu";
  CHECK_THROWS_WITH_AS((kiln::factory::Factory<Params, Config>(missing)),
                       doctest::Contains("not found"), kiln::Error);
  Description bad_name = axpy_test::description();
  bad_name.name = "not an identifier";
  CHECK_THROWS_WITH_AS((kiln::factory::Factory<Params, Config>(bad_name)),
                       doctest::Contains("C++ identifier"), kiln::Error);
}

TEST_CASE("a config's own source must be one the description lists") {
  const auto dev = factory_test::fake_device();
  Description d = axpy_test::description();
  d.source_of = [](const Params&, const Config& c) {
    return std::string(c.threads == 64 ? "kernels/axpy_in_place.cu" : "elsewhere.cu");
  };
  kiln::factory::Factory<Params, Config> f(d);
  CHECK(f.compile_request(Params{1000}, Config{64, 1}, dev).program.source == f.program().source);
  CHECK_THROWS_WITH_AS(f.compile_request(Params{1000}, Config{128, 1}, dev),
                       doctest::Contains("neither .source nor one of .more_sources"), kiln::Error);
  Description missing = axpy_test::description();
  missing.more_sources = {"no_such_kernel.cu"};
  CHECK_THROWS_WITH_AS((kiln::factory::Factory<Params, Config>(missing)),
                       doctest::Contains("not found"), kiln::Error);
}

TEST_CASE("every config of a described factory compiles for sm_80 and sm_90") {
  kiln::factory::Factory<Params, Config> f(axpy_test::description());
  for (const char* arch : {"sm_80", "sm_90"}) {
    const auto dev = factory_test::fake_device(arch);
    std::vector<kiln::jit::CompileRequest> requests;
    for (const Config& c : f.candidates(Params{4096}, dev)) {
      requests.push_back(f.compile_request(Params{4096}, c, dev));
    }
    for (const auto& outcome : kiln::jit::KernelCache::global().compile_all(requests)) {
      REQUIRE(outcome.binary);
      CHECK(outcome.binary->target == arch);
    }
  }
}
