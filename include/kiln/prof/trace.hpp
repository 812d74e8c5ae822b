#pragma once
/// A Profile as a Chrome trace (the Trace Event format that ui.perfetto.dev and
/// chrome://tracing open): one process per GPU, one track per stream, and the host's
/// launches on a track of their own, joined to their kernels by flow arrows.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "detail/gzip_file.hpp"
#include "detail/profile_json.hpp"
#include "names.hpp"
#include "record.hpp"
#include "report.hpp"

namespace kiln::prof {

namespace detail {

/// Microseconds as whole nanoseconds: the trace's times are written to the nanosecond,
/// and tracks are laid out on these, so back-to-back kernels never overlap by a rounding.
inline std::int64_t trace_ns(double us) {
  return std::llround(us * 1e3);
}

/// A time span in nanoseconds, and the record or launch it belongs to.
struct Span {
  std::int64_t start = 0, end = 0;
  std::size_t record = 0;
};

/// Puts `spans` on the fewest lanes on which none overlap (a span may start where another
/// ends): sorted by start, each goes on the first lane free by then. Returns the lanes,
/// each in start order.
inline std::vector<std::vector<Span>> lay_out(std::vector<Span> spans) {
  std::stable_sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.start != b.start ? a.start < b.start : a.end < b.end;
  });
  std::vector<std::vector<Span>> lanes;
  for (const Span& s : spans) {
    auto free = std::find_if(lanes.begin(), lanes.end(), [&](const std::vector<Span>& lane) {
      return lane.back().end <= s.start;
    });
    if (free == lanes.end()) {
      lanes.emplace_back();
      free = std::prev(lanes.end());
    }
    free->push_back(s);
  }
  return lanes;
}

inline std::string lane_name(const std::string& track, std::size_t lane) {
  return lane == 0 ? track : fmt::format("{} ({})", track, lane + 1);
}

inline nlohmann::json metadata(const char* what, int pid, int tid, nlohmann::json args) {
  return {{"ph", "M"},  {"name", what}, {"pid", pid},
          {"tid", tid}, {"ts", 0},      {"args", std::move(args)}};
}

inline nlohmann::json kernel_args(const KernelRecord& k, std::size_t index,
                                  const DevicePeaks* peaks = nullptr) {
  nlohmann::json a = {
      {"kernel", k.name},
      {"record", index},
      {"device", k.device},
      {"stream", fmt::format("{:#x}", k.stream)},
      {"grid", fmt::format("{}x{}x{}", k.grid[0], k.grid[1], k.grid[2])},
      {"block", fmt::format("{}x{}x{}", k.block[0], k.block[1], k.block[2])},
      {"shared_bytes", std::int64_t(k.static_shared_bytes) + std::int64_t(k.shared_bytes)},
      {"dynamic_shared_bytes", k.shared_bytes},
      {"start_us", k.start_us},
      {"end_us", k.end_us}};
  if (k.registers > 0) a["registers_per_thread"] = k.registers;
  if (k.occupancy > 0) a["occupancy"] = k.occupancy;
  const double seconds = k.duration_us() * 1e-6;
  if (k.bytes > 0) {
    a["bytes"] = k.bytes;
    if (seconds > 0) a["achieved_GB/s"] = k.bytes / seconds / 1e9;
  }
  if (k.flops > 0) {
    a["flops"] = k.flops;
    if (seconds > 0) a["achieved_TFLOP/s"] = k.flops / seconds / 1e12;
  }
  if (!k.params.empty()) a["params"] = k.params;
  if (!k.config.empty()) a["config"] = k.config;
  if (k.correlation) a["correlation"] = k.correlation;
  add_counters_json(a, k, peaks);
  return a;
}

inline bool has_host_launch(const KernelRecord& k) {
  return !k.external && (k.host_us > 0 || k.host_launch_us > 0);
}

}  // namespace detail

/// The profile in the Trace Event format: {"traceEvents": [...], "displayTimeUnit": "ms"}.
///
/// Each GPU is a process (pid = ordinal + 1: Perfetto treats pid 0 as the kernel's idle
/// process; its process_name says "GPU <ordinal>: <name>"), each stream a track named
/// "stream 0x..."; kernels that overlap on one stream (CUPTI's concurrent kernels, or
/// external ones) go on extra tracks "stream 0x... (2)", so no two slices on a track
/// overlap. Kernels are complete events ("ph": "X", cat "kernel" or "external kernel", ts
/// and dur in microseconds, to the nanosecond) whose args hold the launch shape, resources,
/// bytes, FLOPs, achieved rates, params and config, and where the record has hardware
/// counters, "counters" (by metric name) and "derived" (derived.hpp, with "bound"). kiln's
/// host launches are slices (cat
/// "launch", dur = the time spent in the launch call) on the "launches" track of a "host"
/// process (the pid after the GPUs'), each joined to its kernel by a flow arrow (bind_id).
/// Track ids are unique across the whole trace, and none is also a pid.
inline nlohmann::json chrome_trace(const Profile& profile) {
  using nlohmann::json;
  json events = json::array();

  std::set<int> ordinals;
  for (const DeviceInfo& d : profile.devices) ordinals.insert(d.ordinal);
  for (const KernelRecord& k : profile.kernels) ordinals.insert(k.device);
  const int host_pid = ordinals.empty() ? 1 : *ordinals.rbegin() + 2;

  // Track ids come after every pid: a process's own metadata uses tid = pid (its main
  // thread, as viewers assume where there is no tid), and no track shares a tid with
  // another process's, which Perfetto would take for the same thread.
  int next_tid = host_pid + 1;
  auto add_track = [&](int pid, const std::string& name) {
    const int tid = next_tid++;
    events.push_back(detail::metadata("thread_name", pid, tid, {{"name", name}}));
    events.push_back(detail::metadata("thread_sort_index", pid, tid, {{"sort_index", tid}}));
    return tid;
  };
  auto add_process = [&](int pid, const std::string& name, int sort_index) {
    events.push_back(detail::metadata("process_name", pid, pid, {{"name", name}}));
    events.push_back(
        detail::metadata("process_sort_index", pid, pid, {{"sort_index", sort_index}}));
  };

  // Records whose host launch is drawn; flow arrows join the two by bind_id = index + 1.
  std::vector<bool> launched(profile.kernels.size());
  for (std::size_t i = 0; i < profile.kernels.size(); ++i) {
    launched[i] = detail::has_host_launch(profile.kernels[i]);
  }

  for (int ordinal : ordinals) {
    const int pid = ordinal + 1;
    const DeviceInfo* device = detail::find_device(profile, ordinal);
    const std::string name = device && !device->name.empty() ? device->name
                             : device                        ? device->peaks.name
                                                             : std::string();
    add_process(
        pid,
        name.empty() ? fmt::format("GPU {}", ordinal) : fmt::format("GPU {}: {}", ordinal, name),
        ordinal + 1);
    std::map<std::uint64_t, std::vector<detail::Span>> streams;
    for (std::size_t i = 0; i < profile.kernels.size(); ++i) {
      const KernelRecord& k = profile.kernels[i];
      if (k.device != ordinal) continue;
      const std::int64_t start = detail::trace_ns(k.start_us);
      streams[k.stream].push_back({start, std::max(start, detail::trace_ns(k.end_us)), i});
    }
    for (const auto& [stream, spans] : streams) {
      const auto lanes = detail::lay_out(spans);
      for (std::size_t lane = 0; lane < lanes.size(); ++lane) {
        const int tid =
            add_track(pid, detail::lane_name(fmt::format("stream {:#x}", stream), lane));
        for (const detail::Span& s : lanes[lane]) {
          const KernelRecord& k = profile.kernels[s.record];
          json e = {{"ph", "X"},
                    {"name", demangle(k.name)},
                    {"cat", k.external ? "external kernel" : "kernel"},
                    {"pid", pid},
                    {"tid", tid},
                    {"ts", double(s.start) / 1e3},
                    {"dur", double(s.end - s.start) / 1e3},
                    {"args", detail::kernel_args(k, s.record, device ? &device->peaks : nullptr)}};
          if (launched[s.record]) {
            e["bind_id"] = s.record + 1;
            e["flow_in"] = true;
          }
          events.push_back(std::move(e));
        }
      }
    }
  }

  std::vector<detail::Span> launches;
  for (std::size_t i = 0; i < profile.kernels.size(); ++i) {
    if (!launched[i]) continue;
    const KernelRecord& k = profile.kernels[i];
    const std::int64_t start = detail::trace_ns(k.host_us);
    launches.push_back(
        {start, start + std::max<std::int64_t>(detail::trace_ns(k.host_launch_us), 0), i});
  }
  if (!launches.empty()) {
    add_process(host_pid, "host", 0);
    const auto lanes = detail::lay_out(std::move(launches));
    for (std::size_t lane = 0; lane < lanes.size(); ++lane) {
      const int tid = add_track(host_pid, detail::lane_name("launches", lane));
      for (const detail::Span& s : lanes[lane]) {
        const KernelRecord& k = profile.kernels[s.record];
        events.push_back({{"ph", "X"},
                          {"name", demangle(k.name)},
                          {"cat", "launch"},
                          {"pid", host_pid},
                          {"tid", tid},
                          {"ts", double(s.start) / 1e3},
                          {"dur", double(s.end - s.start) / 1e3},
                          {"bind_id", s.record + 1},
                          {"flow_out", true},
                          {"args",
                           {{"kernel", k.name},
                            {"record", s.record},
                            {"device", k.device},
                            {"stream", fmt::format("{:#x}", k.stream)},
                            {"host_us", k.host_us},
                            {"host_launch_us", k.host_launch_us}}}});
      }
    }
  }

  json devices = json::array();
  for (const DeviceInfo& d : profile.devices) {
    devices.push_back(
        {{"ordinal", d.ordinal}, {"name", d.name}, {"peaks", detail::peaks_to_json(d.peaks)}});
  }
  json other = {
      {"generator", "kiln"}, {"backend", profile.backend}, {"devices", std::move(devices)}};
  if (!profile.metrics.empty()) other["metrics"] = profile.metrics;
  if (!profile.counters_note.empty()) other["counters_note"] = profile.counters_note;
  return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}, {"otherData", other}};
}

/// Whether `j` is a trace chrome_trace() wrote.
inline bool is_kiln_trace(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("traceEvents")) return false;
  const auto other = j.find("otherData");
  return other != j.end() && other->is_object() && other->value("generator", "") == "kiln";
}

/// The Profile a trace of chrome_trace() holds, read back from its events' args (each
/// kernel's name as recorded, its shape, resources, times to the nanosecond, bytes, FLOPs,
/// params and config, and its host launch) and the devices in "otherData": so a trace that
/// KILN_PROFILE wrote gives the same tables, CSV and roofline as the session's Profile.
/// Throws kiln::Error for JSON that is not such a trace, naming what is missing.
inline Profile profile_from_chrome_trace(const nlohmann::json& j) {
  if (!is_kiln_trace(j)) {
    throw Error(
        "kiln: this JSON is not a trace kiln wrote (no \"otherData\": {\"generator\": "
        "\"kiln\"}); write one with kiln::prof::write_chrome_trace or KILN_PROFILE=FILE.json");
  }
  Profile p;
  try {
    const nlohmann::json& other = j.at("otherData");
    detail::read_field(other, "backend", p.backend);
    detail::read_field(other, "metrics", p.metrics);
    detail::read_field(other, "counters_note", p.counters_note);
    for (const auto& d : other.value("devices", nlohmann::json::array())) {
      DeviceInfo info;
      detail::read_field(d, "ordinal", info.ordinal);
      detail::read_field(d, "name", info.name);
      if (auto it = d.find("peaks"); it != d.end()) {
        detail::read_field(*it, "name", info.peaks.name);
        detail::read_field(*it, "bandwidth", info.peaks.bandwidth);
        detail::read_field(*it, "fp32_flops", info.peaks.fp32_flops);
        detail::read_field(*it, "tensor_fp16_flops", info.peaks.tensor_fp16_flops);
        detail::read_field(*it, "source", info.peaks.source);
      }
      p.devices.push_back(std::move(info));
    }
    std::map<std::size_t, KernelRecord> records;
    std::map<std::size_t, std::pair<double, double>> launches;  // record -> host, launch us
    auto dims = [](const std::string& text, std::array<unsigned, 3>& out) {
      unsigned x = 1, y = 1, z = 1;
      if (std::sscanf(text.c_str(), "%ux%ux%u", &x, &y, &z) == 3) out = {x, y, z};
    };
    for (const auto& e : j.at("traceEvents")) {
      if (e.value("ph", "") != "X" || !e.contains("args")) continue;
      const std::string cat = e.value("cat", "");
      const nlohmann::json& a = e.at("args");
      if (!a.contains("record")) continue;
      const auto index = a.at("record").get<std::size_t>();
      if (cat == "launch") {
        launches[index] = {a.value("host_us", 0.0), a.value("host_launch_us", 0.0)};
        continue;
      }
      if (cat != "kernel" && cat != "external kernel") continue;
      KernelRecord k;
      k.name = a.value("kernel", e.value("name", ""));
      k.external = cat == "external kernel";
      detail::read_field(a, "device", k.device);
      k.stream = std::stoull(a.value("stream", "0x0"), nullptr, 16);
      dims(a.value("grid", ""), k.grid);
      dims(a.value("block", ""), k.block);
      detail::read_field(a, "dynamic_shared_bytes", k.shared_bytes);
      k.static_shared_bytes =
          int(a.value("shared_bytes", std::int64_t(0)) - std::int64_t(k.shared_bytes));
      detail::read_field(a, "registers_per_thread", k.registers);
      detail::read_field(a, "occupancy", k.occupancy);
      k.start_us = a.value("start_us", e.value("ts", 0.0));
      k.end_us = a.value("end_us", k.start_us + e.value("dur", 0.0));
      detail::read_field(a, "bytes", k.bytes);
      detail::read_field(a, "flops", k.flops);
      detail::read_field(a, "params", k.params);
      detail::read_field(a, "config", k.config);
      detail::read_field(a, "correlation", k.correlation);
      detail::read_counters_json(a, k);
      records[index] = std::move(k);
    }
    for (auto& [index, k] : records) {
      if (auto it = launches.find(index); it != launches.end()) {
        k.host_us = it->second.first;
        k.host_launch_us = it->second.second;
      }
      p.kernels.push_back(std::move(k));
    }
  } catch (const std::exception& e) {
    throw Error(std::string("kiln: a field of this kiln trace is missing or has the wrong type: ") +
                e.what());
  }
  return p;
}

/// Writes chrome_trace(profile) to `path`, gzip-compressed where the path ends in ".gz"
/// (Perfetto opens .json.gz as it is). Throws kiln::Error naming the path and the reason
/// when it cannot, and saying what to do where .gz is asked for and zlib is missing.
inline void write_chrome_trace(const Profile& profile, const std::string& path) {
  // Names that are not valid UTF-8 are written with U+FFFD rather than failing the dump.
  const std::string text =
      chrome_trace(profile).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (path.ends_with(".gz")) {
    detail::write_gzip_file(path, text);
  } else {
    write_file(path, text);
  }
}

}  // namespace kiln::prof
