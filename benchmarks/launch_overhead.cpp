// benchmarks/launch_overhead: host cost of one launch through kiln::rt::launch, and through
// the one-call path's kernel (kiln::kernel(...).launch), against a raw cuLaunchKernel of
// the same kernel with the same arguments, in the same run.
//
// Each sample times a burst of launches on the host (short enough that the launch queue
// never fills, so the host never waits for the GPU), then synchronizes outside the timed
// region. kiln and raw bursts alternate, and the medians are compared.
// Then the same with the profiler on (device events, then CUPTI), to measure what
// recording adds to each launch.
// Prints a markdown table; --json FILE writes kiln_us, raw_us, ratio, and
// profiled_events_us / profiled_cupti_us with their overheads over kiln_us.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/jit.hpp"
#include "kiln/prof.hpp"
#include "kiln/rt.hpp"

using namespace kiln;
using Clock = std::chrono::steady_clock;

namespace {
const char* source = R"(
extern "C" __global__ void tiny(float* out, int n) {
  if (threadIdx.x == 0 && blockIdx.x == 0 && n < 0) out[0] = 1.0f;
}
)";

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) try {
  std::string json;
  int samples = 200, burst = 256;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc)
      json = argv[++i];
    else if (a == "--samples" && i + 1 < argc)
      samples = std::max(3, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--samples N]\n", argv[0]);
      return 2;
    }
  }
  if (rt::device_count() == 0) {
    std::printf("no GPU found: launch_overhead needs one\n");
    return 0;
  }
  if (rt::driver().platform != rt::Platform::cuda) {
    std::printf("launch_overhead compares against raw cuLaunchKernel: needs CUDA\n");
    return 0;
  }
  rt::Device device(0);
  device.make_current();
  jit::Options options;
  options.target = device.arch();
  auto binary = jit::KernelCache::global().get(jit::Program{"tiny.cu", source, {}, {}}, options);
  rt::Function fn = rt::load_module(binary, device).function("tiny");
  const rt::JitKernel jit_kernel = kiln::kernel(jit::Program{"tiny.cu", source, {}, {}}, "tiny");
  rt::DeviceBuffer<float> out(1, device);
  rt::Stream stream(device);
  const int n = 1;

  // The raw peer: the driver's own cuLaunchKernel, prepared arguments, same stream.
  auto raw_launch = rt::cuda_detail::fns.launch;
  CUfunction raw_fn = static_cast<CUfunction>(fn.handle());
  CUstream raw_stream = static_cast<CUstream>(stream.handle());
  float* out_ptr = out.data();
  int n_arg = n;
  void* params[] = {&out_ptr, &n_arg};

  auto kiln_burst = [&] {
    auto t = Clock::now();
    for (int i = 0; i < burst; ++i) rt::launch(fn, {{1}, {32}, 0, stream}, out, n);
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count() / burst;
  };
  auto jit_burst = [&] {
    auto t = Clock::now();
    for (int i = 0; i < burst; ++i) jit_kernel(1, 32, stream, out, n);
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count() / burst;
  };
  auto raw_burst = [&] {
    auto t = Clock::now();
    for (int i = 0; i < burst; ++i) {
      if (raw_launch(raw_fn, 1, 1, 1, 32, 1, 1, 0, raw_stream, params, nullptr) != CUDA_SUCCESS) {
        throw Error("raw cuLaunchKernel failed");
      }
    }
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count() / burst;
  };
  // The floor of the events backend: a raw launch between two raw event records.
  std::vector<void*> events(2 * std::size_t(burst));
  for (auto& e : events) rt::driver().check(rt::driver().event_create(&e), "event_create");
  auto raw_events_burst = [&] {
    auto t = Clock::now();
    for (int i = 0; i < burst; ++i) {
      rt::driver().event_record(events[2 * std::size_t(i)], raw_stream);
      raw_launch(raw_fn, 1, 1, 1, 32, 1, 1, 0, raw_stream, params, nullptr);
      rt::driver().event_record(events[2 * std::size_t(i) + 1], raw_stream);
    }
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count() / burst;
  };
  for (int i = 0; i < 20; ++i) {  // warm-up
    kiln_burst();
    jit_burst();
    raw_burst();
    stream.synchronize();
  }
  // Alternates kiln and raw bursts; returns their medians.
  auto measure = [&] {
    std::vector<double> kiln_us, raw_us;
    for (int s = 0; s < samples; ++s) {
      if (s % 2) {
        kiln_us.push_back(kiln_burst());
        stream.synchronize();
        raw_us.push_back(raw_burst());
      } else {
        raw_us.push_back(raw_burst());
        stream.synchronize();
        kiln_us.push_back(kiln_burst());
      }
      stream.synchronize();
    }
    return std::make_pair(median(kiln_us), median(raw_us));
  };
  const auto [k, r] = measure();
  // kiln::kernel's launch, raw and kiln::rt::launch in turn (each first in a third of the
  // samples), so that the three share the same phase of the machine's noise.
  std::vector<double> jit_us, raw2_us, rt2_us;
  for (int s = 0; s < samples; ++s) {
    for (int t = 0; t < 3; ++t) {
      switch ((s + t) % 3) {
        case 0:
          jit_us.push_back(jit_burst());
          break;
        case 1:
          raw2_us.push_back(raw_burst());
          break;
        default:
          rt2_us.push_back(kiln_burst());
      }
      stream.synchronize();
    }
  }
  const double j = median(jit_us), r2 = median(raw2_us), k2 = median(rt2_us);
  std::vector<double> with_events;
  for (int i = 0; i < samples / 4 + 3; ++i) {
    with_events.push_back(raw_events_burst());
    stream.synchronize();
  }
  const double raw_with_events = median(with_events);
  for (void* e : events) rt::driver().event_destroy(e);
  double profiled[2] = {0, 0}, raw_during[2] = {0, 0};
  std::string backends[2] = {"events", "cupti"};
  for (int b = 0; b < 2; ++b) {
    prof::Session session(b == 0 ? prof::Backend::events : prof::Backend::cupti);
    if (b == 1 && session.backend() != prof::Backend::cupti) {
      backends[1] = "cupti (unavailable: events)";
    }
    for (int i = 0; i < 5; ++i) kiln_burst();  // the profiler's event pool warms up
    stream.synchronize();
    std::tie(profiled[b], raw_during[b]) = measure();
    prof::Profile p = session.finish();
    if (p.kernels.size() < std::size_t(samples) * std::size_t(burst))
      throw Error("the profiler missed launches");
  }
  std::printf("| launch path | host us per launch (median of %d bursts of %d) |\n| --- | --- |\n",
              samples, burst);
  std::printf("| raw cuLaunchKernel | %.3f |\n| kiln::rt::launch | %.3f |\n", r, k);
  std::printf(
      "| kiln::kernel(...) launch on a stream | %.3f (same phase: raw %.3f, kiln::rt::launch "
      "%.3f) |\n",
      j, r2, k2);
  std::printf("| raw cuLaunchKernel between two raw cuEventRecord | %.3f |\n", raw_with_events);
  for (int b = 0; b < 2; ++b) {
    std::printf("| kiln::rt::launch, profiler on (%s) | %.3f (raw in the same phase: %.3f) |\n",
                backends[b].c_str(), profiled[b], raw_during[b]);
  }
  std::printf("\nratio kiln / raw: %.3f, kiln::kernel / raw: %.3f (target <= 1.05) on %s\n", k / r,
              j / r2, device.properties().name.c_str());
  std::printf("profiler overhead per launch: events %.3f us, %s %.3f us (target <= 2 us)\n",
              profiled[0] - k, backends[1].c_str(), profiled[1] - k);
  if (!json.empty()) {
    std::ofstream(json) << "{\"kiln_us\": " << k << ", \"raw_us\": " << r
                        << ", \"ratio\": " << k / r << ", \"jit_kernel_us\": " << j
                        << ", \"jit_kernel_raw_us\": " << r2 << ", \"jit_kernel_ratio\": " << j / r2
                        << ", \"profiled_events_us\": " << profiled[0]
                        << ", \"profiled_cupti_us\": " << profiled[1]
                        << ", \"profiler_overhead_events_us\": " << profiled[0] - k
                        << ", \"profiler_overhead_cupti_us\": " << profiled[1] - k
                        << ", \"raw_with_two_events_us\": " << raw_with_events << ", \"device\": \""
                        << device.properties().name << "\"}\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
