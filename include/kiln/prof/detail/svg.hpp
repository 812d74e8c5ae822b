#pragma once
/// Small pieces for writing SVG charts by hand: XML escaping, logarithmic axes, and label
/// placement that keeps labels off each other.

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace kiln::prof::detail {

/// `text` with XML's five special characters escaped, and control characters (which XML
/// 1.0 does not allow) replaced by spaces.
inline std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    }
  }
  return out;
}

/// `text` cut to at most `max` bytes, ending in "..." where cut, never inside a UTF-8
/// character.
inline std::string shorten(std::string_view text, std::size_t max) {
  if (text.size() <= max) return std::string(text);
  std::size_t keep = max > 3 ? max - 3 : 0;
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  return std::string(text.substr(0, keep)) + "...";
}

/// A logarithmic axis: values lo..hi onto pixels from..to.
struct LogAxis {
  double lo = 1, hi = 10;
  double from = 0, to = 1;

  double operator()(double v) const {
    return from +
           (to - from) * (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
  }
  /// The powers of ten inside lo..hi, as exponents.
  std::vector<int> decades() const {
    std::vector<int> out;
    for (int e = int(std::ceil(std::log10(lo) - 1e-9)); e <= int(std::floor(std::log10(hi) + 1e-9));
         ++e) {
      out.push_back(e);
    }
    return out;
  }
};

/// lo..hi widened about its geometric middle to span at least `decades` powers of ten.
inline void widen(double& lo, double& hi, double decades) {
  const double span = std::log10(hi / lo);
  if (span >= decades) return;
  const double grow = std::pow(10.0, (decades - span) / 2);
  lo /= grow;
  hi *= grow;
}

/// A rectangle in pixels.
struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
  bool inside(const Box& o) const { return x0 >= o.x0 && x1 <= o.x1 && y0 >= o.y0 && y1 <= o.y1; }
};

/// `box` overlaps one of `taken`.
inline bool collides(const Box& box, const std::vector<Box>& taken) {
  return std::any_of(taken.begin(), taken.end(), [&](const Box& b) { return b.overlaps(box); });
}

/// Small boxes along the segment (x0, y0)-(x1, y1), `r` pixels either side of it: how a
/// sloping line or text keeps labels off without blocking the whole rectangle around it.
inline std::vector<Box> segment_boxes(double x0, double y0, double x1, double y1, double r) {
  std::vector<Box> out;
  const int steps = std::max(1, int(std::hypot(x1 - x0, y1 - y0) / r));
  for (int i = 0; i <= steps; ++i) {
    const double t = double(i) / steps, x = x0 + t * (x1 - x0), y = y0 + t * (y1 - y0);
    out.push_back({x - r, y - r, x + r, y + r});
  }
  return out;
}

/// A rough width of `text` in sans-serif at `size` pixels (no font metrics without a font;
/// 0.6 em a character overestimates most text a little, which errs on the side of space).
inline double text_width(std::string_view text, double size) {
  std::size_t chars = 0;
  for (char c : text) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return double(chars) * 0.6 * size;
}

/// Where a label goes: its anchor point and SVG text-anchor.
struct LabelSpot {
  double x, y;
  const char* anchor;
  Box box;
};

/// The first of the usual places around a marker at (x, y) (right, left, above, below, and
/// the diagonals) where a label `width` pixels wide and `size` high stays inside `area` and
/// clear of `taken`; nothing where none is.
inline std::optional<LabelSpot> place_label(double x, double y, double width, double size,
                                            const Box& area, const std::vector<Box>& taken) {
  const double gap = 8, up = size * 0.75, down = size * 0.25;
  const LabelSpot spots[] = {
      {x + gap, y + up / 2, "start", {x + gap, y - up / 2 - 1, x + gap + width, y + up / 2 + down}},
      {x - gap, y + up / 2, "end", {x - gap - width, y - up / 2 - 1, x - gap, y + up / 2 + down}},
      {x, y - gap - down, "middle", {x - width / 2, y - gap - up - down, x + width / 2, y - gap}},
      {x, y + gap + up, "middle", {x - width / 2, y + gap, x + width / 2, y + gap + up + down}},
      {x + gap / 2,
       y - gap,
       "start",
       {x + gap / 2, y - gap - up, x + gap / 2 + width, y - gap + down}},
      {x + gap / 2,
       y + gap + up,
       "start",
       {x + gap / 2, y + gap, x + gap / 2 + width, y + gap + up + down}},
      {x - gap / 2,
       y - gap,
       "end",
       {x - gap / 2 - width, y - gap - up, x - gap / 2, y - gap + down}},
      {x - gap / 2,
       y + gap + up,
       "end",
       {x - gap / 2 - width, y + gap, x - gap / 2, y + gap + up + down}},
  };
  for (const LabelSpot& s : spots) {
    if (s.box.inside(area) && !collides(s.box, taken)) return s;
  }
  return std::nullopt;
}

}  // namespace kiln::prof::detail
