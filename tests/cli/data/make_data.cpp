// Writes the synthetic test data of tests/cli/data (not measurements).
#include <random>
#include "kiln/factory/tuning_db.hpp"
#include "kiln/prof/bench.hpp"
#include "kiln/prof/derived.hpp"
#include "kiln/prof/registry.hpp"
#include "kiln/prof/report.hpp"
#include "kiln/prof/trace.hpp"
using namespace kiln::prof;
Profile make(double gemm_scale, double softmax_scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(1.0, 0.01);
  Profile p;
  p.backend = "cupti";
  p.devices.push_back({0, "NVIDIA H200", registry_peaks("NVIDIA H200").value()});
  p.devices.push_back({1, "NVIDIA H200", registry_peaks("NVIDIA H200").value()});
  double t = 0;
  const char* gemm = "_ZN4kiln3ops6detail9gemm_mainIfLi128ELi4EEEvPKfS4_Pfiii";
  for (int i = 0; i < 40; ++i)
    for (int d = 0; d < 2; ++d) {
      KernelRecord k;
      k.device = d;
      k.stream = 0x10;
      k.grid = {132, 1, 1};
      k.block = {256, 1, 1};
      k.registers = 128;
      if (i % 2 == 0) {
        k.name = gemm;
        k.bytes = 3 * 4096.0 * 4096 * 4;
        k.flops = 2.0 * 4096 * 4096 * 4096;
        k.start_us = t;
        k.end_us = t + 200 * gemm_scale * (d ? 1.1 : 1.0) * noise(rng);
      } else {
        k.name = "softmax<f32, 256>";
        k.bytes = 2.0 * 8192 * 4096 * 4;
        k.flops = 5.0 * 8192 * 4096;
        k.start_us = t;
        k.end_us = t + 60 * softmax_scale * noise(rng);
      }
      k.host_us = t - 5;
      k.host_launch_us = 3;
      t = k.end_us + 1;
      p.kernels.push_back(k);
    }
  KernelRecord ext;
  ext.name = "_ZN7cutlass7Kernel2I43cutlass_80_simt_sgemm_256x128_8x4_nn_align1EEvNT_6ParamsE";
  ext.external = true;
  ext.start_us = t;
  ext.end_us = t + 150;
  p.kernels.push_back(ext);
  return p;
}
std::vector<Result> bench(double copy_scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(1.0, 0.002);
  std::vector<Result> out;
  for (auto [name, us] : {std::pair{"copy", 181.5 * copy_scale},
                          {"fill", 86.0},
                          {"noisy", 10.0 * (seed == 4 ? 1.08 : 1.0)}}) {
    std::vector<double> s;
    for (int i = 0; i < 50; ++i)
      s.push_back(us *
                  (std::string(name) == "noisy" ? 1.0 + (noise(rng) - 1.0) * 100 : noise(rng)));
    Result r;
    r.name = name;
    r.samples_us = s;
    r.stats_us = summarize(s);
    r.stop_reason = "synthetic";
    r.is_baseline = out.empty();
    out.push_back(r);
  }
  return out;
}
void tuning() {
  // A factory "scale" tuned for 12 sizes over 6 block sizes: time = work / efficiency.
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(1.0, 0.02);
  std::filesystem::remove("/tmp/kiln-make-data-tuning.json");
  kiln::factory::TuningDatabase db("/tmp/kiln-make-data-tuning.json");
  for (int i = 0; i < 12; ++i) {
    const int n = 1024 << i;
    kiln::factory::TuningEntry e;
    e.key = {"scale", 1, {{"n", n}}, "NVIDIA H200", "sm_90", 13000, "nvrtc 13.0"};
    e.device_features = {{"multiprocessors", 132}};
    e.policy = "full";
    e.when = "2025-01-01T00:00:00Z";
    double best = 1e300;
    for (int block : {64, 128, 256, 512, 768, 1024}) {
      kiln::factory::CandidateRecord c;
      c.config = {{"block", block}};
      const double ideal = n < 65536 ? 256 : 512;
      c.time_us = (2 + n / 4096.0) * (1 + std::abs(std::log2(block / ideal)) * 0.3) * noise(rng);
      c.spread = 0.01;
      if (c.time_us < best) {
        best = c.time_us;
        e.best = c.config;
      }
      e.candidates.push_back(c);
    }
    db.store(e);
  }
  db.export_to("tuning.json");
}
// A profile with hardware counters on every kernel: DRAM bytes scaled by dram_scale.
Profile with_counters(Profile p, double dram_scale) {
  p.metrics = {"dram__bytes_read.sum", "dram__bytes_write.sum",
               "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"};
  for (KernelRecord& k : p.kernels) {
    k.counters["dram__bytes_read.sum"] = dram_scale * k.bytes * 2 / 3;
    k.counters["dram__bytes_write.sum"] = dram_scale * k.bytes / 3;
    k.counters["sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"] =
        k.flops > 0 ? 70.0 / dram_scale : 0.0;
  }
  return p;
}
int main() {
  tuning();
  write_file("counters_base.json", to_json(with_counters(make(1.0, 1.0, 1), 1.0)).dump(1));
  write_file("counters_new.json", to_json(with_counters(make(1.2, 0.8, 2), 1.25)).dump(1));
  write_file("profile_base.json", to_json(make(1.0, 1.0, 1)).dump(1));
  write_file("profile_new.json", to_json(make(1.2, 0.8, 2)).dump(1));
  write_chrome_trace(make(1.0, 1.0, 1), "trace_base.json");
  write_file("bench_base.json", to_json(bench(1.0, 3)).dump(1));
  write_file("bench_new.json", to_json(bench(1.1, 4)).dump(1));
}
