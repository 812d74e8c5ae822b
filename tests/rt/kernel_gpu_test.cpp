// kiln::kernel on a GPU: a source found by name with a Spec made from host tensor types,
// launched with typed views of device buffers on the default stream and on a stream, a
// template kernel by name expression, and the argument checks of rt::launch. Every element
// is checked against a double-precision CPU reference on fresh random data, the output
// poisoned with NaN first. Skips (exit 77) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../support.hpp"
#include "kiln/rt.hpp"
#include "scale_rows_spec.hpp"

namespace {

using namespace scale_rows_test;

std::vector<float> random_floats(std::size_t n) {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Wrong elements of `got` against in * scale * factor + bias (NaN never passes).
int wrong(const std::vector<float>& got, const std::vector<float>& in,
          const std::vector<float>& scale, float bias, double factor, int rows) {
  int bad = 0;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const std::size_t i = std::size_t(r) * cols + std::size_t(c);
      const double want = (double(in[i]) * double(scale[std::size_t(c)]) + double(bias)) * factor;
      if (!(std::abs(got[i] - want) <= 1e-5 * (1 + std::abs(want)))) {
        if (bad++ < 5) std::printf("  out[%d][%d] = %g, want %g\n", r, c, double(got[i]), want);
      }
    }
  }
  return bad;
}

}  // namespace

TEST_CASE("kiln::kernel: find, compile, load and launch with typed views") {
  kiln_test::ScopedEnv path("KILN_KERNEL_PATH", KILN_SOURCE_DIR "/tests/rt/kernels");
  const auto k = kiln::kernel("scale_rows_test.cu", spec(), "scale_rows");
  CHECK(k.name() == "scale_rows");
  CHECK(k.binary().target == k.device().arch());

  for (int rows : {1, 37, 4096}) {
    CAPTURE(rows);
    const auto in = random_floats(std::size_t(rows) * cols), scale = random_floats(cols);
    const float bias = random_floats(1)[0];
    kiln::rt::DeviceBuffer<float> d_in(in.size()), d_scale(scale.size()), d_out(in.size());
    d_in.copy_from(in);
    d_scale.copy_from(scale);

    d_out.fill_bytes(0xff);
    k.launch(rows, 64, In(d_in.data(), ROW(rows)), Scale(d_scale.data()),
             Out(d_out.data(), ROW(rows)), bias);
    CHECK(wrong(d_out.to_vector(), in, scale, bias, 1, rows) == 0);

    d_out.fill_bytes(0xff);
    kiln::rt::Stream stream(k.device());
    k(rows, 128, stream, In(d_in.data(), ROW(rows)), Scale(d_scale.data()),
      Out(d_out.data(), ROW(rows)), bias);
    stream.synchronize();
    CHECK(wrong(d_out.to_vector(), in, scale, bias, 1, rows) == 0);

    // A template kernel, by its name expression, from the same source and spec.
    const auto times3 = kiln::kernel("scale_rows_test.cu", spec(), "scale_by<3>");
    times3.launch(rows, 64, Out(d_out.data(), ROW(rows)));
    CHECK(wrong(d_out.to_vector(), in, scale, bias, 3, rows) == 0);
  }
}

TEST_CASE("kiln::kernel: the same checks as rt::launch, and errors that name the kernel") {
  kiln_test::ScopedEnv path("KILN_KERNEL_PATH", KILN_SOURCE_DIR "/tests/rt/kernels");
  const auto k = kiln::kernel("scale_rows_test.cu", spec(), "scale_rows");
  kiln::rt::DeviceBuffer<float> d(cols);
  if (k.function().knows_parameters()) {
    CHECK_THROWS_WITH_AS(k.launch(1, 64, Out(d.data(), ROW(1))),
                         doctest::Contains("takes 4 parameters"), kiln::Error);
  }
  CHECK_THROWS_WITH_AS(
      k.launch(1, 4096, In(d.data(), ROW(1)), Scale(d.data()), Out(d.data(), ROW(1)), 0.0f),
      doctest::Contains("block.x = 4096"), kiln::Error);
  CHECK_THROWS_WITH_AS(kiln::kernel("scale_rows_test.cu", spec(), "no_such_kernel"),
                       doctest::Contains("no_such_kernel"), kiln::Error);
}

int main(int argc, char** argv) {
  if (kiln::rt::device_count() == 0) {
    std::printf("no GPU: kernel_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
