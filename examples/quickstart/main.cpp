// kiln quickstart: typed dimensions on the host, then the same headers in a GPU kernel
// compiled at run time with NVRTC.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "kiln/dims.hpp"
#include "kiln/jit/nvrtc.hpp"

KILN_DIM(ROW);
KILN_DIM(COL);
using COL8 = kiln::Fold<COL, 8>;  // COL counted in groups of 8

int main() try {
  using namespace kiln;

  // 1. A (ROW: 3, run-time; COL: 16) matrix over host memory.
  std::vector<float> data(3 * 16);
  for (size_t i = 0; i < data.size(); ++i) data[i] = float(i);
  Tensor<float, Extent<ROW, dynamic>, Extent<COL, 16>> m(data.data(), ROW(3));

  // Indexing is order-free, and folds carry: COL8(1) + COL(2) is COL(10).
  float a = *m[ROW(2)][COL(10)];
  float b = *m[COL8(1) + COL(2)][ROW(2)];
  std::printf("m[ROW(2)][COL(10)] = %.0f, m[COL8(1) + COL(2)][ROW(2)] = %.0f\n", a, b);

  // A typed sub-tile keeps its extents: (ROW:3, COL:16) -> (ROW:3, COL:4) from COL 8.
  auto tile = m.slice<4>(COL(8));
  std::printf("tile: %d rows x %d cols, tile[ROW(1)][COL(0)] = %.0f\n", tile.size<ROW>().get(),
              tile.size<COL>().get(), *tile[ROW(1)][COL(0)]);

  // 2. The same headers in a kernel, compiled by NVRTC for sm_90.
  std::ifstream file(QUICKSTART_KERNEL);
  std::stringstream source;
  source << file.rdbuf();
  auto start = std::chrono::steady_clock::now();
  auto out = jit::nvrtc_compile(
      source.str(), "scale_rows.cu",
      {"--gpu-architecture=sm_90", "-std=c++17", std::string("-I") + KILN_INCLUDE_DIR});
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  auto [major, minor] = jit::NvrtcApi::get().version_pair();
  std::printf("NVRTC %d.%d compiled scale_rows for sm_90 in %.0f ms: %zu-byte cubin\n", major,
              minor, ms, out.cubin.size());
  std::printf("(launching it comes with kiln's driver layer)\n");
  return a == b ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
