// A program built without CMake: one compiler command, the flags README gives ("Use it
// without CMake"). It includes the umbrella first and uses the parts that need fmt
// (header-only), nlohmann_json and xxHash, so a missing flag or header fails the build.
#include "kiln/kiln.hpp"

#include <cstdio>
#include <string>

KILN_DIM(ROW);
KILN_DIM(COL);

int main() {
  float buf[4 * 8] = {};
  kiln::Tensor<float, kiln::Extent<ROW, 4>, kiln::Extent<COL, 8>> t(buf);
  if (t[ROW(1)][COL(2)].ptr() != buf + 10) return 1;

  kiln::gen::Spec spec;
  spec.dim("ROW").dim("COL").tensor(
      kiln::gen::TensorSpec("In", kiln::gen::DType::f32).read_only().dim("ROW", 4).dim("COL", 8));
  const std::string header = spec.header();
  if (header.find("kiln::Extent<ROW, 4>") == std::string::npos) return 2;

  const auto key = kiln::jit::KeyBuilder().add("header", header).finish();
  const nlohmann::json j = {{"bytes", header.size()}};
  std::printf("%s\n", fmt::format("kiln without CMake: {} ({})", j.dump(),
                                  key == kiln::jit::KeyBuilder().finish() ? "same" : "keyed")
                          .c_str());
  return 0;
}
