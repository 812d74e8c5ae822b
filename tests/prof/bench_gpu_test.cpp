// kiln/prof/bench.hpp on a GPU: a 256 MiB device-to-device copy, with and without the L2
// flush, against the device's peak bandwidth. Skips (exit 77) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "kiln/prof/bench.hpp"
#include "kiln/rt.hpp"

using namespace kiln;
using namespace kiln::prof;

namespace {

constexpr std::size_t copy_bytes = std::size_t{256} << 20;

bool stated_reason(const std::string& r) {
  return r.rfind("noise ", 0) == 0 || r.rfind("time budget ", 0) == 0 ||
         r.rfind("max samples ", 0) == 0;
}

BenchOptions options(bool flush) {
  BenchOptions o;
  o.stop.max_seconds = 2;
  o.flush_l2 = flush;
  return o;
}

}  // namespace

TEST_CASE("a 256 MiB device-to-device copy, L2 flushed and not") {
  rt::Device device(0);
  const auto& p = device.properties();
  const double peak = p.peak_bandwidth();
  REQUIRE(peak > 0);
  rt::DeviceBuffer<unsigned char> src(copy_bytes, device), dst(copy_bytes, device);
  src.fill_bytes(0x5a);
  dst.fill_bytes(0);

  for (bool flush : {true, false}) {
    CAPTURE(flush);
    Bench bench(options(flush));
    bench.add(
        "copy 256 MiB", [&](rt::StreamRef s) { dst.copy_from(src, s); },
        2.0 * static_cast<double>(copy_bytes));
    const auto results = bench.run();
    MESSAGE("\n" << markdown(results));
    REQUIRE(results.size() == 1);
    const Result& r = results[0];
    CHECK(r.stats_us.median > 0);
    CHECK(r.stats_us.count >= BenchOptions{}.stop.min_samples);
    CHECK(stated_reason(r.stop_reason));
    CHECK(r.is_baseline);
    CHECK(r.ratio_to_baseline == 1.0);
    CHECK(r.device == p.name);
    CHECK(r.peak_bandwidth == peak);
    CHECK(r.l2_flushed == flush);
    CHECK(r.gbps() * 1e9 < peak);
    CHECK(r.gbps() * 1e9 > 0.2 * peak);
    CHECK(r.percent_of_peak() > 20);
    CHECK(r.percent_of_peak() < 100);
    CHECK(bench.flush_bytes() == (flush ? Bench::flush_bytes_for(p.l2_bytes) : 0));

    // The copy did its work, and the flush buffer is not the destination.
    const std::vector<unsigned char> out = dst.to_vector();
    CHECK(std::all_of(out.begin(), out.end(), [](unsigned char c) { return c == 0x5a; }));
    dst.fill_bytes(0);

    // A second run reuses the stream, events and flush buffer.
    CHECK(bench.run().at(0).stats_us.median > 0);
  }
}

TEST_CASE("variants on a GPU are interleaved and compared with the baseline") {
  rt::Device device(0);
  rt::DeviceBuffer<unsigned char> a(copy_bytes, device), b(copy_bytes, device);
  rt::DeviceBuffer<unsigned char> half_a(copy_bytes / 2, device), half_b(copy_bytes / 2, device);
  std::vector<int> order;
  Bench bench(options(true));
  bench.add("copy 256 MiB", [&](rt::StreamRef s) {
    order.push_back(0);
    b.copy_from(a, s);
  });
  bench.add("copy 128 MiB", [&](rt::StreamRef s) {
    order.push_back(1);
    half_b.copy_from(half_a, s);
  });
  const auto results = bench.run();
  MESSAGE("\n" << markdown(results));
  bool interleaved = order.size() % 2 == 0;
  for (std::size_t k = 0; k < order.size(); ++k)
    interleaved = interleaved && order[k] == int(k % 2);
  CHECK(interleaved);
  CHECK(results[0].is_baseline);
  // Half the bytes: about half the time (launch and tail effects allowed for).
  CHECK(results[1].ratio_to_baseline > 0.35);
  CHECK(results[1].ratio_to_baseline < 0.65);
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: prof_bench_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
