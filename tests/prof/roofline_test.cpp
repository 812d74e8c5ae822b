// kiln/prof/roofline.hpp: the SVG is well-formed XML, holds every roof and kernel label,
// escapes names, and keeps what it draws on the canvas.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "kiln/prof/roofline.hpp"

using namespace kiln::prof;

namespace {

KernelRecord call(std::string name, int device, double us, double bytes, double flops) {
  KernelRecord k;
  k.name = std::move(name);
  k.device = device;
  k.start_us = 0;
  k.end_us = us;
  k.bytes = bytes;
  k.flops = flops;
  return k;
}

// An H100 SXM5's peaks and kernels either side of the FP32 ridge (20 FLOP/byte).
Profile roofline_profile() {
  Profile p;
  p.devices.push_back({0,
                       "NVIDIA H100 80GB HBM3",
                       {"NVIDIA H100 80GB HBM3", 3.35e12, 67e12, 989.5e12, "registry"}});
  p.kernels.push_back(call("softmax<half>", 0, 1000, 2.5e9, 2.5e9));  // 1 FLOP/B, 2.5 TFLOP/s
  p.kernels.push_back(call("softmax<half>", 0, 1000, 2.5e9, 2.5e9));
  p.kernels.push_back(call("layernorm & residual", 0, 500, 1.2e9, 6e9));  // 5, 12
  p.kernels.push_back(call("conv3x3 \"grouped\"", 0, 300, 2e8, 1e10));    // 50, 33
  p.kernels.push_back(call("gemm_f16_128x128", 0, 2000, 2e9, 1.4e12));    // 700, 700
  p.kernels.push_back(call("copy_only", 0, 100, 1e9, 0));                 // no FLOPs: not drawn
  p.kernels.push_back(call("other_gpu_kernel", 1, 100, 1e9, 1e9));        // device 1
  return p;
}

// Checks that every tag is closed in order, that no '<' or '&' stands unescaped in text or
// attributes, and that the document is one <svg> element. Returns an empty string or what
// is wrong.
std::string tag_balance(const std::string& xml) {
  std::vector<std::string> open;
  std::size_t i = 0;
  int roots = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      static const std::regex entity("^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);");
      if (!std::regex_search(xml.substr(i, 12), entity)) return "a bare & at " + std::to_string(i);
      ++i;
      continue;
    }
    if (xml[i] != '<') {
      if (open.empty() && xml[i] != '\n' && xml[i] != ' ') return "text outside the root";
      ++i;
      continue;
    }
    const std::size_t end = xml.find('>', i);
    if (end == std::string::npos) return "an unclosed tag at " + std::to_string(i);
    const std::string tag = xml.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) return "a '<' inside tag <" + tag + ">";
    if (tag.empty()) return "an empty tag";
    // Attributes: each name once (a repeated one is not XML), values quoted.
    static const std::regex attribute("([A-Za-z:_-]+)=\"[^\"]*\"");
    std::vector<std::string> names;
    for (auto a = std::sregex_iterator(tag.begin(), tag.end(), attribute);
         a != std::sregex_iterator(); ++a) {
      const std::string attribute_name = (*a)[1];
      if (std::find(names.begin(), names.end(), attribute_name) != names.end()) {
        return "attribute " + attribute_name + " repeated in <" + tag + ">";
      }
      names.push_back(attribute_name);
    }
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1))
        return "</" + tag.substr(1) + "> closes nothing open";
      open.pop_back();
    } else if (tag[0] == '!' || tag[0] == '?') {
      return "a declaration or comment: <" + tag + ">";
    } else if (tag.back() != '/') {
      const std::string name = tag.substr(0, tag.find_first_of(" \t\n"));
      static const std::regex valid("^[A-Za-z][A-Za-z0-9:_-]*$");
      if (!std::regex_match(name, valid)) return "a bad tag name: " + name;
      if (open.empty()) ++roots;
      open.push_back(name);
    } else if (open.empty()) {
      ++roots;
    }
    i = end + 1;
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (roots != 1) return std::to_string(roots) + " root elements";
  return "";
}

// Every number in attribute `name` of elements `tag` (e.g. circle cx).
std::vector<double> attribute_values(const std::string& svg, const std::string& tag,
                                     const std::string& name) {
  std::vector<double> out;
  const std::regex element("<" + tag + " [^>]*>");
  const std::regex attribute(" " + name + "=\"(-?[0-9.e+-]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), element);
       it != std::sregex_iterator(); ++it) {
    std::smatch m;
    const std::string text = it->str();
    if (std::regex_search(text, m, attribute)) out.push_back(std::stod(m[1]));
  }
  return out;
}

}  // namespace

TEST_CASE("tag_balance catches what it must (so the checks below can fail)") {
  CHECK(tag_balance("<svg><g><text>a</text></g></svg>") == "");
  CHECK(tag_balance("<svg><g></svg>") != "");
  CHECK(tag_balance("<svg><text>a < b</text></svg>") != "");
  CHECK(tag_balance("<svg><text>a & b</text></svg>") != "");
  CHECK(tag_balance("<svg/><svg/>") != "");
  CHECK(tag_balance("<svg><text x=\"1\" fill=\"a\" fill=\"b\">t</text></svg>") != "");
}

TEST_CASE("roofline_svg: well-formed, roofs and kernels labelled, names escaped") {
  const std::string svg = roofline_svg(roofline_profile());
  INFO(svg);
  CHECK(svg.starts_with("<svg"));
  CHECK(tag_balance(svg) == "");
  CHECK(svg.find("<script") == std::string::npos);
  CHECK(svg.find("@font-face") == std::string::npos);
  CHECK(svg.find("href") == std::string::npos);

  CHECK(svg.find("Roofline: GPU 0: NVIDIA H100 80GB HBM3") != std::string::npos);
  CHECK(svg.find("Memory 3.35 TB/s") != std::string::npos);
  CHECK(svg.find("FP32 67 TFLOP/s") != std::string::npos);
  CHECK(svg.find("FP16 tensor 989.5 TFLOP/s") != std::string::npos);
  CHECK(svg.find("Arithmetic intensity (FLOP/byte)") != std::string::npos);
  for (const char* tick :
       {">1 TFLOP/s<", ">10 TFLOP/s<", ">100 TFLOP/s<", ">1 PFLOP/s<", ">1<", ">10<", ">100<"}) {
    CHECK_MESSAGE(svg.find(tick) != std::string::npos, tick);
  }

  for (const char* label : {"softmax&lt;half&gt;", "layernorm &amp; residual",
                            "conv3x3 &quot;grouped&quot;", "gemm_f16_128x128"}) {
    CHECK_MESSAGE(svg.find(label) != std::string::npos, label);
  }
  CHECK(svg.find("softmax<half>") == std::string::npos);
  CHECK(svg.find("copy_only") == std::string::npos);         // no FLOPs declared
  CHECK(svg.find("other_gpu_kernel") == std::string::npos);  // another device
  // softmax: two calls of 2.5e9 FLOP and bytes in 1 ms each -> 1 FLOP/B at 2.5 TFLOP/s.
  CHECK(svg.find("softmax&lt;half&gt;: 1 FLOP/B, 2.5 TFLOP/s, 75% of roof") != std::string::npos);
}

TEST_CASE("roofline_svg: everything drawn lies on the canvas, points inside the plot") {
  const std::string svg = roofline_svg(roofline_profile());
  const auto cx = attribute_values(svg, "circle", "cx");
  const auto cy = attribute_values(svg, "circle", "cy");
  REQUIRE(cx.size() == 8);  // four points and their four legend markers
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(cx[i] >= 120);
    CHECK(cx[i] <= 700);
    CHECK(cy[i] >= 70);
    CHECK(cy[i] <= 530);
  }
  for (const char* a : {"x1", "x2"}) {
    for (double v : attribute_values(svg, "line", a)) CHECK((v >= 0 && v <= 980));
  }
  for (const char* a : {"y1", "y2"}) {
    for (double v : attribute_values(svg, "line", a)) CHECK((v >= 0 && v <= 600));
  }
  for (double v : attribute_values(svg, "text", "x")) CHECK((v >= 0 && v <= 980));
  for (double v : attribute_values(svg, "text", "y")) CHECK((v >= 0 && v <= 600));
}

TEST_CASE("roofline_svg: no points, no peaks, many kernels") {
  const std::string empty = roofline_svg(Profile{});
  CHECK(tag_balance(empty) == "");
  CHECK(empty.find("No kernel on GPU 0 declares both bytes and FLOPs") != std::string::npos);
  CHECK(empty.find("none: peaks unknown") != std::string::npos);

  Profile many;
  many.devices.push_back({0, "Test GPU", {"Test GPU", 1e12, 10e12, 100e12, "attributes"}});
  for (int i = 0; i < 30; ++i) {
    many.kernels.push_back(
        call("kernel_" + std::to_string(i), 0, 100.0 + i, 1e6 * (i + 1), 1e7 * (i % 7 + 1)));
  }
  const std::string svg = roofline_svg(many);
  CHECK(tag_balance(svg) == "");
  CHECK(svg.find("more</text>") != std::string::npos);
  for (double v : attribute_values(svg, "text", "y")) CHECK((v >= 0 && v <= 600));
}

TEST_CASE("write_roofline_svg writes the chart") {
  std::string dir = (std::filesystem::temp_directory_path() / "kiln_roofline_XXXXXX").string();
  REQUIRE(::mkdtemp(dir.data()) != nullptr);
  const std::string path = dir + "/roofline.svg";
  write_roofline_svg(roofline_profile(), path);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  CHECK(text == roofline_svg(roofline_profile()));
  std::filesystem::remove_all(dir);
}
