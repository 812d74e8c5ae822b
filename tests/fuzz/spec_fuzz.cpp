// Fuzz target: the Spec's header generation (include/kiln/gen/spec.hpp), which turns
// run-time values (names, sizes, macro values, code) into C++ a kernel compiles.
//
// The bytes are read as a sequence of Spec calls (dim, fold, module, tensor, compound
// index, constant, macro, code block, kernel name) with names from a small pool (so that
// they meet) or raw bytes, and sizes, factors and values that are any int.
//
// Properties:
// - every call either works or throws SpecError; so does header();
// - the header does not depend on the order of the calls (only code blocks keep theirs,
//   and the last kernel name wins): the calls that worked, made in reverse, give the same
//   bytes;
// - the header holds no NUL byte, declares each name before a later declaration uses it
//   (folds after what they fold, tensors and indices after their dimensions), and, without
//   code blocks, has one #define per macro, no line continued by a backslash and no
//   comment left open.

#include <cstring>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "kiln/gen/spec.hpp"

namespace {

namespace gen = kiln::gen;
using Call = std::function<void(gen::Spec&)>;

std::string name_from(kiln_fuzz::Bytes& in) {
  static const char* const pool[] = {"I",  "K",    "K8",  "K64", "J",  "A",         "B",
                                     "T",  "TILE", "kX",  "W",   "Q4", "threadIdx", "min",
                                     "_x", "__y",  "int", "1a",  "",   "kiln"};
  const std::uint8_t b = in.byte();
  if (b < 224) return pool[b % (sizeof pool / sizeof *pool)];
  return in.string(12);
}

gen::Size size_from(kiln_fuzz::Bytes& in) {
  const std::uint8_t b = in.byte();
  if (b % 4 == 0) return gen::dynamic;
  if (b % 4 == 1) return int(b / 4) + 1;  // small positive sizes, the common case
  return in.int32();
}

/// What a call declares, for the checks on the header.
enum class Kind { declaration, macro, code, kernel_name };

// One Spec call from the bytes, and its kind.
Call call_from(kiln_fuzz::Bytes& in, Kind& kind) {
  kind = Kind::declaration;
  switch (in.byte() % 12) {
    case 0: {
      std::string n = name_from(in);
      return [n](gen::Spec& s) { s.dim(n); };
    }
    case 1: {
      std::string n = name_from(in);
      const int total = in.byte() % 2 ? in.int32() : 64 << (in.byte() % 8);
      return [n, total](gen::Spec& s) { s.dim(n, total); };
    }
    case 2:
    case 3: {
      std::string n = name_from(in), of = name_from(in);
      const int factor = in.byte() % 2 ? in.int32() : 1 << (in.byte() % 12);
      const bool bounded = in.byte() % 2;
      return [n, of, factor, bounded](gen::Spec& s) {
        bounded ? s.module(n, of, factor) : s.fold(n, of, factor);
      };
    }
    case 4:
    case 5: {
      std::string n = name_from(in);
      const auto type = static_cast<gen::DType>(in.byte() % 13);  // 12: not a DType
      const bool read_only = in.byte() % 2;
      struct Dim {
        std::string name;
        gen::Size size;
        int how;
        gen::Size stride;
      };
      std::vector<Dim> dims;
      for (int i = in.byte() % 4; i >= 0; --i) {
        std::string d = name_from(in);
        const gen::Size size = size_from(in);
        const int how = in.byte() % 3;
        dims.push_back({d, size, how, size_from(in)});
      }
      int bits = -1, base = 0, shift = 0;
      if (in.byte() % 4 == 0) {
        bits = in.byte() % 8, base = in.byte() % 8, shift = in.byte() % 8;
      }
      return [=](gen::Spec& s) {
        gen::TensorSpec t(n, type);
        t.read_only(read_only);
        for (const Dim& d : dims) {
          if (d.how == 0) t.dim(d.name, d.size);
          if (d.how == 1) t.dim(d.name, d.size, gen::Stride{d.stride});
          if (d.how == 2) t.dim(d.name, d.size, gen::Padding{d.stride.value() % 64});
        }
        if (bits >= 0) t.swizzle(bits, base, shift);
        s.tensor(t);
      };
    }
    case 6: {
      std::string n = name_from(in);
      std::vector<gen::IndexDim> dims;
      for (int i = in.byte() % 4; i >= 0; --i) {
        std::string d = name_from(in);
        dims.push_back({d, size_from(in)});
      }
      return [n, dims](gen::Spec& s) { s.compound_index(n, dims); };
    }
    case 7: {
      std::string n = name_from(in);
      const std::uint64_t bits = in.uint64();
      switch (in.byte() % 4) {
        case 0:
          return [n, bits](gen::Spec& s) { s.constant(n, static_cast<int>(bits)); };
        case 1:
          return [n, bits](gen::Spec& s) { s.constant(n, static_cast<long long>(bits)); };
        case 2: {
          float f;
          const auto low = static_cast<std::uint32_t>(bits);
          std::memcpy(&f, &low, sizeof f);
          return [n, f](gen::Spec& s) { s.constant(n, f); };
        }
        default: {
          double v;
          std::memcpy(&v, &bits, sizeof v);
          return [n, v](gen::Spec& s) { s.constant(n, v); };
        }
      }
    }
    case 8:
    case 9: {
      kind = Kind::macro;
      std::string n = name_from(in), value = in.string(40);
      return [n, value](gen::Spec& s) { s.macro(n, value); };
    }
    case 10: {
      kind = Kind::code;
      std::string n = name_from(in), text = in.string(40);
      return [n, text](gen::Spec& s) { s.code(n, text); };
    }
    default: {
      kind = Kind::kernel_name;
      std::string n = name_from(in);
      return [n](gen::Spec& s) { s.kernel_name(n); };
    }
  }
}

// Whether the text leaves a /* comment open at its end, reading it as the preprocessor
// does: // and /* comments, and "..." and '...' literals that end at their line's end.
bool leaves_comment_open(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      for (++i; i < text.size() && text[i] != c && text[i] != '\n'; ++i) {
        if (text[i] == '\\') ++i;
      }
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      i = text.find('\n', i);
      if (i == text.npos) return false;
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      const auto close = text.find("*/", i + 2);
      if (close == text.npos) return true;
      i = close + 1;
    }
  }
  return false;
}

// The name a declaration line declares ("" for other lines), and the names it uses.
void read_declaration(const std::string& line, std::string& declared,
                      std::vector<std::string>& used) {
  declared.clear();
  used.clear();
  if (line.starts_with("KILN_DIM(")) {
    declared = line.substr(9, line.find(')') - 9);
  } else if (line.starts_with("using ")) {
    declared = line.substr(6, line.find(' ', 6) - 6);
    for (const char* open : {"kiln::Fold<", "kiln::Module<", "kiln::Extent<"}) {
      for (auto at = line.find(open); at != line.npos; at = line.find(open, at + 1)) {
        const auto from = at + std::string(open).size();
        used.push_back(line.substr(from, line.find(',', from) - from));
      }
    }
  }
}

void check_header(const std::string& text, std::size_t macros, bool has_code,
                  bool has_kernel_name) {
  KILN_FUZZ_CHECK(text.find('\0') == std::string::npos, "the header holds no NUL byte");
  std::istringstream lines(text);
  std::set<std::string> declared_so_far;
  std::size_t defines = 0;
  bool in_code = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("// Code: ")) in_code = true;
    if (line == "// Macros" || line == "// The kernel's entry point") in_code = false;
    if (in_code) continue;
    std::string declared;
    std::vector<std::string> used;
    read_declaration(line, declared, used);
    for (const auto& u : used) {
      KILN_FUZZ_CHECK(declared_so_far.count(u), "a declaration uses only names declared before");
    }
    if (!declared.empty()) declared_so_far.insert(declared);
    if (line.starts_with("#define ")) ++defines;
    if (!has_code) {
      KILN_FUZZ_CHECK(!line.ends_with("\\"), "no line of the header continues onto the next");
    }
  }
  if (!has_code) {
    KILN_FUZZ_CHECK(defines == macros + (has_kernel_name ? 1 : 0),
                    "the header has one #define per macro (and one for the kernel name)");
    KILN_FUZZ_CHECK(!leaves_comment_open(text), "the header leaves no comment open");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln_fuzz::Bytes in(data, size);
  gen::Spec spec;
  std::vector<Call> worked_any_order, worked_in_order;
  std::size_t macros = 0;
  bool has_code = false, has_kernel_name = false;
  for (int calls = 0; !in.empty() && calls < 64; ++calls) {
    Kind kind = Kind::declaration;
    Call call = call_from(in, kind);
    try {
      call(spec);
    } catch (const gen::SpecError&) {
      continue;  // refused, with a SpecError: as documented
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln fuzz: a Spec call threw something other than SpecError: %s\n",
                   e.what());
      std::abort();
    }
    // Code blocks keep their order, and the last kernel name wins: those calls are made in
    // their order.
    const bool ordered = kind == Kind::code || kind == Kind::kernel_name;
    (ordered ? worked_in_order : worked_any_order).push_back(call);
    macros += kind == Kind::macro;
    has_code = has_code || kind == Kind::code;
    has_kernel_name = has_kernel_name || kind == Kind::kernel_name;
  }
  std::string text;
  try {
    text = spec.header();
  } catch (const gen::SpecError&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln fuzz: header() threw something other than SpecError: %s\n",
                 e.what());
    std::abort();
  }
  check_header(text, macros, has_code, has_kernel_name);

  gen::Spec reversed;
  try {
    for (auto it = worked_any_order.rbegin(); it != worked_any_order.rend(); ++it) (*it)(reversed);
    for (const Call& call : worked_in_order) call(reversed);
    KILN_FUZZ_CHECK(reversed.header() == text, "the header does not depend on the calls' order");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln fuzz: the same calls in another order threw: %s\n", e.what());
    std::abort();
  }
  return 0;
}
