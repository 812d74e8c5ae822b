#pragma once
/// Kernel names as people read them: demangled the way Nsight shows them
/// (`_ZN7cutlass7Kernel2I...EEvNT_6ParamsE` becomes `void cutlass::Kernel2<...>(...)`), and
/// shortened for table columns. Records keep the name the driver or the factory gave (for
/// a C++ kernel, its mangled symbol); reports, CSV, traces and the roofline show these, and
/// the JSON and the trace's args keep the original.

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace kiln::prof {

/// `name` demangled where it is an Itanium C++ symbol (`_Z...`), else `name` itself
/// (extern "C" kernels, factory names such as `softmax<f32, 256>`).
inline std::string demangle(const std::string& name) {
  if (!name.starts_with("_Z")) return name;
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(
      abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : name;
}

namespace detail {

/// `text` with every template argument list nested at least `depth` deep replaced by
/// `<…>` (depth 1: the outermost lists).
inline std::string collapse_templates(std::string_view text, int depth) {
  std::string out;
  int level = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    // "operator<" and "operator<<" are names, not lists; kernels are never called that.
    if (c == '<') {
      ++level;
      if (level == depth) out += "<…";
      if (level >= depth) continue;
    } else if (c == '>' && level > 0) {
      --level;
      if (level + 1 == depth) {
        out += ">";
        continue;
      }
      if (level + 1 > depth) continue;
    } else if (level >= depth) {
      continue;
    }
    out += c;
  }
  return out;
}

/// The number of UTF-8 code points in `text` (what a table column shows).
inline std::size_t display_width(std::string_view text) {
  std::size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

}  // namespace detail

/// `name` demangled and made to fit a table column of about `width` characters: the
/// return type and the parameter list of a demangled function are dropped
/// (`void ns::k<float>(float*, int)` becomes `ns::k<float>`), then, while it is still too
/// long, template argument lists are collapsed from the innermost out (`ns::k<…>`), and a
/// name still too long keeps its start and end around a `…`.
inline std::string short_name(const std::string& name, std::size_t width = 80) {
  std::string s = demangle(name);
  if (s != name) {
    // The parameter list: the last top-level "(...)" (a demangled function ends in it).
    if (!s.empty() && s.back() == ')') {
      int level = 0;
      for (std::size_t i = s.size(); i-- > 0;) {
        if (s[i] == ')') ++level;
        if (s[i] == '(' && --level == 0) {
          s.erase(i);
          break;
        }
      }
    }
    // The return type: up to the last space outside any template or parameter list.
    int level = 0;
    std::size_t name_start = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '<' || s[i] == '(') ++level;
      if ((s[i] == '>' || s[i] == ')') && level > 0) --level;
      if (s[i] == ' ' && level == 0) name_start = i + 1;
    }
    s.erase(0, name_start);
  }
  int deepest = 0, level = 0;
  for (char c : s) {
    if (c == '<') deepest = std::max(deepest, ++level);
    if (c == '>' && level > 0) --level;
  }
  for (int depth = deepest; depth >= 1 && detail::display_width(s) > width; --depth) {
    s = detail::collapse_templates(s, depth);
  }
  if (detail::display_width(s) > width && width >= 8 && s.size() > width) {
    const std::size_t keep = width - 1;
    const std::size_t head = keep * 2 / 3, tail = keep - head;
    // Cut on code point boundaries.
    std::size_t h = head, t = s.size() - tail;
    while (h > 0 && (static_cast<unsigned char>(s[h]) & 0xc0) == 0x80) --h;
    while (t < s.size() && (static_cast<unsigned char>(s[t]) & 0xc0) == 0x80) ++t;
    s = s.substr(0, h) + "…" + s.substr(t);
  }
  return s;
}

}  // namespace kiln::prof
