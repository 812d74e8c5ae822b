#pragma once
/// Reports of a Profile: the top-N markdown table of the hottest kernels, every record as
/// CSV or JSON, and writing a report to a file.

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "../error.hpp"
#include "derived.hpp"
#include "detail/kernel_groups.hpp"
#include "detail/profile_json.hpp"
#include "detail/units.hpp"
#include "names.hpp"
#include "record.hpp"

namespace kiln::prof {

namespace detail {

/// `text` safe inside a markdown table cell: pipes escaped, line breaks as spaces.
inline std::string markdown_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

/// `field` as an RFC 4180 CSV field: quoted, with quotes doubled, where it holds a comma,
/// a quote or a line break.
inline std::string csv_field(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

/// `v` with at most `decimals` decimals and no trailing zeros: 1.5, 3.75, 12, 0.001
/// (never 1.500000 or 2.2500000000000004). Times are in microseconds, so 3 decimals are
/// nanoseconds, finer than any timer kiln reads.
inline std::string csv_number(double v, int decimals) {
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.find_first_of("0123456789") == std::string::npos) return s;  // nan, inf
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

inline std::string percent(double part, double whole) {
  return whole > 0 ? fmt::format("{:.1f}", 100 * part / whole) : "-";
}

/// Whether any record of the profile has hardware counters.
inline bool has_counters(const Profile& profile) {
  return std::any_of(profile.kernels.begin(), profile.kernels.end(),
                     [](const KernelRecord& k) { return !k.counters.empty(); });
}

/// The metrics of the profile's counters: those asked for, in their order, then any other
/// a record holds, by name.
inline std::vector<std::string> counter_names(const Profile& profile) {
  std::vector<std::string> out = profile.metrics;
  std::set<std::string> extra;
  for (const KernelRecord& k : profile.kernels) {
    for (const auto& [name, value] : k.counters) {
      if (std::find(out.begin(), out.end(), name) == out.end()) extra.insert(name);
    }
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

/// The derived metrics' names (derived_rules) and "bound": the derived columns.
inline std::vector<std::string> derived_names() {
  std::vector<std::string> out;
  for (const DerivedRule& r : derived_rules) out.emplace_back(r.name);
  out.emplace_back("bound");
  return out;
}

/// A record's derived metrics (and "bound", as text), from its counters and its device's
/// peaks; empty where it has no counters.
struct RecordDerived {
  std::map<std::string, double> values;
  std::string bound;
};
inline RecordDerived record_derived(const Profile& profile, const KernelRecord& k) {
  if (k.counters.empty()) return {};
  const DeviceInfo* d = find_device(profile, k.device);
  const CounterInputs in{k.counters, k.duration_us(), k.flops, d ? &d->peaks : nullptr};
  return {derived_metrics(in), classify(in)};
}

/// A derived or counter value as a table cell.
inline std::string counter_cell(std::string_view column, double v) {
  if (column == "dram_bytes") return fmt::format("{:.1f}", v / 1e6);
  if (column == "measured_intensity") return fmt::format("{:.3g}", v);
  if (const DerivedRule* r = derived_rule(column); r && r->unit != "byte") {
    return fmt::format("{:.1f}", v);
  }
  return fmt::format("{:.4g}", v);
}

}  // namespace detail

/// What top_table() shows.
struct TableOptions {
  std::size_t rows = 20;  ///< kernels listed; the rest are summed in one row
  /// Columns added after the standard ones, by name: a derived metric (dram_bytes,
  /// dram_gbps, dram_pct_of_peak, measured_intensity, tensor_pct), "bound", or a counter's
  /// metric name. Empty: where the profile has counters, dram_gbps, dram_pct_of_peak,
  /// measured_intensity, tensor_pct and bound; none where it has no counters.
  std::vector<std::string> columns;
};

/// A markdown table of the `n` kernels that took the most device time, grouped by (name,
/// device) and sorted by total time, longest first. Columns: rank, kernel, device, calls,
/// total ms, mean / min / max us, % time, GB/s, % BW, TFLOP/s, % FLOP peak.
///
/// "% time" is the share of all kernel time in the profile. GB/s and TFLOP/s sum the bytes
/// and FLOPs of the calls that declared them over those calls' time; "% BW" and "% FLOP
/// peak" compare them with the device's peaks in `profile.devices`: the FP32 peak, or the
/// FP16 tensor peak (marked "(tensor)") where the rate exceeds the FP32 peak. "-" marks
/// what is unknown. Kernels past the first `n` are summed in one "more kernels" row; the
/// last row holds the totals. A line above the table names the peaks used.
///
/// Where records have hardware counters, columns of counters and derived metrics follow
/// (TableOptions::columns; derived.hpp says how each is computed): per kernel, over its
/// calls with counters (counts summed, percentages averaged weighted by duration); "-"
/// where a kernel lacks what a column needs. Profile::counters_note, where set, is printed
/// under the table. Throws kiln::Error for a column name that is neither, listing the names.
inline std::string top_table(const Profile& profile, const TableOptions& options) {
  const std::size_t n = options.rows;
  std::vector<std::string> columns = options.columns;
  if (columns.empty() && detail::has_counters(profile)) {
    columns = {"dram_gbps", "dram_pct_of_peak", "measured_intensity", "tensor_pct", "bound"};
  }
  const std::vector<std::string> metric_names = detail::counter_names(profile);
  for (const std::string& c : columns) {
    if (c == "bound" || derived_rule(c) ||
        std::find(metric_names.begin(), metric_names.end(), c) != metric_names.end()) {
      continue;
    }
    std::string known;
    for (const std::string& name : detail::derived_names()) known += " " + name;
    for (const std::string& name : metric_names) known += " " + name;
    throw Error("kiln: the top table has no column '" + c +
                "'; the columns that can be added are the derived metrics and the metrics this "
                "profile has counters for:" +
                known);
  }
  auto title = [](const std::string& c) {
    if (c == "bound") return std::string("bound");
    if (const DerivedRule* r = derived_rule(c)) return std::string(r->label);
    return c;
  };
  std::string extra_titles, extra_rule, extra_blank;
  for (const std::string& c : columns) {
    extra_titles += " " + detail::markdown_cell(title(c)) + " |";
    extra_rule += c == "bound" ? ":--|" : "--:|";
    extra_blank += "  |";
  }
  const std::vector<detail::KernelGroup> groups = detail::group_kernels(profile);
  double total_us = 0;
  std::size_t total_calls = 0;
  for (const auto& g : groups) {
    total_us += g.total_us;
    total_calls += g.calls;
  }

  std::string out;
  for (const DeviceInfo& d : profile.devices) {
    const DevicePeaks& p = d.peaks;
    if (p.bandwidth <= 0 && p.fp32_flops <= 0 && p.tensor_fp16_flops <= 0) continue;
    auto rate = [](double v, std::string_view unit) {
      return v > 0 ? detail::si(v, unit) : std::string("-");
    };
    out += fmt::format("Peaks of GPU {} ({}, from {}): {}, FP32 {}, FP16 tensor {}\n\n", d.ordinal,
                       detail::markdown_cell(d.name.empty() ? p.name : d.name),
                       p.source.empty() ? "unknown" : p.source, rate(p.bandwidth, "B/s"),
                       rate(p.fp32_flops, "FLOP/s"), rate(p.tensor_fp16_flops, "FLOP/s"));
  }
  out +=
      "| # | kernel | dev | calls | total ms | mean us | min us | max us | % time | GB/s | % BW "
      "| TFLOP/s | % FLOP peak |" +
      extra_titles + "\n|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|" + extra_rule + "\n";

  const std::size_t shown = std::min(n, groups.size());
  for (std::size_t i = 0; i < shown; ++i) {
    const detail::KernelGroup& g = groups[i];
    const DeviceInfo* device = detail::find_device(profile, g.device);
    const double bw = g.bytes_per_second();
    const double fl = g.flops_per_second();
    std::string gbs = "-", bw_pct = "-", tfl = "-", fl_pct = "-";
    if (bw > 0) {
      gbs = fmt::format("{:.1f}", bw / 1e9);
      if (device) bw_pct = detail::percent(bw, device->peaks.bandwidth);
    }
    if (fl > 0) {
      tfl = fmt::format("{:.2f}", fl / 1e12);
      if (device) {
        const detail::PeakFraction f = detail::compute_fraction(fl, device->peaks);
        if (f.fraction > 0) {
          fl_pct = fmt::format("{:.1f}{}", 100 * f.fraction, f.tensor ? " (tensor)" : "");
        }
      }
    }
    std::string extra;
    if (!columns.empty()) {
      const std::map<std::string, double> counters = g.counters.counters();
      const CounterInputs in{counters, g.counters.us(), g.counters.flops(),
                             device ? &device->peaks : nullptr};
      const std::map<std::string, double> derived = derived_metrics(in);
      for (const std::string& c : columns) {
        std::string cell = "-";
        if (c == "bound") {
          if (const std::string b = g.counters.calls() ? classify(in) : ""; !b.empty()) cell = b;
        } else if (auto d = derived.find(c); d != derived.end()) {
          cell = detail::counter_cell(c, d->second);
        } else if (auto m = counters.find(c); m != counters.end()) {
          cell = detail::counter_cell(c, m->second);
        }
        extra += " " + cell + " |";
      }
    }
    out += fmt::format(
        "| {} | {} | {} | {} | {:.3f} | {:.2f} | {:.2f} | {:.2f} | {} | {} | {} | {} | {} |{}\n",
        i + 1, detail::markdown_cell(short_name(g.name)), g.device, g.calls, g.total_us / 1e3,
        g.mean_us(), g.min_us, g.max_us, detail::percent(g.total_us, total_us), gbs, bw_pct, tfl,
        fl_pct, extra);
  }
  if (shown < groups.size()) {
    double rest_us = 0;
    std::size_t rest_calls = 0;
    for (std::size_t i = shown; i < groups.size(); ++i) {
      rest_us += groups[i].total_us;
      rest_calls += groups[i].calls;
    }
    out += fmt::format("|  | ({} more kernels) |  | {} | {:.3f} |  |  |  | {} |  |  |  |  |{}\n",
                       groups.size() - shown, rest_calls, rest_us / 1e3,
                       detail::percent(rest_us, total_us), extra_blank);
  }
  out += fmt::format("|  | **total** ({} kernels) |  | {} | {:.3f} |  |  |  | {} |  |  |  |  |{}\n",
                     groups.size(), total_calls, total_us / 1e3, total_us > 0 ? "100.0" : "-",
                     extra_blank);
  if (!profile.counters_note.empty()) out += "\nCounters: " + profile.counters_note + "\n";
  return out;
}

/// top_table() of the `n` hottest kernels, with the default columns.
inline std::string top_table(const Profile& profile, std::size_t n = 20) {
  return top_table(profile, TableOptions{n, {}});
}

/// Every record as CSV (RFC 4180: a header row, CRLF line ends, fields with commas, quotes
/// or line breaks quoted), one row per kernel execution, in the profile's order. `name` is
/// the kernel's name demangled (demangle()), `mangled_name` (the last column) the name as
/// recorded. Streams
/// are written in hex ("0x7f3a..."), as the Chrome trace names them; times in microseconds
/// and occupancy with at most 3 decimals, bytes and flops as whole numbers (csv_number).
///
/// Where records have hardware counters, more columns follow mangled_name: one per metric
/// (counter_names: those asked for, then any other, by name), then the derived metrics
/// (dram_bytes, dram_gbps, dram_pct_of_peak, measured_intensity, tensor_pct, bound); a
/// field is empty where a record lacks it. Without counters the columns are as above.
inline std::string to_csv(const Profile& profile) {
  const bool counters = detail::has_counters(profile);
  const std::vector<std::string> metric_names =
      counters ? detail::counter_names(profile) : std::vector<std::string>{};
  const std::vector<std::string> derived_names =
      counters ? detail::derived_names() : std::vector<std::string>{};
  std::string out =
      "name,params,config,device,stream,grid_x,grid_y,grid_z,block_x,block_y,block_z,"
      "shared_bytes,static_shared_bytes,registers,occupancy,start_us,end_us,duration_us,"
      "host_us,host_launch_us,bytes,flops,external,correlation,mangled_name";
  for (const std::string& m : metric_names) out += "," + detail::csv_field(m);
  for (const std::string& d : derived_names) out += "," + d;
  out += "\r\n";
  for (const KernelRecord& k : profile.kernels) {
    out += fmt::format(
        "{},{},{},{},{:#x},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        detail::csv_field(demangle(k.name)), detail::csv_field(k.params),
        detail::csv_field(k.config), k.device, k.stream, k.grid[0], k.grid[1], k.grid[2],
        k.block[0], k.block[1], k.block[2], k.shared_bytes, k.static_shared_bytes, k.registers,
        detail::csv_number(k.occupancy, 3), detail::csv_number(k.start_us, 3),
        detail::csv_number(k.end_us, 3), detail::csv_number(k.duration_us(), 3),
        detail::csv_number(k.host_us, 3), detail::csv_number(k.host_launch_us, 3),
        detail::csv_number(k.bytes, 0), detail::csv_number(k.flops, 0),
        k.external ? "true" : "false", k.correlation, detail::csv_field(k.name));
    if (counters) {
      for (const std::string& m : metric_names) {
        auto it = k.counters.find(m);
        out += "," + (it == k.counters.end() ? std::string() : detail::csv_number(it->second, 6));
      }
      const detail::RecordDerived d = detail::record_derived(profile, k);
      for (const DerivedRule& r : derived_rules) {
        auto it = d.values.find(std::string(r.name));
        out += "," + (it == d.values.end() ? std::string() : detail::csv_number(it->second, 6));
      }
      out += "," + d.bound;
    }
    out += "\r\n";
  }
  return out;
}

/// The straggler view of a multi-GPU profile: for each kernel that ran on more than one
/// device, one row per device with its calls, total and mean time, and how far it is behind
/// the fastest device on that kernel ("+12.5%": 12.5% more total time; the fastest reads
/// "fastest"). Kernels are ordered by their total time over all devices, longest first.
/// Where the profile has hardware counters, each row adds the device's DRAM GB/s, SM and
/// DRAM throughput (% of peak) and bound, which say why a device is behind.
/// Kernels that ran on one device only are counted in the line under the table.
inline std::string device_table(const Profile& profile) {
  const std::vector<detail::KernelGroup> groups = detail::group_kernels(profile);
  std::vector<std::string> order;       // kernel names, by total time over devices
  std::map<std::string, double> total;  // name -> total us over devices
  std::map<std::string, std::vector<const detail::KernelGroup*>> by_name;
  for (const auto& g : groups) {
    if (!by_name.contains(g.name)) order.push_back(g.name);
    by_name[g.name].push_back(&g);
    total[g.name] += g.total_us;
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return total[a] > total[b]; });
  // With counters, each device's DRAM rate, SM and DRAM throughput and bound say why a
  // device is behind.
  const bool counted = detail::has_counters(profile);
  std::string out = counted ? "| kernel | dev | calls | total ms | mean us | behind fastest | DRAM "
                              "GB/s | SM % | DRAM % | bound |\n"
                              "|:--|--:|--:|--:|--:|--:|--:|--:|--:|:--|\n"
                            : "| kernel | dev | calls | total ms | mean us | behind fastest |\n"
                              "|:--|--:|--:|--:|--:|--:|\n";
  auto counter_cells = [&](const detail::KernelGroup& g) {
    if (!counted) return std::string();
    if (g.counters.calls() == 0) return std::string(" - | - | - | - |");
    const std::map<std::string, double> counters = g.counters.counters();
    const DeviceInfo* device = detail::find_device(profile, g.device);
    const CounterInputs in{counters, g.counters.us(), g.counters.flops(),
                           device ? &device->peaks : nullptr};
    const std::map<std::string, double> derived = derived_metrics(in);
    auto cell = [](const std::map<std::string, double>& m, const char* name) {
      auto it = m.find(name);
      return it == m.end() ? std::string("-") : fmt::format("{:.1f}", it->second);
    };
    const std::string bound = classify(in);
    return fmt::format(" {} | {} | {} | {} |", cell(derived, "dram_gbps"),
                       cell(counters, metric::sm_throughput),
                       cell(counters, metric::dram_throughput), bound.empty() ? "-" : bound);
  };
  std::size_t single = 0, shown = 0;
  for (const std::string& name : order) {
    auto devices = by_name[name];
    if (devices.size() < 2) {
      ++single;
      continue;
    }
    ++shown;
    std::sort(devices.begin(), devices.end(),
              [](const auto* a, const auto* b) { return a->device < b->device; });
    double fastest = devices.front()->total_us;
    for (const auto* g : devices) fastest = std::min(fastest, g->total_us);
    for (const auto* g : devices) {
      const std::string behind =
          g->total_us == fastest
              ? std::string("fastest")
              : (fastest > 0 ? fmt::format("+{:.1f}%", 100 * (g->total_us / fastest - 1))
                             : std::string("-"));
      out += fmt::format("| {} | {} | {} | {:.3f} | {:.2f} | {} |{}\n",
                         detail::markdown_cell(short_name(name)), g->device, g->calls,
                         g->total_us / 1e3, g->mean_us(), behind, counter_cells(*g));
    }
  }
  if (shown == 0) {
    out += std::string("|  | (no kernel ran on more than one device) |  |  |  |  |") +
           (counted ? "  |  |  |  |\n" : "\n");
  }
  if (single > 0) out += fmt::format("\n{} kernel(s) ran on one device only.\n", single);
  return out;
}

/// The profile as JSON: {"format": "kiln-profile", "version": 1, "backend", "devices":
/// [{ordinal, name, peaks}], "kernels": [every field of every record, and duration_us]}.
/// profile_from_json() reads it back.
inline nlohmann::json to_json(const Profile& profile) {
  return detail::profile_to_json(profile);
}

/// The Profile that to_json() wrote. Throws kiln::Error naming what is missing or wrong.
inline Profile profile_from_json(const nlohmann::json& j) {
  return detail::profile_from_json(j);
}

/// Writes `content` to the file at `path`, replacing it. Throws kiln::Error naming the path
/// and the system's reason ("No such file or directory") when it cannot.
inline void write_file(const std::string& path, std::string_view content) {
  auto error = [&](const char* what, int code) {
    return Error(fmt::format("kiln: could not {} {}: {}", what, path,
                             code ? std::generic_category().message(code) : "short write"));
  };
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw error("open for writing", errno);
  errno = 0;
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const int write_errno = errno;
  errno = 0;
  const bool closed = std::fclose(f) == 0;
  if (!written) throw error("write", write_errno);
  if (!closed) throw error("write", errno);
}

}  // namespace kiln::prof
