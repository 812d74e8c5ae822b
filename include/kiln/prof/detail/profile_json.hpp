#pragma once
/// A Profile to JSON and back (the format of kiln::prof::to_json).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../error.hpp"
#include "../derived.hpp"
#include "../record.hpp"

namespace kiln::prof::detail {

inline constexpr const char* profile_format = "kiln-profile";
inline constexpr int profile_version = 1;

inline nlohmann::json peaks_to_json(const DevicePeaks& p) {
  return {{"name", p.name},
          {"bandwidth", p.bandwidth},
          {"fp32_flops", p.fp32_flops},
          {"tensor_fp16_flops", p.tensor_fp16_flops},
          {"source", p.source}};
}

inline nlohmann::json record_to_json(const KernelRecord& k) {
  return {{"name", k.name},
          {"params", k.params},
          {"config", k.config},
          {"device", k.device},
          {"stream", k.stream},
          {"grid", k.grid},
          {"block", k.block},
          {"shared_bytes", k.shared_bytes},
          {"static_shared_bytes", k.static_shared_bytes},
          {"registers", k.registers},
          {"occupancy", k.occupancy},
          {"start_us", k.start_us},
          {"end_us", k.end_us},
          {"duration_us", k.duration_us()},
          {"host_us", k.host_us},
          {"host_launch_us", k.host_launch_us},
          {"bytes", k.bytes},
          {"flops", k.flops},
          {"external", k.external},
          {"correlation", k.correlation}};
}

/// The record's counters and derived metrics (with "bound" where known), for the JSON and
/// the trace; nothing where it has no counters.
inline void add_counters_json(nlohmann::json& out, const KernelRecord& k,
                              const DevicePeaks* peaks) {
  if (k.counters.empty()) return;
  out["counters"] = k.counters;
  const CounterInputs in{k.counters, k.duration_us(), k.flops, peaks};
  nlohmann::json derived = derived_metrics(in);
  if (const std::string bound = classify(in); !bound.empty()) derived["bound"] = bound;
  out["derived"] = std::move(derived);
}

/// The peaks of device `ordinal` in `devices`, or nullptr.
inline const DevicePeaks* peaks_of(const std::vector<DeviceInfo>& devices, int ordinal) {
  for (const DeviceInfo& d : devices) {
    if (d.ordinal == ordinal) return &d.peaks;
  }
  return nullptr;
}

/// Reads "counters" back (the derived metrics are computed again, not read).
inline void read_counters_json(const nlohmann::json& j, KernelRecord& k) {
  if (auto it = j.find("counters"); it != j.end()) {
    for (const auto& [name, value] : it->items()) k.counters[name] = value.get<double>();
  }
}

inline nlohmann::json profile_to_json(const Profile& profile) {
  nlohmann::json devices = nlohmann::json::array();
  for (const DeviceInfo& d : profile.devices) {
    devices.push_back(
        {{"ordinal", d.ordinal}, {"name", d.name}, {"peaks", peaks_to_json(d.peaks)}});
  }
  nlohmann::json kernels = nlohmann::json::array();
  for (const KernelRecord& k : profile.kernels) {
    nlohmann::json r = record_to_json(k);
    add_counters_json(r, k, peaks_of(profile.devices, k.device));
    kernels.push_back(std::move(r));
  }
  nlohmann::json out = {{"format", profile_format},
                        {"version", profile_version},
                        {"backend", profile.backend},
                        {"devices", std::move(devices)},
                        {"kernels", std::move(kernels)}};
  if (!profile.metrics.empty()) out["metrics"] = profile.metrics;
  if (!profile.counters_note.empty()) out["counters_note"] = profile.counters_note;
  return out;
}

/// Reads a field where present (records from older writers may lack some).
template <class T>
void read_field(const nlohmann::json& j, const char* key, T& out) {
  if (auto it = j.find(key); it != j.end()) it->get_to(out);
}

inline Profile profile_from_json(const nlohmann::json& j) {
  if (!j.is_object() || j.value("format", std::string()) != profile_format) {
    throw Error(std::string("kiln: this JSON is not a kiln profile (no \"format\": \"") +
                profile_format + "\"); write one with kiln::prof::to_json");
  }
  if (int v = j.value("version", 0); v != profile_version) {
    throw Error("kiln: kiln profile version " + std::to_string(v) +
                " is not supported (this kiln reads version " + std::to_string(profile_version) +
                ")");
  }
  Profile p;
  try {
    read_field(j, "backend", p.backend);
    read_field(j, "metrics", p.metrics);
    read_field(j, "counters_note", p.counters_note);
    for (const auto& d : j.value("devices", nlohmann::json::array())) {
      DeviceInfo info;
      read_field(d, "ordinal", info.ordinal);
      read_field(d, "name", info.name);
      if (auto it = d.find("peaks"); it != d.end()) {
        read_field(*it, "name", info.peaks.name);
        read_field(*it, "bandwidth", info.peaks.bandwidth);
        read_field(*it, "fp32_flops", info.peaks.fp32_flops);
        read_field(*it, "tensor_fp16_flops", info.peaks.tensor_fp16_flops);
        read_field(*it, "source", info.peaks.source);
      }
      p.devices.push_back(std::move(info));
    }
    for (const auto& r : j.value("kernels", nlohmann::json::array())) {
      KernelRecord k;
      read_field(r, "name", k.name);
      read_field(r, "params", k.params);
      read_field(r, "config", k.config);
      read_field(r, "device", k.device);
      read_field(r, "stream", k.stream);
      read_field(r, "grid", k.grid);
      read_field(r, "block", k.block);
      read_field(r, "shared_bytes", k.shared_bytes);
      read_field(r, "static_shared_bytes", k.static_shared_bytes);
      read_field(r, "registers", k.registers);
      read_field(r, "occupancy", k.occupancy);
      read_field(r, "start_us", k.start_us);
      read_field(r, "end_us", k.end_us);
      read_field(r, "host_us", k.host_us);
      read_field(r, "host_launch_us", k.host_launch_us);
      read_field(r, "bytes", k.bytes);
      read_field(r, "flops", k.flops);
      read_field(r, "external", k.external);
      read_field(r, "correlation", k.correlation);
      read_counters_json(r, k);
      p.kernels.push_back(std::move(k));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("kiln: a field of this kiln profile has the wrong type: ") + e.what());
  }
  return p;
}

}  // namespace kiln::prof::detail
