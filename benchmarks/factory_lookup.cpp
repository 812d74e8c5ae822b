// benchmarks/factory_lookup: what a kernel factory costs the host once its kernel is made:
// a memo hit of KernelFactory::get() (target: well under 1 us), and a launch through the
// factory's Kernel against kiln::rt::launch of the same function, in the same run.
// Prints a markdown table; --json FILE writes get_hit_ns, kernel_launch_us, rt_launch_us.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/factory/kernel_factory.hpp"
#include "kiln/rt.hpp"

using namespace kiln;
using Clock = std::chrono::steady_clock;

namespace {

// No padding: the memo hashes its bytes.
struct Params {
  std::int64_t n = 0;
  std::int64_t dtype = 0;
  bool operator==(const Params&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Params, n, dtype)
// Padding after `dtype`: the memo falls back to hashing the Params' JSON.
struct PaddedParams {
  std::int64_t n = 0;
  int dtype = 0;
  bool operator==(const PaddedParams&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PaddedParams, n, dtype)
struct Config {
  int threads = 128;
  bool operator==(const Config&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Config, threads)

const char* source = R"(
#include "spec.hpp"
extern "C" __global__ void KILN_KERNEL_NAME(float* out, long long n) {
  if (threadIdx.x == 0 && blockIdx.x == 0 && n < 0) out[0] = 1.0f;
}
)";

template <class Params>
class TinyFactory : public factory::KernelFactory<Params, Config> {
 public:
  using typename factory::KernelFactory<Params, Config>::TuningRun;
  TinyFactory()
      : factory::KernelFactory<Params, Config>("tiny", 1, jit::Program{"tiny.cu", source, {}, {}}) {
  }
  std::vector<Config> configs(const Params&, const rt::DeviceProperties&) const override {
    return {{32}};
  }
  gen::Spec spec(const Params&, const Config&, const rt::DeviceProperties&) const override {
    return {};
  }
  rt::LaunchConfig launch_config(const Params&, const Config& c,
                                 const rt::DeviceProperties&) const override {
    return {{1}, {unsigned(c.threads)}};
  }
  TuningRun tuning_run(const Params&, const rt::Device&) const override {
    throw Error("tiny has one config: nothing to tune");
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median ns per memo hit, with 64 problems memoized so a hit is a real lookup.
template <class P>
double time_hits(const rt::Device& device) {
  TinyFactory<P> f;
  for (std::int64_t n = 1; n <= 64; ++n) f.get({n, 0}, device);
  const P probe{37, 0};
  const auto* expected = &f.get(probe, device);
  constexpr int reps = 100000;
  std::vector<double> ns;
  for (int s = 0; s < 30; ++s) {
    auto t = Clock::now();
    for (int i = 0; i < reps; ++i) {
      if (&f.get(probe, device) != expected) throw Error("the memo returned another kernel");
    }
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t).count() / reps);
  }
  return median(ns);
}

}  // namespace

int main(int argc, char** argv) try {
  std::string json;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  if (rt::device_count() == 0) {
    std::printf("no GPU found: factory_lookup needs one\n");
    return 0;
  }
  rt::Device device(0);
  device.make_current();
  const double hit = time_hits<Params>(device);
  const double padded_hit = time_hits<PaddedParams>(device);

  TinyFactory<Params> f;
  const auto& k = f.get({1, 0}, device);
  rt::DeviceBuffer<float> out(1, device);
  rt::Stream stream(device);
  const long long n = 1;
  constexpr int burst = 256;
  std::vector<double> via_kernel, via_rt;
  for (int s = 0; s < 200; ++s) {
    auto t = Clock::now();
    for (int i = 0; i < burst; ++i) k(stream, out, n);
    via_kernel.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count() /
                         burst);
    stream.synchronize();
    t = Clock::now();
    for (int i = 0; i < burst; ++i) rt::launch(k.function(), {{1}, {32}, 0, stream}, out, n);
    via_rt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count() / burst);
    stream.synchronize();
  }
  const double kl = median(via_kernel), rl = median(via_rt);
  std::printf("| what | host cost |\n| --- | --- |\n");
  std::printf("| KernelFactory::get, memo hit (64 problems memoized) | %.1f ns |\n", hit);
  std::printf("| the same with padded Params (hashed through JSON) | %.1f ns |\n", padded_hit);
  std::printf("| launch through the factory's Kernel | %.3f us |\n", kl);
  std::printf("| kiln::rt::launch of the same function | %.3f us |\n", rl);
  std::printf(
      "\nget() hit: %.1f ns (target: well under 1 us); Kernel launch / rt::launch: %.3f "
      "on %s\n",
      hit, kl / rl, device.properties().name.c_str());
  if (!json.empty()) {
    std::ofstream(json) << "{\"get_hit_ns\": " << hit << ", \"get_hit_padded_ns\": " << padded_hit
                        << ", \"kernel_launch_us\": " << kl << ", \"rt_launch_us\": " << rl
                        << ", \"device\": \"" << device.properties().name << "\"}\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "factory_lookup: %s\n", e.what());
  return 1;
}
