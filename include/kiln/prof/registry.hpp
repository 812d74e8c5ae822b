#pragma once
/// Peak rates of GPUs: a registry of vendors' datasheet figures looked up by device name,
/// and, for devices it does not know, peaks derived from the device's attributes.
///
/// Every tensor figure is the dense rate (no 2:4 sparsity) for FP16/BF16 inputs with FP32
/// accumulation, the way mixed-precision GEMMs run. GeForce and a few other parts run FP32
/// accumulation at half the FP16-accumulation rate; their entries say which figure they use.

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "../rt/device.hpp"
#include "record.hpp"

namespace kiln::prof {

namespace detail {

/// One registry entry: the names it matches, most specific first, and its peaks.
struct RegistryEntry {
  std::array<std::string_view, 4> patterns;  ///< unused slots are empty
  double bandwidth;                          ///< bytes/s
  double fp32_flops;                         ///< FLOP/s
  double tensor_fp16_flops;                  ///< dense FLOP/s
};

constexpr double tb = 1e12;  // TB/s and TFLOP/s
constexpr double gb = 1e9;   // GB/s

// Matching rules (see name_matches): a pattern matches as whole words, so "A10" does not
// match "A100" or "A10G" and "L4" does not match "L40S"; a trailing '$' anchors the pattern
// at the end of the name, so "RTX 3090$" does not match an "RTX 3090 Ti" (a different part).
// Entries are tried in order, the more specific first.
inline constexpr std::array<RegistryEntry, 16> registry_entries{{
    // NVIDIA H100 Tensor Core GPU datasheet, H100 NVL column: 3.9 TB/s, FP32 60 TFLOPS,
    // FP16 Tensor Core 1,671 TFLOPS with sparsity -> 835.5 dense.
    {{"H100 NVL"}, 3.9 * tb, 60 * tb, 835.5 * tb},
    // Same datasheet, H100 PCIe column: 2 TB/s; FP32 51 TFLOPS (51.2 = 114 SMs x 256
    // FLOP/clk x 1.755 GHz); FP16 Tensor Core 1,513 TFLOPS with sparsity -> 756.5 dense.
    {{"H100 PCIe"}, 2.0 * tb, 51.2 * tb, 756.5 * tb},
    // Same datasheet, H100 SXM column (the driver names it "NVIDIA H100 80GB HBM3"):
    // 3.35 TB/s, FP32 67 TFLOPS, FP16 Tensor Core 1,979 TFLOPS with sparsity -> 989.5 dense.
    {{"H100 SXM5", "H100 SXM", "H100 80GB HBM3"}, 3.35 * tb, 67 * tb, 989.5 * tb},
    // NVIDIA H200 Tensor Core GPU datasheet, H200 NVL column: 4.8 TB/s, FP32 60 TFLOPS,
    // FP16 Tensor Core 1,671 TFLOPS with sparsity -> 835.5 dense.
    {{"H200 NVL"}, 4.8 * tb, 60 * tb, 835.5 * tb},
    // Same datasheet, H200 SXM column: 4.8 TB/s, FP32 67 TFLOPS, FP16 Tensor Core 1,979
    // TFLOPS with sparsity -> 989.5 dense. ("GH200" does not match: whole words only.)
    {{"H200"}, 4.8 * tb, 67 * tb, 989.5 * tb},
    // NVIDIA A100 Tensor Core GPU datasheet: FP32 19.5 TFLOPS and FP16 Tensor Core 312
    // TFLOPS (624 with sparsity) for every A100; GPU memory bandwidth 2,039 GB/s (80GB SXM),
    // 1,935 GB/s (80GB PCIe), 1,555 GB/s (40GB, PCIe and SXM).
    {{"A100-SXM4-80GB", "A100-SXM-80GB"}, 2039 * gb, 19.5 * tb, 312 * tb},
    {{"A100 80GB PCIe", "A100-PCIE-80GB"}, 1935 * gb, 19.5 * tb, 312 * tb},
    {{"A100-SXM4-40GB", "A100-PCIE-40GB", "A100-SXM-40GB"}, 1555 * gb, 19.5 * tb, 312 * tb},
    // NVIDIA A10 Tensor Core GPU datasheet: 600 GB/s, FP32 31.2 TFLOPS, FP16 Tensor Core
    // 125 TFLOPS (250 with sparsity).
    {{"A10"}, 600 * gb, 31.2 * tb, 125 * tb},
    // NVIDIA A40 datasheet: 696 GB/s, FP32 37.4 TFLOPS, FP16 Tensor (FP32 accumulate)
    // 149.7 TFLOPS (299.4 with sparsity).
    {{"A40"}, 696 * gb, 37.4 * tb, 149.7 * tb},
    // NVIDIA Ampere GA102 GPU Architecture whitepaper, GeForce RTX 3090 column: 936 GB/s,
    // FP32 35.6 TFLOPS, FP16 Tensor with FP32 accumulate 71 TFLOPS dense (142 with FP16
    // accumulate; GeForce runs FP32 accumulation at half rate). 71 is the mixed-precision rate.
    {{"RTX 3090$"}, 936 * gb, 35.6 * tb, 71 * tb},
    // NVIDIA L4 datasheet: 300 GB/s, FP32 30.3 TFLOPS, FP16 Tensor Core 242 TFLOPS with
    // sparsity -> 121 dense.
    {{"L4"}, 300 * gb, 30.3 * tb, 121 * tb},
    // NVIDIA L40S datasheet: 864 GB/s, FP32 91.6 TFLOPS, FP16 Tensor Core 362.05 TFLOPS
    // dense (733 with sparsity).
    {{"L40S"}, 864 * gb, 91.6 * tb, 362.05 * tb},
    // NVIDIA L40 datasheet: 864 GB/s, FP32 90.5 TFLOPS, FP16 Tensor Core 181.05 TFLOPS
    // dense (362.1 with sparsity; the L40 runs FP32 accumulation at half rate).
    {{"L40"}, 864 * gb, 90.5 * tb, 181.05 * tb},
    // NVIDIA Ada Lovelace GPU Architecture whitepaper, GeForce RTX 4090 column: 1,008 GB/s,
    // FP32 82.6 TFLOPS, FP16 Tensor with FP32 accumulate 165.2 TFLOPS dense (330.3 with
    // FP16 accumulate). 165.2 is the mixed-precision rate.
    {{"RTX 4090$"}, 1008 * gb, 82.6 * tb, 165.2 * tb},
    // AMD Instinct MI300X data sheet: 5.3 TB/s peak memory bandwidth, 163.4 TFLOPS peak FP32
    // vector, 1,307.4 TFLOPS peak FP16 matrix (dense; 2,614.9 with sparsity).
    {{"MI300X"}, 5.3 * tb, 163.4 * tb, 1307.4 * tb},
}};

inline char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}
inline bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

/// Whether `pattern` occurs in `name`, ignoring case, as whole words (no letter or digit
/// right before or after it). A trailing '$' in `pattern` requires the match to end the
/// name (trailing spaces aside).
inline bool name_matches(std::string_view name, std::string_view pattern) {
  bool at_end = !pattern.empty() && pattern.back() == '$';
  if (at_end) pattern.remove_suffix(1);
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  if (pattern.empty() || pattern.size() > name.size()) return false;
  for (std::size_t at = 0; at + pattern.size() <= name.size(); ++at) {
    bool same = std::equal(pattern.begin(), pattern.end(), name.begin() + std::ptrdiff_t(at),
                           [](char a, char b) { return lower(a) == lower(b); });
    if (!same) continue;
    std::size_t end = at + pattern.size();
    if (at > 0 && is_word_char(name[at - 1])) continue;
    if (end < name.size() && (at_end || is_word_char(name[end]))) continue;
    return true;
  }
  return false;
}

/// What one multiprocessor (SM or CU) does per clock.
struct PerClockRates {
  double fp32_flops = 0;         ///< FP32 FLOP/clock (an FMA counts 2)
  double tensor_fp16_flops = 0;  ///< dense FP16 tensor FLOP/clock, FP32 accumulate
};

/// Per-multiprocessor rates by architecture, from the vendors' architecture documents
/// (FLOP, so an FMA counts 2; halve them for FMA/clock):
///   sm_80 (A100):        64 FP32 lanes -> 128; tensor 2048 (= 312 TFLOPS / 108 SMs / 1.41 GHz)
///   sm_86 (GA10x):      128 FP32 lanes -> 256; tensor 1024 (A10, A40, RTX A6000), but 512 on
///                        GeForce, which runs FP32 accumulation at half rate (RTX 3090: 71
///                        TFLOPS = 82 SMs x 512 x 1.695 GHz)
///   sm_89 (AD10x):      128 FP32 lanes -> 256; tensor 1024 (L4, L40S, RTX 6000 Ada), 512 on
///                        GeForce (the L40's half rate is in the registry, not here)
///   sm_90 (H100/H200):  128 FP32 lanes -> 256; tensor 4096 (= 989.5 TFLOPS / 132 / 1.83 GHz)
///   gfx940-942 (CDNA3): 128 FP32 lanes per CU (64 stream processors with packed FP32, as
///                        AMD counts its FP32 vector peak) -> 256; matrix FP16 2048
///                        (MI300X: 304 CUs x 2.1 GHz x 256 = 163.4, x 2048 = 1307.4 TFLOPS)
/// Anything else gives zeros: unknown, and shown as "-" rather than guessed.
inline PerClockRates per_clock_rates(const rt::DeviceProperties& p) {
  if (p.platform == rt::Platform::hip) {
    if (p.arch.starts_with("gfx940") || p.arch.starts_with("gfx941") ||
        p.arch.starts_with("gfx942")) {
      return {256, 2048};
    }
    return {};
  }
  const bool geforce = name_matches(p.name, "GeForce");
  switch (p.compute_major * 10 + p.compute_minor) {
    case 80:
      return {128, 2048};
    case 86:
    case 89:
      return {256, geforce ? 512.0 : 1024.0};
    case 90:
      return {256, 4096};
    default:
      return {};
  }
}

}  // namespace detail

/// The datasheet peaks of the device named `device_name` ("NVIDIA H100 80GB HBM3"), or
/// nullopt when the registry does not know it. Names match as whole words, ignoring case.
inline std::optional<DevicePeaks> registry_peaks(std::string_view device_name) {
  for (const auto& e : detail::registry_entries) {
    for (std::string_view pattern : e.patterns) {
      if (pattern.empty() || !detail::name_matches(device_name, pattern)) continue;
      return DevicePeaks{std::string(device_name), e.bandwidth, e.fp32_flops, e.tensor_fp16_flops,
                         "registry"};
    }
  }
  return std::nullopt;
}

/// Peaks computed from the device's attributes: bandwidth from the memory clock and bus
/// width, compute from multiprocessors x per-clock rate (see detail::per_clock_rates) x the
/// reported SM clock. The reported clock is the maximum boost clock, so these can exceed
/// the datasheet (H100 SXM: 1070 dense FP16 TFLOPS at 1.98 GHz against 989.5 at 1.83);
/// rates kiln does not know are 0.
inline DevicePeaks derived_peaks(const rt::DeviceProperties& p) {
  const detail::PerClockRates rates = detail::per_clock_rates(p);
  const double per_second = double(p.multiprocessors) * double(p.sm_clock_khz) * 1e3;
  return DevicePeaks{p.name, p.peak_bandwidth(), rates.fp32_flops * per_second,
                     rates.tensor_fp16_flops * per_second, "attributes"};
}

/// The registry's peaks for this device where it knows the name, else derived_peaks().
inline DevicePeaks peaks_for(const rt::DeviceProperties& p) {
  if (auto peaks = registry_peaks(p.name)) return *std::move(peaks);
  return derived_peaks(p);
}

}  // namespace kiln::prof
