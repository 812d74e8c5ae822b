#pragma once
/// A program to compile, and what compiling it produced.

#include <string>
#include <utility>
#include <vector>

#include "../detail/serial.hpp"
#include "../error.hpp"

namespace kiln::jit {

/// A source file the compiler sees by name: {name, contents}.
struct NamedSource {
  std::string name;
  std::string contents;
};

/// The source of one compile: the main file, in-memory headers it may #include by name,
/// and the name expressions (template kernels, "&my_kernel<float, 4>") whose lowered
/// names to report.
struct Program {
  std::string name;    ///< shown in messages and compiler logs ("softmax.cu")
  std::string source;  ///< the main file's text
  std::vector<NamedSource> headers;
  std::vector<std::string> name_expressions;
};

/// What a compile produced. Stored whole in the caches, so a cache hit needs no
/// compiler to find a template kernel's lowered name.
struct Binary {
  std::string compiler;          ///< "nvrtc" or "hiprtc"
  std::string compiler_version;  ///< e.g. "13.0"
  std::string target;            ///< e.g. "sm_90"
  std::string code;              ///< the cubin or hsaco bytes
  std::string ptx;               ///< PTX where the backend gives it
  std::string log;               ///< warnings (empty when there were none)
  /// {name expression, lowered name} for each of the program's name expressions.
  std::vector<std::pair<std::string, std::string>> lowered_names;
  double compile_ms = 0;  ///< how long the compile took (when it was compiled)

  /// The lowered (mangled) name of `name_expression`; throws if it was not requested.
  const std::string& lowered_name(const std::string& name_expression) const {
    for (const auto& [expr, lowered] : lowered_names) {
      if (expr == name_expression) return lowered;
    }
    throw Error("kiln: no lowered name for '" + name_expression +
                "': add it to Program::name_expressions before compiling");
  }

  std::string serialize() const {
    ::kiln::detail::Writer w;
    for (const std::string* s : {&compiler, &compiler_version, &target, &code, &ptx, &log})
      w.bytes(*s);
    w.u64(lowered_names.size());
    for (const auto& [expr, lowered] : lowered_names) {
      w.bytes(expr);
      w.bytes(lowered);
    }
    w.f64(compile_ms);
    return w.take();
  }
  /// The inverse of serialize(); throws kiln::Error on malformed input.
  static Binary deserialize(std::string_view bytes) {
    ::kiln::detail::Reader r(bytes);
    Binary b;
    for (std::string* s : {&b.compiler, &b.compiler_version, &b.target, &b.code, &b.ptx, &b.log})
      *s = r.bytes();
    std::uint64_t n = r.u64();
    for (std::uint64_t i = 0; i < n; ++i) {
      std::string expr = r.bytes();
      b.lowered_names.emplace_back(std::move(expr), r.bytes());
    }
    b.compile_ms = r.f64();
    if (!r.done()) throw Error("kiln: malformed cache entry (trailing bytes)");
    return b;
  }
};

}  // namespace kiln::jit
