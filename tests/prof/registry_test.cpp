// kiln/prof/registry.hpp: datasheet peaks by device name, and peaks derived from a
// device's attributes.
#include <doctest/doctest.h>

#include <string>

#include "kiln/prof/registry.hpp"

using namespace kiln::prof;

namespace {

DevicePeaks known(const std::string& name) {
  auto p = registry_peaks(name);
  REQUIRE_MESSAGE(p.has_value(), name);
  CHECK(p->name == name);
  CHECK(p->source == "registry");
  return *p;
}

void check_peaks(const DevicePeaks& p, double bandwidth, double fp32, double tensor) {
  CHECK(p.bandwidth == doctest::Approx(bandwidth));
  CHECK(p.fp32_flops == doctest::Approx(fp32));
  CHECK(p.tensor_fp16_flops == doctest::Approx(tensor));
}

kiln::rt::DeviceProperties properties(std::string name, int major, int minor, int sms,
                                      int clock_khz) {
  kiln::rt::DeviceProperties p;
  p.name = std::move(name);
  p.compute_major = major;
  p.compute_minor = minor;
  p.arch = "sm_" + std::to_string(major) + std::to_string(minor);
  p.multiprocessors = sms;
  p.sm_clock_khz = clock_khz;
  p.memory_clock_khz = 2619000;
  p.memory_bus_bits = 5120;
  return p;
}

}  // namespace

TEST_CASE("registry: H100 and H200 variants by the names their drivers report") {
  check_peaks(known("NVIDIA H100 80GB HBM3"), 3.35e12, 67e12, 989.5e12);  // SXM5
  check_peaks(known("NVIDIA H100 SXM5 80GB"), 3.35e12, 67e12, 989.5e12);
  check_peaks(known("NVIDIA H100 PCIe"), 2.0e12, 51.2e12, 756.5e12);
  check_peaks(known("NVIDIA H100 NVL"), 3.9e12, 60e12, 835.5e12);
  check_peaks(known("NVIDIA H200"), 4.8e12, 67e12, 989.5e12);
  check_peaks(known("NVIDIA H200 NVL"), 4.8e12, 60e12, 835.5e12);
  CHECK_FALSE(registry_peaks("NVIDIA GH200 480GB").has_value());  // not an H200
}

TEST_CASE("registry: A10 is not A100, and each A100 has its own bandwidth") {
  check_peaks(known("NVIDIA A10"), 600e9, 31.2e12, 125e12);
  check_peaks(known("NVIDIA A100-SXM4-80GB"), 2039e9, 19.5e12, 312e12);
  check_peaks(known("NVIDIA A100 80GB PCIe"), 1935e9, 19.5e12, 312e12);
  check_peaks(known("NVIDIA A100-SXM4-40GB"), 1555e9, 19.5e12, 312e12);
  check_peaks(known("NVIDIA A100-PCIE-40GB"), 1555e9, 19.5e12, 312e12);
  check_peaks(known("NVIDIA A40"), 696e9, 37.4e12, 149.7e12);
  CHECK_FALSE(registry_peaks("NVIDIA A10G").has_value());  // a different part
}

TEST_CASE("registry: L4 is not L40 or L40S, and L40S is not L40") {
  check_peaks(known("NVIDIA L4"), 300e9, 30.3e12, 121e12);
  check_peaks(known("NVIDIA L40S"), 864e9, 91.6e12, 362.05e12);
  check_peaks(known("NVIDIA L40"), 864e9, 90.5e12, 181.05e12);
}

TEST_CASE("registry: GeForce parts use the FP32-accumulate tensor rate; Ti is not matched") {
  check_peaks(known("NVIDIA GeForce RTX 3090"), 936e9, 35.6e12, 71e12);
  check_peaks(known("NVIDIA GeForce RTX 4090"), 1008e9, 82.6e12, 165.2e12);
  CHECK_FALSE(registry_peaks("NVIDIA GeForce RTX 3090 Ti").has_value());
  CHECK_FALSE(registry_peaks("NVIDIA GeForce RTX 4090 Laptop GPU").has_value());
}

TEST_CASE("registry: MI300X, case-insensitive names, unknown devices") {
  check_peaks(known("AMD Instinct MI300X"), 5.3e12, 163.4e12, 1307.4e12);
  check_peaks(known("AMD Instinct MI300X VF"), 5.3e12, 163.4e12, 1307.4e12);
  check_peaks(known("nvidia h100 pcie"), 2.0e12, 51.2e12, 756.5e12);
  CHECK_FALSE(registry_peaks("Tesla T4").has_value());
  CHECK_FALSE(registry_peaks("").has_value());
  CHECK_FALSE(registry_peaks("AMD Instinct MI300A").has_value());
}

TEST_CASE("derived peaks: SMs x per-clock rate x clock, and the memory bus") {
  // H100 SXM5 as its attributes read: 132 SMs at 1.98 GHz, HBM3 at 2.619 GHz on 5120 bits.
  auto h100 = properties("Unlisted H100", 9, 0, 132, 1980000);
  DevicePeaks p = derived_peaks(h100);
  CHECK(p.source == "attributes");
  CHECK(p.name == "Unlisted H100");
  CHECK(p.bandwidth == doctest::Approx(2.0 * 2619e6 * 5120 / 8));
  CHECK(p.fp32_flops == doctest::Approx(132.0 * 256 * 1.98e9));  // 66.9 TFLOP/s
  CHECK(p.tensor_fp16_flops == doctest::Approx(132.0 * 4096 * 1.98e9));

  // The per-clock rates reproduce the datasheets at the datasheets' boost clocks.
  auto a100 = properties("Unlisted A100", 8, 0, 108, 1410000);
  CHECK(derived_peaks(a100).fp32_flops == doctest::Approx(19.5e12).epsilon(0.01));
  CHECK(derived_peaks(a100).tensor_fp16_flops == doctest::Approx(312e12).epsilon(0.01));
  auto a10 = properties("Unlisted A10", 8, 6, 72, 1695000);
  CHECK(derived_peaks(a10).fp32_flops == doctest::Approx(31.2e12).epsilon(0.01));
  CHECK(derived_peaks(a10).tensor_fp16_flops == doctest::Approx(125e12).epsilon(0.01));
  // GeForce: FP32 accumulation at half rate (RTX 3090: 82 SMs at 1.695 GHz).
  auto rtx3090 = properties("NVIDIA GeForce RTX 3090 (unlisted)", 8, 6, 82, 1695000);
  CHECK(derived_peaks(rtx3090).fp32_flops == doctest::Approx(35.6e12).epsilon(0.01));
  CHECK(derived_peaks(rtx3090).tensor_fp16_flops == doctest::Approx(71e12).epsilon(0.01));
  auto l4 = properties("Unlisted L4", 8, 9, 58, 2040000);
  CHECK(derived_peaks(l4).fp32_flops == doctest::Approx(30.3e12).epsilon(0.01));
  CHECK(derived_peaks(l4).tensor_fp16_flops == doctest::Approx(121e12).epsilon(0.01));

  // MI300X: 304 CUs at 2.1 GHz.
  auto mi300x = properties("Unlisted MI300X", 9, 4, 304, 2100000);
  mi300x.platform = kiln::rt::Platform::hip;
  mi300x.arch = "gfx942:sramecc+:xnack-";
  CHECK(derived_peaks(mi300x).fp32_flops == doctest::Approx(163.4e12).epsilon(0.001));
  CHECK(derived_peaks(mi300x).tensor_fp16_flops == doctest::Approx(1307.4e12).epsilon(0.001));
}

TEST_CASE("derived peaks: unknown architectures give 0 (unknown), not a guess") {
  auto turing = properties("Tesla T4", 7, 5, 40, 1590000);
  DevicePeaks p = derived_peaks(turing);
  CHECK(p.bandwidth > 0);
  CHECK(p.fp32_flops == 0);
  CHECK(p.tensor_fp16_flops == 0);
  auto gfx90a = properties("AMD Instinct MI250X", 9, 0, 220, 1700000);
  gfx90a.platform = kiln::rt::Platform::hip;
  gfx90a.arch = "gfx90a";
  CHECK(derived_peaks(gfx90a).fp32_flops == 0);
}

TEST_CASE("peaks_for: the registry where it knows the name, else the attributes") {
  auto h100 = properties("NVIDIA H100 80GB HBM3", 9, 0, 132, 1980000);
  DevicePeaks p = peaks_for(h100);
  CHECK(p.source == "registry");
  CHECK(p.tensor_fp16_flops == doctest::Approx(989.5e12));
  h100.name = "NVIDIA H100 (engineering sample)";
  p = peaks_for(h100);
  CHECK(p.source == "attributes");
  CHECK(p.tensor_fp16_flops == doctest::Approx(132.0 * 4096 * 1.98e9));
}
