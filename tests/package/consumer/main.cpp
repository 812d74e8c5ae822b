// Uses kiln and, through kiln::kiln alone, the headers of its dependencies.
#define XXH_INLINE_ALL  // as kiln uses xxHash: header only, nothing to link
#include <fmt/format.h>
#include <xxhash.h>

#include <nlohmann/json.hpp>
#include <string>

#include "kiln/device.hpp"
#include "kiln/dims.hpp"
#include "kiln/jit/sources.hpp"

KILN_DIM(I);
KILN_DIM(K);

int main() {
  float buf[4 * 8] = {};
  kiln::Tensor<float, kiln::Extent<I, 4>, kiln::Extent<K, 8>> t(buf);
  if (t[I(1)][K(2)].ptr() != buf + 10) {
    fmt::print("kiln: wrong element address\n");
    return 1;
  }
  // The kernels kiln ships are found beside its headers: the source tree's kernels/, or
  // share/kiln/kernels of an installed kiln.
  const auto softmax = kiln::jit::load_kernel_source("softmax.cu");
  if (softmax.text.find("KILN_KERNEL_NAME") == std::string::npos) {
    fmt::print("kiln: softmax.cu not found where kiln installed it ({})\n", softmax.origin);
    return 1;
  }
  const nlohmann::json j = {{"dims", 2}};
  const std::string s = fmt::format("{}", j.dump());
  return XXH64(s.data(), s.size(), 0) == 0 ? 1 : 0;
}
