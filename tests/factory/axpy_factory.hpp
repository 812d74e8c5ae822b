#pragma once
// A factory made from a description (kiln::factory::Factory) for the tests: y = a * x + y in
// place (kernels/axpy_in_place.cu), configs over threads per block and elements per thread,
// no tuning_run: candidates are timed on the first call's own arguments.

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/factory/factory.hpp"

namespace axpy_test {

KILN_DIM(N);
using X = kiln::Tensor<const float, kiln::Extent<N, kiln::dynamic>>;
using Y = kiln::Tensor<float, kiln::Extent<N, kiln::dynamic>>;

struct Params {
  std::int64_t n = 0;
  bool operator==(const Params&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Params, n)

struct Config {
  int threads = 128;
  int vec = 1;
  bool operator==(const Config&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Config, threads, vec)

inline kiln::factory::Factory<Params, Config>::Description description() {
  return {
      .name = "axpy",
      .source = "kernels/axpy_in_place.cu",
      .configs =
          [](const Params&) {
            std::vector<Config> out;
            for (int threads : {64, 256}) {
              for (int vec : {1, 4}) out.push_back({threads, vec});
            }
            return out;
          },
      .spec =
          [](const Params&, const Config& c) {
            kiln::gen::Spec s;
            s.tensor<X>("X").tensor<Y>("Y").constant("VEC", c.vec);
            return s;
          },
      .launch =
          [](const Params& p, const Config& c) {
            const std::int64_t per_block = std::int64_t(c.threads) * c.vec;
            return kiln::rt::LaunchConfig((p.n + per_block - 1) / per_block, c.threads);
          },
      .validate =
          [](const Params& p, const kiln::rt::DeviceProperties&) {
            if (p.n < 1 || p.n > INT32_MAX) {
              throw kiln::Error("axpy: n must be 1 to 2^31 - 1, not " + std::to_string(p.n));
            }
          },
      .bytes = [](const Params& p) { return 12.0 * double(p.n); },
  };
}

}  // namespace axpy_test
