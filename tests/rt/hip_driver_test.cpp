// kiln::rt::load_hip_driver() on any machine, with or without ROCm or an AMD GPU: the
// library search and its errors, the DriverApi it fills, and the attribute tables.
#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "../support.hpp"
#include "kiln/rt/hip_driver.hpp"

namespace {

using kiln::rt::DeviceAttribute;
using kiln::rt::DriverApi;
using kiln::rt::FunctionAttribute;
using kiln::rt::NoDeviceError;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

using kiln_test::ScopedEnv;

}  // namespace

// One test case with ordered subcases: load_hip_driver() keeps the library it opened for the
// rest of the process (as load_cuda_driver() does), so the failing override must run first.
TEST_CASE("load_hip_driver: KILN_HIP_LIBRARY override, then the real search") {
  SUBCASE("a KILN_HIP_LIBRARY that does not exist: NoDeviceError naming it") {
    const char* path = "/nonexistent/libamdhip64.so";
    ScopedEnv env("KILN_HIP_LIBRARY", path);
    std::string message;
    try {
      (void)kiln::rt::load_hip_driver();
    } catch (const NoDeviceError& e) {
      message = e.what();
    }
    REQUIRE_MESSAGE(!message.empty(), "load_hip_driver() did not throw NoDeviceError");
    MESSAGE(message);
    CHECK(contains(message, path));
    CHECK(contains(message, "KILN_HIP_LIBRARY"));
  }

  SUBCASE("the real search: no library, no device, or a working runtime") {
    ScopedEnv env("KILN_HIP_LIBRARY", nullptr);
    std::unique_ptr<DriverApi> api;
    std::string message;
    try {
      api = kiln::rt::load_hip_driver();
    } catch (const NoDeviceError& e) {
      message = e.what();
    }
    if (api) {
      int count = -1;
      CHECK(api->platform == kiln::rt::Platform::hip);
      CHECK(api->device_count(&count) == 0);
      CHECK(count >= 0);
      std::string arch = "(none)";
      if (count > 0) {
        char name[64] = {};
        const int r = api->device_arch_name(name, int(sizeof(name)), 0);
        arch = r == 0 ? name : api->describe(r, "hipGetDeviceProperties", "reading gcnArchName");
      }
      MESSAGE("HIP runtime " << api->library << " (version " << api->driver_version
                             << ") loaded: " << count << " device(s); device 0: " << arch);
    } else if (contains(message, "hipInit")) {
      MESSAGE("HIP runtime loaded; hipInit failed, as expected without an AMD GPU:\n" << message);
      CHECK(contains(message, "kiln: hipInit failed: hipError"));  // error_name works
      CHECK(contains(message, "while starting the HIP runtime"));
    } else {
      MESSAGE("no HIP runtime library on this machine:\n" << message);
      CHECK(contains(message, "libamdhip64"));
      CHECK(contains(message, "KILN_HIP_LIBRARY"));
    }
  }
}

TEST_CASE("hip_detail::fill: every DriverApi entry but the two HIP lacks") {
  DriverApi api;
  kiln::rt::hip_detail::fill(api);
#define KILN_ENTRY(member) \
  { #member, api.member != nullptr }
  const std::pair<const char*, bool> entries[] = {
      KILN_ENTRY(device_count),
      KILN_ENTRY(device_get),
      KILN_ENTRY(device_name),
      KILN_ENTRY(device_attribute),
      KILN_ENTRY(device_total_memory),
      KILN_ENTRY(device_arch_name),
      KILN_ENTRY(primary_context_retain),
      KILN_ENTRY(primary_context_release),
      KILN_ENTRY(context_set_current),
      KILN_ENTRY(context_get_current),
      KILN_ENTRY(context_synchronize),
      KILN_ENTRY(event_query),
      KILN_ENTRY(memory_allocate),
      KILN_ENTRY(memory_free),
      KILN_ENTRY(memory_info),
      KILN_ENTRY(host_allocate),
      KILN_ENTRY(host_free),
      KILN_ENTRY(copy_to_device),
      KILN_ENTRY(copy_to_host),
      KILN_ENTRY(copy_device),
      KILN_ENTRY(fill_bytes),
      KILN_ENTRY(fill_words),
      KILN_ENTRY(stream_create),
      KILN_ENTRY(stream_destroy),
      KILN_ENTRY(stream_synchronize),
      KILN_ENTRY(event_create),
      KILN_ENTRY(event_record),
      KILN_ENTRY(event_synchronize),
      KILN_ENTRY(event_elapsed_ms),
      KILN_ENTRY(event_destroy),
      KILN_ENTRY(module_load),
      KILN_ENTRY(module_unload),
      KILN_ENTRY(module_function),
      KILN_ENTRY(function_attribute),
      KILN_ENTRY(occupancy),
      KILN_ENTRY(launch),
      KILN_ENTRY(error_name),
      KILN_ENTRY(error_string),
  };
#undef KILN_ENTRY
  for (const auto& [name, set] : entries) {
    CAPTURE(name);
    CHECK(set);
  }
  // Not supported on HIP: kiln's launch code checks for null.
  CHECK_FALSE(bool(api.function_set_max_dynamic_shared));
  CHECK_FALSE(bool(api.function_param_info));
}

TEST_CASE("hip_detail::to_hip: each DeviceAttribute maps to its own HIP attribute") {
  using kiln::rt::hip_detail::to_hip;
  std::set<int> seen;
  for (int i = 0; i < int(DeviceAttribute::count_); ++i) {
    const int code = int(to_hip(static_cast<DeviceAttribute>(i)));
    CAPTURE(i);
    CHECK(code != int(hipDeviceAttributeCudaCompatibleEnd));  // what count_ maps to
    CHECK(seen.insert(code).second);
  }
  CHECK(seen.size() == std::size_t(DeviceAttribute::count_));
  CHECK(to_hip(DeviceAttribute::count_) == hipDeviceAttributeCudaCompatibleEnd);
  CHECK(to_hip(DeviceAttribute::warp_size) == hipDeviceAttributeWarpSize);
  CHECK(to_hip(DeviceAttribute::compute_major) == hipDeviceAttributeComputeCapabilityMajor);
  CHECK(to_hip(DeviceAttribute::shared_memory_per_multiprocessor) ==
        hipDeviceAttributeMaxSharedMemoryPerMultiprocessor);
  CHECK(to_hip(DeviceAttribute::memory_bus_width_bits) == hipDeviceAttributeMemoryBusWidth);
}

TEST_CASE("hip_detail::to_hip: each FunctionAttribute maps to its own HIP attribute") {
  using kiln::rt::hip_detail::to_hip;
  std::set<int> seen;
  for (int i = 0; i < int(FunctionAttribute::count_); ++i) {
    const int code = int(to_hip(static_cast<FunctionAttribute>(i)));
    CAPTURE(i);
    CHECK(code != int(HIP_FUNC_ATTRIBUTE_MAX));  // what count_ maps to
    CHECK(seen.insert(code).second);
  }
  CHECK(seen.size() == std::size_t(FunctionAttribute::count_));
  CHECK(to_hip(FunctionAttribute::count_) == HIP_FUNC_ATTRIBUTE_MAX);
  CHECK(to_hip(FunctionAttribute::registers) == HIP_FUNC_ATTRIBUTE_NUM_REGS);
  CHECK(to_hip(FunctionAttribute::max_dynamic_shared_bytes) ==
        HIP_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
}

TEST_CASE("hip_detail: gcnArchName and the device-properties symbol") {
  using kiln::rt::hip_detail::strip_arch_features;
  CHECK(strip_arch_features("gfx942:sramecc+:xnack-") == "gfx942");
  CHECK(strip_arch_features("gfx90a:xnack+") == "gfx90a");
  CHECK(strip_arch_features("gfx1100") == "gfx1100");
  CHECK(strip_arch_features("") == "");

  const char* symbol = kiln::rt::hip_detail::versioned_properties_symbol();
  MESSAGE("HIP headers " << HIP_VERSION_MAJOR << "." << HIP_VERSION_MINOR
                         << ": device properties from " << std::string(symbol ? symbol : "(none)"));
#if HIP_VERSION_MAJOR >= 6
  // The header renames hipGetDeviceProperties to its layout's symbol.
  CHECK(kiln::rt::hip_detail::header_is_versioned);
  REQUIRE(symbol != nullptr);
  CHECK(std::string(symbol).rfind("hipGetDevicePropertiesR", 0) == 0);
#else
  // ROCm 5's layout, which ROCm 6 and later keep as hipGetDevicePropertiesR0000.
  CHECK_FALSE(kiln::rt::hip_detail::header_is_versioned);
  CHECK(kiln::rt::hip_detail::header_has_r0000_layout);
  REQUIRE(symbol != nullptr);
  CHECK(std::string(symbol) == "hipGetDevicePropertiesR0000");
#endif
}
