#pragma once
/// kiln::gen::Spec: a kernel's dimensions, folds, tensors, compound indices, constants and
/// macros, built from run-time values, and the C++ header that declares them for the
/// typed-dimension headers (kiln/device.hpp).
///
///   kiln::gen::Spec spec;
///   spec.dim("I", 128).dim("K").fold("K8", "K", 8)
///       .tensor(TensorSpec("A", DType::f16).read_only().dim("I", 64).dim("K", dynamic))
///       .compound_index("ThreadIdx", {{"WARP", 8}, {"LANE", 32}})
///       .constant("kScale", 0.5f)
///       .macro("TILE", "64");
///   std::string text = spec.header();   // the same bytes for the same spec
///
/// The header declares everything in the global namespace, sorted by name within each
/// kind (a fold after what it folds), so insertion order never changes it.

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "../dims/fold_rules.hpp"
#include "dtype.hpp"
#include "host_types.hpp"
#include "literals.hpp"
#include "names.hpp"
#include "size.hpp"
#include "spec_error.hpp"
#include "tensor_spec.hpp"

namespace kiln::gen {

/// One dimension of a compound index: a dimension or fold name and its size.
struct IndexDim {
  std::string dim;
  Size size;
};

/// A fold of a dimension (or of another fold): `name` counts `of` in units of `factor`
/// (kiln::Fold), or, when bounded, `of` modulo `factor` (kiln::Module).
struct FoldSpec {
  std::string name;
  std::string of;
  int factor;
  bool bounded;
};

/// What a dimension or fold name means to kiln: the declared dimension it measures, how
/// many of those one unit is, and its modulus (0: unbounded).
struct DimInfo {
  std::string base;
  long long stride;
  int modulus;
};

/// The value of a constant; its alternative is the C++ type the header declares.
using ConstantValue = std::variant<int, long long, float, double>;

class Spec {
 public:
  /// A dimension: `KILN_DIM(name);`.
  Spec& dim(std::string name) {
    claim("dimension", name);
    dims_.emplace(std::move(name), std::nullopt);
    return *this;
  }
  /// A dimension whose full extent is `total_size` (positive); folds of it must divide it.
  Spec& dim(std::string name, int total_size) {
    check_name("dimension", name);
    if (total_size <= 0) {
      throw SpecError(fmt::format(
          "kiln::gen: dimension '{}' has the total size {}; a total size must be positive "
          "(leave it out if it is not known)",
          name, total_size));
    }
    claim("dimension", name);
    dims_.emplace(std::move(name), total_size);
    return *this;
  }

  /// A fold: `using name = kiln::Fold<of, factor>;` (`of` a dimension or unbounded fold).
  Spec& fold(std::string name, std::string of, int factor) {
    return add_fold(std::move(name), std::move(of), factor, false);
  }
  /// A bounded fold: `using name = kiln::Module<of, modulus>;` (`of` modulo `modulus`).
  Spec& module(std::string name, std::string of, int modulus) {
    return add_fold(std::move(name), std::move(of), modulus, true);
  }

  /// A tensor: `using name = kiln::Tensor<...>;` or kiln::SwizzledTensor.
  Spec& tensor(const TensorSpec& t) {
    (void)t.declared_strides();  // no dimensions, padding on a run-time stride, overflow
    claim("tensor", t.name());
    tensors_.emplace(t.name(), t);
    return *this;
  }

  /// A tensor of host tensor type `T` (kiln::Tensor or kiln::SwizzledTensor): its element
  /// type, constness, dimensions, sizes, strides and swizzle, as gen/host_types.hpp says.
  /// Declares the dimensions it uses that the spec does not have yet; a fold or module in
  /// its layout must have been declared (fold(), module()) before.
  ///
  ///   using In = kiln::Tensor<const float, kiln::Extent<ROW, kiln::dynamic>,
  ///                           kiln::Extent<COL, 256>>;
  ///   spec.tensor<In>("In");  // the kernel's In is the host's In
  template <class T>
  Spec& tensor(std::string name) {
    TensorSpec t = tensor_spec_of<T>(std::move(name), resolve());
    for (const auto& d : t.dims()) {
      if (!dims_.count(d.dim) && !folds_.count(d.dim)) dim(d.dim);
    }
    return tensor(t);
  }

  /// A compound index: `using name = kiln::CompoundIndex<kiln::Extent<D, size>...>;`,
  /// dimensions outermost (slowest) first.
  Spec& compound_index(std::string name, std::vector<IndexDim> dims) {
    check_name("compound index", name);
    if (dims.empty()) {
      throw SpecError(fmt::format(
          "kiln::gen: compound index '{}' has no dimensions; give at least one {{name, size}}",
          name));
    }
    for (std::size_t i = 0; i < dims.size(); ++i) {
      const IndexDim& d = dims[i];
      check_name("dimension", d.dim);
      if (!d.size.is_dynamic() && d.size.value() <= 0) {
        throw SpecError(fmt::format(
            "kiln::gen: compound index '{}' gives dimension '{}' the size {}; a size must be "
            "positive or kiln::gen::dynamic",
            name, d.dim, d.size.value()));
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (dims[j].dim == d.dim) {
          throw SpecError(fmt::format(
              "kiln::gen: compound index '{}' lists dimension '{}' twice; list each dimension "
              "once",
              name, d.dim));
        }
      }
    }
    long long points = 1;  // of the static sizes
    for (const IndexDim& d : dims) {
      if (d.size.is_dynamic()) continue;
      points *= d.size.value();
      if (points > std::numeric_limits<int>::max()) {
        throw SpecError(fmt::format(
            "kiln::gen: compound index '{}' spans more than 2^31 - 1 points (the sizes through "
            "'{}' multiply to {}), past the int it decomposes; use smaller sizes or split it",
            name, d.dim, points));
      }
    }
    claim("compound index", name);
    indices_.emplace(std::move(name), std::move(dims));
    return *this;
  }

  /// Constants: `inline constexpr T name = value;` with T int, long long (also for long),
  /// float or double, the type of the argument. Floating values must be finite and are
  /// printed so that they read back exactly.
  Spec& constant(std::string name, int value) { return add_constant(std::move(name), value); }
  Spec& constant(std::string name, long value) {
    return add_constant(std::move(name), static_cast<long long>(value));
  }
  Spec& constant(std::string name, long long value) { return add_constant(std::move(name), value); }
  Spec& constant(std::string name, float value) { return add_constant(std::move(name), value); }
  Spec& constant(std::string name, double value) { return add_constant(std::move(name), value); }

  /// A macro: `#define name value` (`value` on one line; it may be empty).
  Spec& macro(std::string name, std::string value) {
    check_name("macro", name);
    if (value.find_first_of("\r\n") != std::string::npos) {
      throw SpecError(fmt::format(
          "kiln::gen: macro '{}' has a value with a line break; a macro's value must be one line",
          name));
    }
    if (value.find('\0') != std::string::npos) {
      throw SpecError(
          fmt::format("kiln::gen: macro '{}' has a value with a NUL byte; give it text", name));
    }
    const auto last = value.find_last_not_of(" \t\f\v");
    if (last != std::string::npos && value[last] == '\\') {
      throw SpecError(fmt::format(
          "kiln::gen: macro '{}' has a value ending in a backslash, which would join the next "
          "line of the header to it; drop the backslash",
          name));
    }
    if (opens_comment(value)) {
      throw SpecError(fmt::format(
          "kiln::gen: macro '{}' has a value that opens a /* comment it does not close, which "
          "would swallow the lines after it; close the comment or drop it",
          name));
    }
    claim("macro", name);
    macros_.emplace(std::move(name), std::move(value));
    return *this;
  }

  /// A named block of device code, emitted verbatim after the declarations (which it may
  /// use) and before the macros, blocks in the order added: how a host hands a kernel a
  /// piece of its own code, such as a GEMM's epilogue. The name labels the block and
  /// shares the spec's names; `text` must not be empty or hold a NUL byte.
  ///
  ///   spec.code("epilogue", "struct Epilogue { KILN_DEVICE float operator()(float v) const "
  ///                         "{ return v > 0 ? v : 0; } };");
  Spec& code(std::string name, std::string text) {
    check_name("code block", name);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
      throw SpecError(fmt::format(
          "kiln::gen: code block '{}' is empty; give it the device code it stands for", name));
    }
    if (text.find('\0') != std::string::npos) {
      throw SpecError(
          fmt::format("kiln::gen: code block '{}' holds a NUL byte; device code is text", name));
    }
    claim("code block", name);
    code_.emplace_back(std::move(name), std::move(text));
    return *this;
  }

  /// The kernel's entry-point name, as `#define KILN_KERNEL_NAME name`: kernel factories
  /// set it to the name with its specialization, and the source declares
  /// `extern "C" __global__ void KILN_KERNEL_NAME(...)`. Double underscores are allowed
  /// (`softmax__f16__cols4096`): the name is a symbol, not an identifier kiln declares.
  Spec& kernel_name(std::string name) {
    if (!is_identifier(name)) {
      throw SpecError(fmt::format(
          "kiln::gen: the kernel name '{}' is not a C++ identifier; use ASCII letters, digits "
          "and underscores, starting with a letter",
          name));
    }
    kernel_name_ = std::move(name);
    return *this;
  }

  /// What every dimension and fold name means. Throws SpecError for a fold of an unknown
  /// name, of a tensor, constant, macro or compound index, of a bounded fold, a cycle of
  /// folds, a fold that does not divide its dimension's total size, or a stride past int.
  std::map<std::string, DimInfo> resolve() const {
    std::map<std::string, DimInfo> out;
    for (const auto& [name, total] : dims_) out.emplace(name, DimInfo{name, 1, 0});
    for (const auto& [name, f] : folds_) {
      std::vector<std::string> chain;
      resolve_fold(f, out, chain);
    }
    for (const auto& [name, f] : folds_) {
      const DimInfo& info = out.at(name);
      const std::optional<int>& total = dims_.at(info.base);
      long long unit = info.modulus > 0 ? info.stride * info.modulus : info.stride;
      if (total && *total % unit != 0) {
        throw SpecError(fmt::format(
            "kiln::gen: {} '{}' counts '{}' in units of {}, which do not divide its total size "
            "{}; use a factor that divides {}",
            f.bounded ? "module" : "fold", name, info.base, unit, *total, *total));
      }
    }
    return out;
  }

  /// Checks everything header() needs (see resolve(), and every tensor's and compound
  /// index's dimensions); throws SpecError naming the first problem.
  void validate() const {
    auto infos = resolve();
    for (const auto& [name, t] : tensors_) {
      std::vector<IndexDim> dims;
      for (const auto& d : t.dims()) dims.push_back({d.dim, d.size});
      check_dims(fmt::format("tensor '{}'", name), dims, infos);
    }
    for (const auto& [name, index] : indices_) {
      check_dims(fmt::format("compound index '{}'", name), index, infos);
    }
  }

  /// The header, after validate(): `#pragma once`, a generated-file comment, the kiln
  /// includes (kiln/device/half.hpp only for an f16 or bf16 tensor), then the dimensions,
  /// folds, constants, tensors, compound indices (each sorted by name), the code blocks
  /// (in the order added) and the macros (sorted). Macros come last so that none can change
  /// the declarations or code before them.
  std::string header() const {
    validate();
    std::string out =
        "#pragma once\n"
        "// Generated by kiln::gen::Spec (include/kiln/gen); do not edit. The same spec gives\n"
        "// the same bytes.\n\n"
        "#include \"kiln/device.hpp\"\n";
    bool half = false;
    for (const auto& [name, t] : tensors_) half = half || is_half(t.type());
    if (half) out += "#include \"kiln/device/half.hpp\"\n";

    if (!dims_.empty()) {
      out += "\n// Dimensions\n";
      for (const auto& [name, total] : dims_) {
        out += total ? fmt::format("KILN_DIM({});  // total size {}\n", name, *total)
                     : fmt::format("KILN_DIM({});\n", name);
      }
    }
    if (!folds_.empty()) {
      out += "\n// Folds\n";
      std::set<std::string> done;
      for (const auto& [name, f] : folds_) emit_fold(f, done, out);
    }
    if (!constants_.empty()) {
      out += "\n// Constants\n";
      for (const auto& [name, value] : constants_) {
        out += fmt::format("inline constexpr {} {} = {};\n", constant_type(value), name,
                           constant_literal(value));
      }
    }
    if (!tensors_.empty()) {
      out += "\n// Tensors\n";
      for (const auto& [name, t] : tensors_) out += tensor_line(t);
    }
    if (!indices_.empty()) {
      out += "\n// Compound indices\n";
      for (const auto& [name, index] : indices_) {
        std::string extents;
        for (const auto& d : index) {
          extents += fmt::format("{}kiln::Extent<{}, {}>", extents.empty() ? "" : ", ", d.dim,
                                 size_literal(d.size));
        }
        out += fmt::format("using {} = kiln::CompoundIndex<{}>;\n", name, extents);
      }
    }
    for (const auto& [name, text] : code_) {
      out += fmt::format("\n// Code: {}\n{}{}", name, text, text.back() == '\n' ? "" : "\n");
    }
    if (!macros_.empty()) {
      out += "\n// Macros\n";
      for (const auto& [name, value] : macros_) {
        out += value.empty() ? fmt::format("#define {}\n", name)
                             : fmt::format("#define {} {}\n", name, value);
      }
    }
    if (!kernel_name_.empty()) {
      out +=
          fmt::format("\n// The kernel's entry point\n#define KILN_KERNEL_NAME {}\n", kernel_name_);
    }
    return out;
  }

 private:
  // Whether a one-line macro value leaves a /* comment open (string and character literals
  // and // comments skipped as the preprocessor does).
  static bool opens_comment(const std::string& v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const char c = v[i];
      if (c == '"' || c == '\'') {
        for (++i; i < v.size() && v[i] != c; ++i) {
          if (v[i] == '\\') ++i;
        }
      } else if (c == '/' && i + 1 < v.size() && v[i + 1] == '/') {
        return false;  // the rest of the line is a comment that ends with it
      } else if (c == '/' && i + 1 < v.size() && v[i + 1] == '*') {
        const auto close = v.find("*/", i + 2);
        if (close == std::string::npos) return true;
        i = close + 1;
      }
    }
    return false;
  }

  // Takes `name` for an item of kind `what`, or throws: names are shared by every kind.
  void claim(const char* what, const std::string& name) {
    check_name(what, name);
    auto [it, inserted] = names_.emplace(name, what);
    if (!inserted) {
      throw SpecError(fmt::format(
          "kiln::gen: the name '{}' is already taken by a {}, so it cannot name a {} too; "
          "dimensions, folds, tensors, compound indices, constants and macros share one set of "
          "names, so rename one of them",
          name, it->second, what));
    }
  }

  Spec& add_fold(std::string name, std::string of, int factor, bool bounded) {
    const char* what = bounded ? "module" : "fold";
    check_name(what, name);
    check_name("dimension", of);
    if (factor <= 0) {
      throw SpecError(
          fmt::format("kiln::gen: {} '{}' of '{}' has the factor {}; a {} factor must be positive",
                      what, name, of, factor, what));
    }
    claim(what, name);
    folds_.emplace(name, FoldSpec{name, std::move(of), factor, bounded});
    return *this;
  }

  Spec& add_constant(std::string name, ConstantValue value) {
    check_name("constant", name);
    bool finite = std::visit([](auto v) { return std::isfinite(static_cast<double>(v)); }, value);
    if (!finite) {
      throw SpecError(fmt::format(
          "kiln::gen: constant '{}' is not finite (an infinity or NaN); give a finite value",
          name));
    }
    claim("constant", name);
    constants_.emplace(std::move(name), value);
    return *this;
  }

  // The kind of a name that is not a dimension or fold, for error messages.
  std::string kind_of(const std::string& name) const {
    auto it = names_.find(name);
    return it == names_.end() ? std::string() : it->second;
  }

  const DimInfo& resolve_fold(const FoldSpec& f, std::map<std::string, DimInfo>& infos,
                              std::vector<std::string>& chain) const {
    if (auto it = infos.find(f.name); it != infos.end()) return it->second;
    const char* what = f.bounded ? "module" : "fold";
    for (const auto& c : chain) {
      if (c == f.name) {
        std::string cycle;
        for (const auto& n : chain) cycle += n + " -> ";
        throw SpecError(fmt::format(
            "kiln::gen: {} '{}' folds itself ({}{}); every chain of folds must end at a "
            "dimension declared with dim()",
            what, f.name, cycle, f.name));
      }
    }
    chain.push_back(f.name);
    const DimInfo* of = nullptr;
    if (auto d = infos.find(f.of); d != infos.end() && dims_.count(f.of)) {
      of = &d->second;
    } else if (auto g = folds_.find(f.of); g != folds_.end()) {
      if (g->second.bounded) {
        throw SpecError(fmt::format(
            "kiln::gen: {} '{}' folds '{}', which is a module (a bounded fold); fold the "
            "dimension or unbounded fold it bounds instead",
            what, f.name, f.of));
      }
      of = &resolve_fold(g->second, infos, chain);
    } else {
      std::string kind = kind_of(f.of);
      throw SpecError(
          kind.empty()
              ? fmt::format("kiln::gen: {} '{}' folds '{}', an unknown dimension; declare it with "
                            "dim(\"{}\") or fold(...), or fix the name",
                            what, f.name, f.of, f.of)
              : fmt::format("kiln::gen: {} '{}' folds '{}', which is a {}, not a dimension or "
                            "fold; fold a dimension",
                            what, f.name, f.of, kind));
    }
    chain.pop_back();
    DimInfo info{of->base, f.bounded ? of->stride : of->stride * f.factor,
                 f.bounded ? f.factor : 0};
    long long unit = info.modulus > 0 ? info.stride * info.modulus : info.stride;
    if (unit > std::numeric_limits<int>::max()) {
      throw SpecError(fmt::format(
          "kiln::gen: {} '{}' measures '{}' in units of {}, more than an int holds; use a "
          "smaller factor",
          what, f.name, of->base, unit));
    }
    return infos.emplace(f.name, info).first->second;
  }

  // Checks the dimensions of a tensor or compound index (`owner`): each is a declared
  // dimension or fold, and the folds of one dimension follow kiln::Layout's rules
  // (kiln/dims/fold_rules.hpp: distinct strides that divide each other, each fold fitting
  // under the next coarser one), so that no header fails only in the kernel's compiler.
  void check_dims(const std::string& owner, const std::vector<IndexDim>& dims,
                  const std::map<std::string, DimInfo>& infos) const {
    for (const auto& [d, size] : dims) {
      if (infos.count(d)) continue;
      std::string kind = kind_of(d);
      throw SpecError(
          kind.empty()
              ? fmt::format("kiln::gen: {} uses dimension '{}', which the spec does not declare; "
                            "declare it with dim(\"{}\") or fold(...), or fix the name",
                            owner, d, d)
              : fmt::format("kiln::gen: {} uses '{}' as a dimension, but it is a {}; use a "
                            "dimension or fold",
                            owner, d, kind));
    }
    std::vector<fold_rules::FoldExtent> extents;
    std::map<std::string, int> base_ids;
    for (const auto& [d, size] : dims) {
      const DimInfo& info = infos.at(d);
      const int base = base_ids.emplace(info.base, int(base_ids.size())).first->second;
      extents.push_back({base, int(info.stride), size.is_dynamic() ? -1 : size.value()});
    }
    const int n = int(extents.size());
    for (int i = 0; i < n; ++i) {
      const DimInfo& a = infos.at(dims[size_t(i)].dim);
      const std::string& name = dims[size_t(i)].dim;
      switch (fold_rules::fold_problem(extents.data(), n, i)) {
        case fold_rules::FoldProblem::none:
          break;
        case fold_rules::FoldProblem::repeated_stride: {
          std::string other;
          for (int j = 0; j < n; ++j) {
            if (j != i && extents[size_t(j)].base == extents[size_t(i)].base &&
                extents[size_t(j)].stride == extents[size_t(i)].stride) {
              other = dims[size_t(j)].dim;
            }
          }
          throw SpecError(fmt::format(
              "kiln::gen: {} holds '{}' and '{}', which both count '{}' in units of {}, so an "
              "index in '{}' could go to either; keep one of them",
              owner, name, other, a.base, a.stride, a.base));
        }
        case fold_rules::FoldProblem::strides_do_not_divide: {
          const int coarser = fold_rules::coarser_stride(extents.data(), n, i);
          throw SpecError(fmt::format(
              "kiln::gen: {} holds '{}' (units of {}) and '{}' (units of {}) of dimension '{}', "
              "whose fold strides do not divide each other, so an index cannot be split "
              "between them; use folds whose strides divide each other (units of {} and a "
              "multiple of {})",
              owner, name, a.stride, fold_named(dims, extents, i, coarser), coarser, a.base,
              a.stride, a.stride));
        }
        case fold_rules::FoldProblem::does_not_fit: {
          const int coarser = fold_rules::coarser_stride(extents.data(), n, i);
          const std::string outer = fold_named(dims, extents, i, coarser);
          throw SpecError(fmt::format(
              "kiln::gen: {} gives '{}' the size {}, which does not fit under '{}': {} units "
              "of {} span {} of '{}', but one step of '{}' is {}, so two indices would land on "
              "one element; give '{}' a size of at most {}, or drop one of the folds",
              owner, name, extents[size_t(i)].size, outer, extents[size_t(i)].size, a.stride,
              static_cast<long long>(extents[size_t(i)].size) * a.stride, a.base, outer, coarser,
              name, coarser / a.stride));
        }
      }
    }
  }

  // The name of the extent of extent i's dimension whose stride is `stride`.
  static std::string fold_named(const std::vector<IndexDim>& dims,
                                const std::vector<fold_rules::FoldExtent>& extents, int i,
                                int stride) {
    for (std::size_t j = 0; j < extents.size(); ++j) {
      if (extents[j].base == extents[size_t(i)].base && extents[j].stride == stride) {
        return dims[j].dim;
      }
    }
    return {};
  }

  void emit_fold(const FoldSpec& f, std::set<std::string>& done, std::string& out) const {
    if (done.count(f.name)) return;
    if (auto g = folds_.find(f.of); g != folds_.end()) emit_fold(g->second, done, out);
    out += fmt::format("using {} = kiln::{}<{}, {}>;\n", f.name, f.bounded ? "Module" : "Fold",
                       f.of, f.factor);
    done.insert(f.name);
  }

  static std::string size_literal(const Size& s) {
    return s.is_dynamic() ? std::string("kiln::dynamic") : fmt::format("{}", s.value());
  }

  static std::string tensor_line(const TensorSpec& t) {
    std::vector<std::optional<Size>> strides = t.declared_strides();
    std::string args = fmt::format("{}{}", t.is_read_only() ? "const " : "", cpp_type(t.type()));
    if (const auto& sw = t.swizzle()) {
      args += fmt::format(", kiln::Swizzle<{}, {}, {}>", sw->bits, sw->base, sw->shift);
    }
    for (std::size_t i = 0; i < t.dims().size(); ++i) {
      const TensorDim& d = t.dims()[i];
      args += strides[i] ? fmt::format(", kiln::Extent<{}, {}, {}>", d.dim, size_literal(d.size),
                                       size_literal(*strides[i]))
                         : fmt::format(", kiln::Extent<{}, {}>", d.dim, size_literal(d.size));
    }
    return fmt::format("using {} = kiln::{}<{}>;\n", t.name(),
                       t.swizzle() ? "SwizzledTensor" : "Tensor", args);
  }

  static const char* constant_type(const ConstantValue& v) {
    static constexpr const char* types[] = {"int", "long long", "float", "double"};
    return types[v.index()];
  }
  static std::string constant_literal(const ConstantValue& v) {
    switch (v.index()) {
      case 0:
        return int_literal(std::get<int>(v));
      case 1:
        return long_long_literal(std::get<long long>(v));
      case 2:
        return float_literal(std::get<float>(v));
      default:
        return double_literal(std::get<double>(v));
    }
  }

  std::map<std::string, std::string> names_;  // every name -> its kind
  std::map<std::string, std::optional<int>> dims_;
  std::map<std::string, FoldSpec> folds_;
  std::map<std::string, TensorSpec> tensors_;
  std::map<std::string, std::vector<IndexDim>> indices_;
  std::map<std::string, ConstantValue> constants_;
  std::map<std::string, std::string> macros_;
  std::vector<std::pair<std::string, std::string>> code_;  // in the order added
  std::string kernel_name_;
};

}  // namespace kiln::gen
