#pragma once
// What the NVRTC tests share: reading a test's kernel source, and compiling a source with
// NVRTC against kiln's include directory (no GPU needed).

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "kiln/jit/nvrtc.hpp"

namespace kiln_test {

/// The bytes of `path`; fails the test when it cannot be read.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// `source`, named `name` in messages, compiled for `arch` ("sm_90") in C++`std`.
inline kiln::jit::NvrtcOutput nvrtc(const std::string& source, const std::string& name,
                                    const std::string& arch, int std) {
  return kiln::jit::nvrtc_compile(source, name,
                                  {"--gpu-architecture=" + arch, "-std=c++" + std::to_string(std),
                                   std::string("-I") + KILN_TEST_INCLUDE_DIR});
}

}  // namespace kiln_test
