// kiln/rt without a GPU: what a program sees when there is no driver, how arguments are
// packed, and how driver errors read. (This executable forces the CUDA driver library to
// a path that does not exist, so it behaves the same on a GPU machine.)
#include <doctest/doctest.h>

#include <cstdlib>

#include "kiln/rt.hpp"

using namespace kiln::rt;

namespace {
const bool forced = [] {
  ::setenv("KILN_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
  ::setenv("KILN_PLATFORM", "cuda", 1);
  return true;
}();
}  // namespace

TEST_CASE("no driver: device_count() is 0 and Device names the library and the variable") {
  REQUIRE(forced);
  CHECK(device_count() == 0);
  CHECK_FALSE(driver_available());
  try {
    Device d(0);
    FAIL("opened a device without a driver");
  } catch (const NoDeviceError& e) {
    std::string m = e.what();
    CHECK(m.find("/nonexistent/libcuda.so.1") != std::string::npos);
    CHECK(m.find("KILN_CUDA_LIBRARY") != std::string::npos);
  }
  CHECK_THROWS_AS(DeviceBuffer<float>(16), NoDeviceError);
}

TEST_CASE("driver errors name the API, the error and what kiln was doing") {
  DriverApi api;
  api.error_name = [](int, const char** n) {
    *n = "CUDA_ERROR_OUT_OF_MEMORY";
    return 0;
  };
  api.error_string = [](int, const char** t) {
    *t = "out of memory";
    return 0;
  };
  CHECK_NOTHROW(api.check(0, "memory_allocate"));
  try {
    api.check(2, "memory_allocate", "allocating 4 GiB on device 1");
    FAIL("no throw");
  } catch (const DriverError& e) {
    CHECK(e.code() == 2);
    CHECK(std::string(e.what()) ==
          "kiln: memory_allocate failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory) while allocating "
          "4 GiB on device 1");
  }
  DriverApi bare;  // no name lookup: the code is shown
  CHECK(bare.describe(700, "launch", "") == "kiln: launch failed: error 700");
}

TEST_CASE("kernel arguments: buffers become device pointers, views and scalars pass by value") {
  KILN_DIM(ROW);
  DeviceBuffer<float> empty;  // no allocation
  static_assert(std::is_same_v<decltype(detail::kernel_argument(empty)), float*>);
  CHECK(detail::kernel_argument(empty) == nullptr);
  CHECK(detail::kernel_argument(3.5) == 3.5);
  float host[4] = {};
  kiln::Tensor<float, kiln::Extent<ROW, kiln::dynamic>> view(host, ROW(4));
  auto v = detail::kernel_argument(view);
  CHECK(v.data() == host);
  CHECK(v.size<ROW>() == ROW(4));
  static_assert(sizeof(v) == sizeof(float*) + sizeof(int) + 4,
                "a view is a pointer and its run-time ints");
}

TEST_CASE("a programmatic launch is asked of the driver only where it can be one") {
  LaunchConfig c(Dim3(8), Dim3(256));
  DeviceProperties sm90;
  sm90.platform = Platform::cuda;
  sm90.compute_major = 9;
  DeviceProperties sm80 = sm90;
  sm80.compute_major = 8;
  DeviceProperties gfx942;
  gfx942.platform = Platform::hip;
  gfx942.compute_major = 9;
  DriverApi with_ex, without_ex;
  with_ex.launch_ex = [](void*, const unsigned*, const unsigned*, const unsigned*, bool, unsigned,
                         void*, void**) { return 0; };
  CHECK_FALSE(c.programmatic);  // off unless asked for
  CHECK_FALSE(detail::programmatic_launch(with_ex, sm90, c));
  c.programmatic = true;
  CHECK(detail::programmatic_launch(with_ex, sm90, c));
  // Elsewhere the same config is an ordinary launch (the kernel's wait then returns at once).
  CHECK_FALSE(detail::programmatic_launch(with_ex, sm80, c));
  CHECK_FALSE(detail::programmatic_launch(with_ex, gfx942, c));
  CHECK_FALSE(detail::programmatic_launch(without_ex, sm90, c));
}

TEST_CASE("clusters of more than 8 blocks: as many as the device holds, else a clear error") {
  // Up to 8 (portable) need no answer from the driver.
  CHECK(detail::cluster_size_error(1, 0).empty());
  CHECK(detail::cluster_size_error(8, 0).empty());
  // More: as many as the device holds for the kernel's blocks (16 on an H200 for small ones).
  CHECK(detail::cluster_size_error(16, 16).empty());
  CHECK(detail::cluster_size_error(12, 16).empty());
  const std::string more = detail::cluster_size_error(32, 16);
  CHECK(more.find("32 blocks a cluster are more than the 16") != std::string::npos);
  CHECK(more.find("use smaller clusters") != std::string::npos);
  // Blocks too big for more than 8 together.
  CHECK(detail::cluster_size_error(16, 8).find("more than the 8") != std::string::npos);
  // A driver that cannot tell.
  CHECK(detail::cluster_size_error(9, 0).find("cannot say") != std::string::npos);
}

TEST_CASE("sizes in messages are MiB with one decimal") {
  CHECK(detail::mib(std::size_t(1) << 52) == "4294967296.0 MiB");
  CHECK(detail::mib(3 * 1024 * 1024 / 2) == "1.5 MiB");
}

TEST_CASE("launch descriptions say what was launched") {
  CHECK(detail::dim3_text(Dim3(4, 2)) == "(4, 2, 1)");
  CHECK(Dim3(4, 2, 3).count() == 24);
}
