#pragma once
/// The roofline chart's data and frame: the points, the axes' ranges, and the grid, ticks
/// and axis titles drawn around them.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../record.hpp"
#include "kernel_groups.hpp"
#include "svg.hpp"
#include "units.hpp"

namespace kiln::prof::detail {

/// A kernel on the chart: its calls with DRAM byte counters and declared FLOPs, summed
/// (measured), or where it has none, its calls that declared both bytes and FLOPs.
struct RooflinePoint {
  std::string name;
  double intensity;       ///< FLOP/byte
  double performance;     ///< FLOP/s
  bool measured = false;  ///< bytes from the DRAM counters, not declared
};

/// The kernels of `device` placed by measured bytes where counters exist, by declared
/// bytes otherwise (both need declared FLOPs), longest-running first.
inline std::vector<RooflinePoint> roofline_points(const Profile& profile, int device) {
  std::vector<RooflinePoint> points;
  for (const KernelGroup& g : group_kernels(profile)) {
    if (g.device != device) continue;
    if (g.measured_bytes > 0 && g.measured_flops > 0 && g.measured_us > 0) {
      points.push_back({g.name, g.measured_flops / g.measured_bytes,
                        g.measured_flops / (g.measured_us * 1e-6), true});
      continue;
    }
    if (g.both_bytes <= 0 || g.both_flops <= 0 || g.both_us <= 0) continue;
    points.push_back({g.name, g.both_flops / g.both_bytes, g.both_flops / (g.both_us * 1e-6)});
  }
  return points;
}

/// A tick label for 10^e on the intensity axis: "0.01", "1", "1000", or "1e-5".
inline std::string intensity_tick(int e) {
  return e >= -3 && e <= 4 ? fmt::format("{:g}", std::pow(10.0, e)) : fmt::format("1e{}", e);
}

/// `v` with three significant digits, without an exponent below 10^6 ("0.25", "12.3", "4096").
inline std::string plain_number(double v) {
  return v >= 1000 && v < 1e6 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v);
}

/// Colours of the points (Tableau 10 without its grey, which the roofs use).
inline constexpr const char* point_colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c",
                                                "#d62728", "#9467bd", "#8c564b",
                                                "#e377c2", "#bcbd22", "#17becf"};

/// The chart's canvas, plot area and axes.
struct RooflineFrame {
  static constexpr double width = 980, height = 600;
  Box plot{120, 70, 700, 530};
  LogAxis x, y;
};

/// Axes that hold every point and every ridge (where a compute roof meets the bandwidth
/// roof) with room around them, the bandwidth roof from the left edge, and at least two
/// decades each way.
inline RooflineFrame roofline_frame(const std::vector<RooflinePoint>& points,
                                    const DevicePeaks& peaks) {
  std::vector<double> xs, ys;
  for (const auto& p : points) {
    xs.push_back(p.intensity);
    ys.push_back(p.performance);
  }
  for (double peak : {peaks.fp32_flops, peaks.tensor_fp16_flops}) {
    if (peak <= 0) continue;
    ys.push_back(peak);
    if (peaks.bandwidth > 0) xs.push_back(peak / peaks.bandwidth);
  }
  double x_lo = xs.empty() ? 0.1 : *std::min_element(xs.begin(), xs.end()) / 4;
  double x_hi = xs.empty() ? 1000 : *std::max_element(xs.begin(), xs.end()) * 4;
  widen(x_lo, x_hi, 2);
  double y_lo = ys.empty() ? 1e9 : *std::min_element(ys.begin(), ys.end());
  if (peaks.bandwidth > 0) y_lo = std::min(y_lo, peaks.bandwidth * x_lo);
  y_lo /= 1.5;
  // Room above the highest roof for its label.
  double y_hi = ys.empty() ? 1e15 : *std::max_element(ys.begin(), ys.end()) * 2.5;
  widen(y_lo, y_hi, 2);
  RooflineFrame f;
  f.x = {x_lo, x_hi, f.plot.x0, f.plot.x1};
  f.y = {y_lo, y_hi, f.plot.y1, f.plot.y0};
  return f;
}

/// The grid (light at 2..9 x 10^e, darker at powers of ten), the frame, tick labels at the
/// powers of ten (every second or more where there are over ten), and the axis titles.
inline std::string roofline_axes(const RooflineFrame& f) {
  const Box& plot = f.plot;
  auto grid = [&](const LogAxis& axis, bool vertical) {
    std::string out;
    const int first = int(std::floor(std::log10(axis.lo)));
    const int last = int(std::ceil(std::log10(axis.hi)));
    for (int e = first; e <= last; ++e) {
      for (int m = 1; m <= 9; ++m) {
        const double v = m * std::pow(10.0, e);
        if (v < axis.lo || v > axis.hi) continue;
        const double at = axis(v);
        const char* colour = m == 1 ? "#cfcfcf" : "#efefef";
        out += vertical ? fmt::format(
                              "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" "
                              "stroke=\"{3}\"/>\n",
                              at, plot.y0, plot.y1, colour)
                        : fmt::format(
                              "<line x1=\"{1}\" y1=\"{0:.1f}\" x2=\"{2}\" y2=\"{0:.1f}\" "
                              "stroke=\"{3}\"/>\n",
                              at, plot.x0, plot.x1, colour);
      }
    }
    return out;
  };
  std::string svg = "<g stroke-width=\"1\">\n" + grid(f.x, true) + grid(f.y, false) + "</g>\n";
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n",
      plot.x0, plot.y0, plot.x1 - plot.x0, plot.y1 - plot.y0);

  auto labelled = [](const std::vector<int>& decades, int e) {
    const int step = std::max(1, int(decades.size() + 9) / 10);
    return ((e % step) + step) % step == 0;
  };
  const std::vector<int> x_decades = f.x.decades(), y_decades = f.y.decades();
  for (int e : x_decades) {
    if (!labelled(x_decades, e)) continue;
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       f.x(std::pow(10.0, e)), plot.y1 + 18, intensity_tick(e));
  }
  for (int e : y_decades) {
    if (!labelled(y_decades, e)) continue;
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", plot.x0 - 8,
                       f.y(std::pow(10.0, e)) + 4, si(std::pow(10.0, e), "FLOP/s"));
  }
  svg += fmt::format(
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">Arithmetic intensity "
      "(FLOP/byte)</text>\n",
      (plot.x0 + plot.x1) / 2, plot.y1 + 42);
  svg += fmt::format(
      "<text transform=\"translate(22 {}) rotate(-90)\" text-anchor=\"middle\" "
      "font-size=\"13\">Performance (FLOP/s)</text>\n",
      (plot.y0 + plot.y1) / 2);
  return svg;
}

}  // namespace kiln::prof::detail
