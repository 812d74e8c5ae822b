#pragma once
/// A roofline chart of a Profile as a self-contained SVG: arithmetic intensity against
/// performance on log-log axes, the device's bandwidth and compute roofs, and a point per
/// kernel.

#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "detail/kernel_groups.hpp"
#include "detail/roofline_frame.hpp"
#include "detail/svg.hpp"
#include "detail/units.hpp"
#include "names.hpp"
#include "record.hpp"
#include "report.hpp"

namespace kiln::prof {

/// A roofline chart of the kernels that ran on GPU `device`, as a standalone SVG document
/// (no scripts, no external fonts or files; 980 x 600 px).
///
/// x is arithmetic intensity (FLOP/byte), y performance (FLOP/s), both logarithmic with a
/// tick at every power of ten (every second or third where the data spans many). Roofs,
/// from the device's peaks in `profile.devices`: memory bandwidth (y = bandwidth x
/// intensity), and the FP32 and FP16 tensor compute peaks as flat lines from where they
/// meet it; a roof whose peak is unknown (0) is left out. Each kernel (grouped by name)
/// whose calls declare both bytes and FLOPs is a numbered point at (FLOPs / bytes, FLOPs /
/// time) over those calls. Where a kernel's calls have DRAM byte counters (counters.hpp)
/// and declare FLOPs, its bytes are the measured ones (dram__bytes_read.sum +
/// dram__bytes_write.sum) instead, and the chart then marks every point: filled where
/// measured, hollow where declared, its figures ending "measured bytes" or "declared
/// bytes". Points are labelled with the kernel's name where there is room and its number
/// where not; the legend lists the roofs and the kernels by number (as many as fit, the
/// longest-running first), and hovering a point shows its full name and figures.
inline std::string roofline_svg(const Profile& profile, int device = 0) {
  using detail::Box;
  const std::vector<detail::RooflinePoint> points = detail::roofline_points(profile, device);
  const DeviceInfo* info = detail::find_device(profile, device);
  const DevicePeaks peaks = info ? info->peaks : DevicePeaks{};
  const double bw = peaks.bandwidth, fp32 = peaks.fp32_flops, tensor = peaks.tensor_fp16_flops;
  const detail::RooflineFrame f = detail::roofline_frame(points, peaks);
  // Where any kernel has measured bytes, each point says which bytes placed it.
  const bool any_measured = std::any_of(points.begin(), points.end(),
                                        [](const detail::RooflinePoint& p) { return p.measured; });
  const Box& plot = f.plot;
  // What labels keep off: markers and labels placed, and (where they can) the roof lines.
  std::vector<Box> taken, lines;
  auto with_lines = [&] {
    std::vector<Box> all = taken;
    all.insert(all.end(), lines.begin(), lines.end());
    return all;
  };
  // Text over a white halo, so that grid and roof lines it crosses do not run through it.
  auto halo_text = [](const std::string& attributes, const char* fill, const std::string& text) {
    return fmt::format(
        "<text {0} fill=\"white\" stroke=\"white\" stroke-width=\"3\" "
        "stroke-linejoin=\"round\">{2}</text>\n<text {0} fill=\"{1}\">{2}</text>\n",
        attributes, fill, detail::xml_escape(text));
  };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
      f.width, f.height);
  const std::string device_name = info ? (info->name.empty() ? peaks.name : info->name) : "";
  svg += fmt::format(
      "<text x=\"{}\" y=\"30\" font-size=\"18\" font-weight=\"bold\">{}</text>\n", plot.x0,
      detail::xml_escape(fmt::format("Roofline: GPU {}{}", device,
                                     device_name.empty() ? "" : ": " + device_name)));
  svg += fmt::format(
      "<text x=\"{}\" y=\"52\" fill=\"#555\">{}</text>\n", plot.x0,
      detail::xml_escape(
          (peaks.source.empty() ? std::string("peaks unknown") : "peaks from " + peaks.source) +
          (any_measured ? "; a point per kernel: bytes measured by DRAM counters (filled), or "
                          "declared (hollow)"
                        : "; a point per kernel, over its calls that declare bytes and FLOPs")));
  svg += detail::roofline_axes(f);

  // Where the points go, first: roof labels and point labels keep off every marker.
  std::vector<double> px, py;
  for (const auto& p : points) {
    px.push_back(f.x(p.intensity));
    py.push_back(f.y(p.performance));
    taken.push_back({px.back() - 6, py.back() - 6, px.back() + 6, py.back() + 6});
  }

  // Roofs: the bandwidth roof up to the highest compute roof, compute roofs flat from
  // where they meet it.
  struct Roof {
    std::string label;
    const char* dash;
  };
  std::vector<Roof> roofs;
  auto line = [](double x0, double y0, double x1, double y1, const char* dash) {
    return fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\" "
        "stroke-width=\"2\" stroke-dasharray=\"{}\"/>\n",
        x0, y0, x1, y1, *dash ? dash : "none");
  };
  if (bw > 0) {
    roofs.push_back({"Memory " + detail::si(bw, "B/s"), ""});
    const double top = std::max(fp32, tensor);
    const double xa = std::max(f.x.lo, f.y.lo / bw);
    const double xb = std::min({f.x.hi, f.y.hi / bw, top > 0 ? top / bw : f.x.hi});
    if (xa < xb) {
      const double x0 = f.x(xa), y0 = f.y(bw * xa), x1 = f.x(xb), y1 = f.y(bw * xb);
      svg += line(x0, y0, x1, y1, "");
      const auto along = detail::segment_boxes(x0, y0, x1, y1, 3);
      // Its label runs along it, just above, at the first of a few places clear of markers.
      const std::string& label = roofs.back().label;
      const double length = std::hypot(x1 - x0, y1 - y0), w = detail::text_width(label, 12);
      const double dx = (x1 - x0) / length, dy = (y1 - y0) / length;
      const double starts[] = {0.06, 0.18, 0.30, 0.42, 0.54, 0.66};
      double lx = 0, ly = 0;
      std::vector<Box> boxes;
      for (std::size_t i = 0; i <= std::size(starts); ++i) {
        const double t = starts[i % std::size(starts)];  // where none is clear, the first
        lx = x0 + t * (x1 - x0) + 6 * dy;
        ly = y0 + t * (y1 - y0) - 6 * dx;
        // The text's middle runs 4 px above its baseline.
        boxes = detail::segment_boxes(lx + 4 * dy, ly - 4 * dx, lx + (4 * dy + w * dx),
                                      ly + (w * dy - 4 * dx), 6);
        const bool clear = std::all_of(boxes.begin(), boxes.end(), [&](const Box& b) {
          return b.inside(plot) && !detail::collides(b, taken);
        });
        if (clear) break;
      }
      taken.insert(taken.end(), boxes.begin(), boxes.end());
      svg += halo_text(fmt::format("x=\"{0:.1f}\" y=\"{1:.1f}\" transform=\"rotate({2:.2f} {0:.1f} "
                                   "{1:.1f})\"",
                                   lx, ly, std::atan2(dy, dx) * 180 / 3.14159265358979),
                       "#333", label);
      lines.insert(lines.end(), along.begin(), along.end());
    }
  }
  std::vector<std::pair<double, std::string>> flat_labels;  // drawn after every roof line
  auto flat_roof = [&](double peak, std::string label, const char* dash) {
    roofs.push_back({label, dash});
    const double from = f.x(std::max(f.x.lo, bw > 0 ? peak / bw : f.x.lo)), at = f.y(peak);
    svg += line(from, at, plot.x1, at, dash);
    lines.push_back({from, at - 2, plot.x1, at + 2});
    flat_labels.push_back({peak, std::move(label)});
  };
  if (tensor > 0) flat_roof(tensor, "FP16 tensor " + detail::si(tensor, "FLOP/s"), "");
  if (fp32 > 0) flat_roof(fp32, "FP32 " + detail::si(fp32, "FLOP/s"), "7 5");
  for (const auto& [peak, label] : flat_labels) {
    // Right-aligned above the line, else below it, else at its left end.
    const double at = f.y(peak), w = detail::text_width(label, 12);
    const double from = f.x(std::max(f.x.lo, bw > 0 ? peak / bw : f.x.lo));
    const detail::LabelSpot spots[] = {
        {plot.x1 - 6, at - 6, "end", {plot.x1 - 6 - w, at - 17, plot.x1 - 6, at - 3}},
        {plot.x1 - 6, at + 15, "end", {plot.x1 - 6 - w, at + 4, plot.x1 - 6, at + 18}},
        {from + 6, at - 6, "start", {from + 6, at - 17, from + 6 + w, at - 3}},
        {from + 6, at + 15, "start", {from + 6, at + 4, from + 6 + w, at + 18}}};
    const detail::LabelSpot* spot = &spots[0];
    for (const auto& s : spots) {
      if (s.box.inside(plot) && !detail::collides(s.box, with_lines())) {
        spot = &s;
        break;
      }
    }
    taken.push_back(spot->box);
    svg += halo_text(
        fmt::format("x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\"", spot->x, spot->y, spot->anchor),
        "#333", label);
  }
  // Points, hottest kernel first: markers, then labels (names where there is room, else
  // numbers).
  auto roof_at = [&](const detail::RooflinePoint& p) {
    double compute = p.performance > fp32 && tensor > 0 ? tensor : (fp32 > 0 ? fp32 : tensor);
    if (bw > 0) compute = compute > 0 ? std::min(compute, bw * p.intensity) : bw * p.intensity;
    return compute;
  };
  auto figures = [&](const detail::RooflinePoint& p) {
    std::string s = fmt::format("{} FLOP/B, {}", detail::plain_number(p.intensity),
                                detail::si(p.performance, "FLOP/s"));
    if (const double roof = roof_at(p); roof > 0) {
      s += fmt::format(", {:.0f}% of roof", 100 * p.performance / roof);
    }
    if (any_measured) s += p.measured ? ", measured bytes" : ", declared bytes";
    return s;
  };
  for (std::size_t i = 0; i < points.size(); ++i) {
    const char* colour = detail::point_colours[i % std::size(detail::point_colours)];
    const bool hollow = any_measured && !points[i].measured;
    svg += fmt::format(
        "<g><title>{}</title><circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\" "
        "stroke=\"{}\"{}/></g>\n",
        detail::xml_escape(
            fmt::format("{} {}: {}", i + 1, demangle(points[i].name), figures(points[i]))),
        px[i], py[i], hollow ? "white" : colour, hollow ? colour : "white",
        hollow ? " stroke-width=\"2\"" : "");
  }
  // A label goes where it is clear of everything, else where it only crosses a roof line,
  // and is the kernel's number where its name fits nowhere.
  for (std::size_t i = 0; i < points.size(); ++i) {
    std::optional<detail::LabelSpot> spot;
    std::string text;
    for (std::string candidate : {short_name(points[i].name, 28), std::to_string(i + 1)}) {
      const double w = detail::text_width(candidate, 11);
      spot = detail::place_label(px[i], py[i], w, 11, plot, with_lines());
      if (!spot) spot = detail::place_label(px[i], py[i], w, 11, plot, taken);
      text = candidate;
      if (spot) break;
    }
    if (spot) {
      taken.push_back(spot->box);
    } else {
      spot = detail::LabelSpot{px[i] + 7, py[i] - 5, "start", {}};
    }
    svg += halo_text(fmt::format("x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\" font-size=\"11\"",
                                 spot->x, spot->y, spot->anchor),
                     "black", text);
  }
  if (points.empty()) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
                       (plot.x0 + plot.x1) / 2, (plot.y0 + plot.y1) / 2,
                       detail::xml_escape(fmt::format(
                           "No kernel on GPU {} declares both bytes and FLOPs", device)));
  }

  // Legend: the roofs, then the kernels by number.
  const double lx = plot.x1 + 28;
  double ly = plot.y0 + 10;
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-weight=\"bold\">Roofs</text>\n", lx, ly);
  if (roofs.empty()) {
    ly += 20;
    svg +=
        fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#555\">none: peaks unknown</text>\n", lx, ly);
  }
  for (const Roof& r : roofs) {
    ly += 20;
    svg += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\" stroke-width=\"2\" "
        "stroke-dasharray=\"{}\"/>\n<text x=\"{}\" y=\"{}\">{}</text>\n",
        lx, ly - 4, lx + 26, ly - 4, *r.dash ? r.dash : "none", lx + 34, ly,
        detail::xml_escape(r.label));
  }
  ly += 34;
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-weight=\"bold\">Kernels</text>\n", lx, ly);
  // Each entry takes 33 px; where not all fit, the last line says how many more there are.
  const auto fit = std::size_t(std::max(0.0, (f.height - 20 - ly) / 33));
  const std::size_t listed = points.size() > fit ? (fit > 0 ? fit - 1 : 0) : points.size();
  for (std::size_t i = 0; i < listed; ++i) {
    ly += 20;
    svg += fmt::format(
        "<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{}\"{}/>\n<text x=\"{}\" y=\"{}\">{}</text>\n"
        "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">{}</text>\n",
        lx + 5, ly - 4,
        any_measured && !points[i].measured
            ? "white"
            : detail::point_colours[i % std::size(detail::point_colours)],
        any_measured && !points[i].measured
            ? fmt::format(" stroke=\"{}\" stroke-width=\"2\"",
                          detail::point_colours[i % std::size(detail::point_colours)])
            : std::string(),
        lx + 16, ly,
        detail::xml_escape(fmt::format("{} {}", i + 1, short_name(points[i].name, 30))), lx + 16,
        ly + 13, detail::xml_escape(figures(points[i])));
    ly += 13;
  }
  if (listed < points.size()) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#555\">and {} more</text>\n", lx, ly + 20,
                       points.size() - listed);
  }
  return svg + "</svg>\n";
}

/// Writes roofline_svg(profile, device) to `path`. Throws kiln::Error naming the path and
/// the reason when it cannot.
inline void write_roofline_svg(const Profile& profile, const std::string& path, int device = 0) {
  write_file(path, roofline_svg(profile, device));
}

}  // namespace kiln::prof
