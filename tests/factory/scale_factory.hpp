#pragma once
// A small factory for the factory's own tests: out = in * k, with configs over threads per
// block and elements per thread, plus two that must be skipped when tuning: one that does
// not compile and one whose block is larger than any device allows.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/factory/kernel_factory.hpp"
#include "kiln/rt/memory.hpp"

namespace factory_test {

struct ScaleParams {
  std::int64_t n = 0;
  bool operator==(const ScaleParams&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ScaleParams, n)

struct ScaleConfig {
  int threads = 128;
  int vec = 1;
  int broken = 0;  // 1: the source fails to compile on purpose
  bool operator==(const ScaleConfig&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ScaleConfig, threads, vec, broken)

inline const char* scale_source = R"(
#include "spec.hpp"
#if SCALE_BROKEN
#error "this config is broken on purpose"
#endif
extern "C" __global__ void KILN_KERNEL_NAME(const float* in, float* out, long long n, float k) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * VEC;
  for (int v = 0; v < VEC; ++v) {
    if (i + v < n) out[i + v] = in[i + v] * k;
  }
}
)";

class ScaleFactory : public kiln::factory::KernelFactory<ScaleParams, ScaleConfig> {
 public:
  explicit ScaleFactory(bool with_bad_configs = true, int version = 1, std::string name = "scale")
      : KernelFactory(std::move(name), version,
                      kiln::jit::Program{"scale.cu", scale_source, {}, {}}),
        with_bad_(with_bad_configs) {}

  void validate(const ScaleParams& p, const kiln::rt::DeviceProperties&) const override {
    if (p.n < 1) {
      throw kiln::Error("kiln: scale needs n >= 1 elements, not " + std::to_string(p.n));
    }
  }
  std::vector<ScaleConfig> configs(const ScaleParams&,
                                   const kiln::rt::DeviceProperties&) const override {
    std::vector<ScaleConfig> out;
    for (int threads : {64, 128, 256, 512}) {
      for (int vec : {1, 2, 4}) out.push_back({threads, vec, 0});
    }
    if (with_bad_) {
      out.push_back({128, 1, 1});   // does not compile
      out.push_back({4096, 1, 0});  // no device runs 4096 threads per block
    }
    return out;
  }
  ScaleConfig heuristic(const ScaleParams&, const std::vector<ScaleConfig>&,
                        const kiln::rt::DeviceProperties&) const override {
    return {256, 4, 0};
  }
  kiln::gen::Spec spec(const ScaleParams&, const ScaleConfig& c,
                       const kiln::rt::DeviceProperties&) const override {
    kiln::gen::Spec s;
    s.constant("VEC", c.vec).macro("SCALE_BROKEN", std::to_string(c.broken));
    return s;
  }
  kiln::rt::LaunchConfig launch_config(const ScaleParams& p, const ScaleConfig& c,
                                       const kiln::rt::DeviceProperties&) const override {
    const std::int64_t per_block = std::int64_t(c.threads) * c.vec;
    return {{unsigned((p.n + per_block - 1) / per_block)}, {unsigned(c.threads)}};
  }
  double bytes(const ScaleParams& p) const override { return 8.0 * double(p.n); }
  TuningRun tuning_run(const ScaleParams& p, const kiln::rt::Device& device) const override {
    auto in = std::make_shared<kiln::rt::DeviceBuffer<float>>(std::size_t(p.n), device);
    auto out = std::make_shared<kiln::rt::DeviceBuffer<float>>(std::size_t(p.n), device);
    in->fill_bytes(0);
    const long long n = p.n;
    return [in, out, n](const KernelType& k, kiln::rt::StreamRef s) { k(s, *in, *out, n, 2.0f); };
  }

 private:
  bool with_bad_;
};

/// Properties of a device that need not be here, for tests that only compile.
inline kiln::rt::DeviceProperties fake_device(const std::string& arch = "sm_90") {
  kiln::rt::DeviceProperties p;
  p.name = "Test GPU";
  p.arch = arch;
  p.multiprocessors = 132;
  p.warp_size = 32;
  p.max_threads_per_block = 1024;
  return p;
}

}  // namespace factory_test
