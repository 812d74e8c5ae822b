#pragma once
/// A kiln::gen::Spec read from JSON: the same dimensions, folds, modules, tensors, compound
/// indices, constants, macros, code blocks and kernel name as the fluent calls, so that a
/// tool (`kiln compile --spec`) or a test can describe a generated header in a file.
///
///   {
///     "dims": {"I": 128, "K": null, "WARP": 8, "LANE": 32},  // null: total size unknown
///     "folds": {"K8": {"of": "K", "factor": 8}},
///     "modules": {"KLANE": {"of": "K", "modulus": 8}},
///     "tensors": {
///       "A": {"dtype": "f16", "read_only": true,
///             "dims": [{"dim": "I", "size": 64}, {"dim": "K", "size": "dynamic"}]},
///       "S": {"dtype": "f32", "swizzle": {"bits": 2, "base": 2, "shift": 3},
///             "dims": [{"dim": "I", "size": 64, "padding": 8}, {"dim": "K", "size": 32}]}
///     },
///     "compound_indices": {"Lanes": [{"dim": "WARP", "size": 8}, {"dim": "LANE", "size": 32}]},
///     "constants": {"kN": 4, "kScale": 0.5, "kHalf": {"type": "float", "value": 0.5}},
///     "macros": {"TILE": "64", "FAST": ""},
///     "code": [{"name": "epilogue", "text": "struct Epilogue { ... };"}],
///     "kernel_name": "my_kernel"
///   }
///
/// Every field is optional. A tensor dimension's "size" and "stride" are positive integers
/// or "dynamic"; "padding" is a number of elements (not with "stride"). A constant that is
/// a JSON integer is an int (a long long past int's range), one with a fraction or exponent
/// a double; {"type": "int" | "long long" | "float" | "double", "value": v} picks the type.
/// A macro's value is a string (or a number, written as JSON writes it). Code blocks are
/// a list, as their order is the header's.
///
///   kiln::gen::Spec spec = kiln::gen::spec_from_json_text(text, "spec.json");
///   program.headers.push_back({"spec.hpp", spec.header()});
///
/// Everything the JSON gets wrong throws kiln::gen::SpecError, one line naming where
/// (`spec.json: tensors.A.dims[1].size: ...`): text that is not JSON, a field kiln does not
/// know (with the ones it does), a value of the wrong type, and whatever the Spec itself
/// refuses (bad names, sizes, folds), in the Spec's words.

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dtype.hpp"
#include "size.hpp"
#include "spec.hpp"
#include "spec_error.hpp"
#include "tensor_spec.hpp"

namespace kiln::gen {

namespace detail {

/// A SpecError that already names the file and the field (not wrapped again).
class LocatedSpecError : public SpecError {
 public:
  using SpecError::SpecError;
};

/// Reads one JSON document into a Spec, naming `origin` and the field in every error.
class SpecJsonReader {
 public:
  explicit SpecJsonReader(std::string origin) : origin_(std::move(origin)) {}

  Spec read(const nlohmann::json& j) {
    Spec spec;
    const std::string top;
    expect_object(j, top, "a JSON object describing a kiln::gen::Spec");
    check_fields(j, top,
                 {"dims", "folds", "modules", "tensors", "compound_indices", "constants", "macros",
                  "code", "kernel_name"});
    if (const auto* dims = member(j, "dims")) {
      expect_object(*dims, "dims", "an object of dimension names and total sizes");
      for (const auto& [name, total] : dims->items()) {
        const std::string where = "dims." + name;
        if (total.is_null()) {
          apply(where, [&] { spec.dim(name); });
        } else {
          const int size = integer(total, where, "a positive integer, or null when not known");
          apply(where, [&] { spec.dim(name, size); });
        }
      }
    }
    for (const char* kind : {"folds", "modules"}) {
      const bool bounded = std::string_view(kind) == "modules";
      const char* factor_field = bounded ? "modulus" : "factor";
      if (const auto* folds = member(j, kind)) {
        expect_object(*folds, kind,
                      bounded ? "an object of modules, {\"NAME\": {\"of\": DIM, \"modulus\": N}}"
                              : "an object of folds, {\"NAME\": {\"of\": DIM, \"factor\": N}}");
        for (const auto& [name, f] : folds->items()) {
          const std::string where = std::string(kind) + "." + name;
          expect_object(f, where,
                        fmt::format("an object {{\"of\": DIM, \"{}\": N}}", factor_field));
          check_fields(f, where, {"of", factor_field});
          const std::string of = string(required(f, where, "of"), where + ".of", "a name");
          const int factor = integer(required(f, where, factor_field), where + "." + factor_field,
                                     "a positive integer");
          apply(where, [&] {
            if (bounded) {
              spec.module(name, of, factor);
            } else {
              spec.fold(name, of, factor);
            }
          });
        }
      }
    }
    if (const auto* tensors = member(j, "tensors")) {
      expect_object(*tensors, "tensors", "an object of tensor names and their descriptions");
      for (const auto& [name, t] : tensors->items()) {
        const std::string where = "tensors." + name;
        apply(where, [&] { spec.tensor(tensor(name, t, where)); });
      }
    }
    if (const auto* indices = member(j, "compound_indices")) {
      expect_object(*indices, "compound_indices",
                    "an object of compound index names and their dimensions");
      for (const auto& [name, list] : indices->items()) {
        const std::string where = "compound_indices." + name;
        expect_array(list, where, "a list of {\"dim\": NAME, \"size\": N}, outermost first");
        std::vector<IndexDim> dims;
        for (std::size_t i = 0; i < list.size(); ++i) {
          const std::string at = fmt::format("{}[{}]", where, i);
          expect_object(list[i], at, "an object {\"dim\": NAME, \"size\": N}");
          check_fields(list[i], at, {"dim", "size"});
          dims.push_back({string(required(list[i], at, "dim"), at + ".dim", "a name"),
                          size(required(list[i], at, "size"), at + ".size")});
        }
        apply(where, [&] { spec.compound_index(name, dims); });
      }
    }
    if (const auto* constants = member(j, "constants")) {
      expect_object(*constants, "constants", "an object of constant names and values");
      for (const auto& [name, v] : constants->items()) constant(spec, name, v);
    }
    if (const auto* macros = member(j, "macros")) {
      expect_object(*macros, "macros", "an object of macro names and values");
      for (const auto& [name, v] : macros->items()) {
        const std::string where = "macros." + name;
        std::string value;
        if (v.is_string()) {
          value = v.get<std::string>();
        } else if (v.is_number()) {
          value = v.dump();
        } else {
          fail(where, "must be a string (or a number), not " + describe(v));
        }
        apply(where, [&] { spec.macro(name, value); });
      }
    }
    if (const auto* code = member(j, "code")) {
      expect_array(*code, "code", "a list of {\"name\": NAME, \"text\": CODE}, in header order");
      for (std::size_t i = 0; i < code->size(); ++i) {
        const std::string at = fmt::format("code[{}]", i);
        const auto& c = (*code)[i];
        expect_object(c, at, "an object {\"name\": NAME, \"text\": CODE}");
        check_fields(c, at, {"name", "text"});
        const std::string name = string(required(c, at, "name"), at + ".name", "a name");
        const std::string text = string(required(c, at, "text"), at + ".text", "device code");
        apply(at, [&] { spec.code(name, text); });
      }
    }
    if (const auto* name = member(j, "kernel_name")) {
      const std::string n = string(*name, "kernel_name", "a C++ identifier");
      apply("kernel_name", [&] { spec.kernel_name(n); });
    }
    // What only the whole spec shows (a tensor's unknown dimension, a fold that does not
    // divide), now rather than at header(), in the Spec's words (which name the item).
    apply("", [&] { spec.validate(); });
    return spec;
  }

 private:
  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw LocatedSpecError(
        fmt::format("kiln::gen: {}: {}{}", origin_, where.empty() ? "" : where + ": ", what));
  }

  // Runs a Spec call, naming `where` in what it throws.
  template <class F>
  void apply(const std::string& where, F&& f) const {
    try {
      f();
    } catch (const LocatedSpecError&) {
      throw;
    } catch (const SpecError& e) {
      std::string message = e.what();
      if (message.starts_with("kiln::gen: ")) message.erase(0, 11);
      fail(where, message);
    }
  }

  static std::string describe(const nlohmann::json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return fmt::format("the boolean {}", v.dump());
    if (v.is_number()) return fmt::format("the number {}", v.dump());
    if (v.is_string()) return fmt::format("the string {}", v.dump());
    if (v.is_array()) return "a list";
    return "an object";
  }

  void expect_object(const nlohmann::json& v, const std::string& where,
                     const std::string& what) const {
    if (!v.is_object()) fail(where, fmt::format("must be {}, not {}", what, describe(v)));
  }
  void expect_array(const nlohmann::json& v, const std::string& where,
                    const std::string& what) const {
    if (!v.is_array()) fail(where, fmt::format("must be {}, not {}", what, describe(v)));
  }

  // Refuses a field not in `known`, listing the known ones.
  void check_fields(const nlohmann::json& v, const std::string& where,
                    std::initializer_list<const char*> known) const {
    for (const auto& [key, value] : v.items()) {
      bool found = false;
      std::string list;
      for (const char* k : known) {
        found = found || key == k;
        list += (list.empty() ? "" : ", ") + std::string(k);
      }
      if (!found) {
        fail(where.empty() ? key : where + "." + key,
             fmt::format("unknown field; {} has the fields {}",
                         where.empty() ? "a spec" : "'" + where + "'", list));
      }
    }
  }

  static const nlohmann::json* member(const nlohmann::json& v, const char* key) {
    const auto it = v.find(key);
    return it == v.end() ? nullptr : &*it;
  }
  const nlohmann::json& required(const nlohmann::json& v, const std::string& where,
                                 const char* key) const {
    if (const auto* m = member(v, key)) return *m;
    fail(where, fmt::format("the field \"{}\" is missing", key));
  }

  std::string string(const nlohmann::json& v, const std::string& where, const char* what) const {
    if (!v.is_string())
      fail(where, fmt::format("must be a string ({}), not {}", what, describe(v)));
    return v.get<std::string>();
  }

  // An int; the Spec checks the sign (and says what it must be).
  int integer(const nlohmann::json& v, const std::string& where, const char* what) const {
    if (!v.is_number_integer()) fail(where, fmt::format("must be {}, not {}", what, describe(v)));
    if (v.is_number_unsigned()
            ? v.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<int>::max())
            : (v.get<std::int64_t>() > std::numeric_limits<int>::max() ||
               v.get<std::int64_t>() < std::numeric_limits<int>::min())) {
      fail(where, fmt::format("{} is past the range of an int; give {}", v.dump(), what));
    }
    return static_cast<int>(v.get<std::int64_t>());
  }

  Size size(const nlohmann::json& v, const std::string& where) const {
    if (v.is_string() && v.get<std::string>() == "dynamic") return Size(dynamic);
    return Size(integer(v, where, "a positive integer or \"dynamic\""));
  }

  TensorSpec tensor(const std::string& name, const nlohmann::json& t,
                    const std::string& where) const {
    expect_object(t, where, "an object {\"dtype\": TYPE, \"dims\": [...]}");
    check_fields(t, where, {"dtype", "read_only", "dims", "swizzle"});
    const std::string type_name =
        string(required(t, where, "dtype"), where + ".dtype", "an element type such as \"f32\"");
    std::optional<DType> type;
    std::string names;
    for (DType d : all_dtypes) {
      if (to_string(d) == type_name) type = d;
      names += (names.empty() ? "" : ", ") + std::string(to_string(d));
    }
    if (!type) {
      fail(where + ".dtype",
           fmt::format("'{}' is not an element type; use one of {}", type_name, names));
    }
    TensorSpec out(name, *type);
    if (const auto* ro = member(t, "read_only")) {
      if (!ro->is_boolean()) {
        fail(where + ".read_only", "must be true or false, not " + describe(*ro));
      }
      out.read_only(ro->get<bool>());
    }
    const auto& dims = required(t, where, "dims");
    expect_array(dims, where + ".dims", "a list of {\"dim\": NAME, \"size\": N}, outermost first");
    for (std::size_t i = 0; i < dims.size(); ++i) {
      const std::string at = fmt::format("{}.dims[{}]", where, i);
      const auto& d = dims[i];
      expect_object(d, at, "an object {\"dim\": NAME, \"size\": N}");
      check_fields(d, at, {"dim", "size", "stride", "padding"});
      const std::string dim = string(required(d, at, "dim"), at + ".dim", "a name");
      const Size s = size(required(d, at, "size"), at + ".size");
      const auto* stride = member(d, "stride");
      const auto* padding = member(d, "padding");
      if (stride && padding) fail(at, "give a \"stride\" or a \"padding\", not both");
      apply(at, [&] {
        if (stride) {
          out.dim(dim, s, Stride{size(*stride, at + ".stride")});
        } else if (padding) {
          out.dim(dim, s, Padding{integer(*padding, at + ".padding", "a number of elements")});
        } else {
          out.dim(dim, s);
        }
      });
    }
    if (const auto* sw = member(t, "swizzle")) {
      const std::string at = where + ".swizzle";
      expect_object(*sw, at, "an object {\"bits\": B, \"base\": M, \"shift\": S}");
      check_fields(*sw, at, {"bits", "base", "shift"});
      const int bits = integer(required(*sw, at, "bits"), at + ".bits", "an integer");
      const int base = integer(required(*sw, at, "base"), at + ".base", "an integer");
      const int shift = integer(required(*sw, at, "shift"), at + ".shift", "an integer");
      apply(at, [&] { out.swizzle(bits, base, shift); });
    }
    return out;
  }

  void constant(Spec& spec, const std::string& name, const nlohmann::json& v) const {
    const std::string where = "constants." + name;
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() &&
          v.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<long long>::max())) {
        fail(where, fmt::format("{} is past the range of a long long", v.dump()));
      }
      const auto value = v.get<std::int64_t>();
      apply(where, [&] {
        if (value >= std::numeric_limits<int>::min() && value <= std::numeric_limits<int>::max()) {
          spec.constant(name, static_cast<int>(value));
        } else {
          spec.constant(name, static_cast<long long>(value));
        }
      });
      return;
    }
    if (v.is_number_float()) {
      apply(where, [&] { spec.constant(name, v.get<double>()); });
      return;
    }
    if (!v.is_object()) {
      fail(where, "must be a number or {\"type\": TYPE, \"value\": NUMBER}, not " + describe(v));
    }
    check_fields(v, where, {"type", "value"});
    const std::string type =
        string(required(v, where, "type"), where + ".type", "int, long long, float or double");
    const auto& value = required(v, where, "value");
    const std::string at = where + ".value";
    if (!value.is_number()) fail(at, "must be a number, not " + describe(value));
    if (type == "int") {
      const int i = integer(value, at, "an integer in int's range");
      apply(where, [&] { spec.constant(name, i); });
    } else if (type == "long long") {
      if (!value.is_number_integer() ||
          (value.is_number_unsigned() &&
           value.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<long long>::max()))) {
        fail(at, "must be an integer in long long's range, not " + value.dump());
      }
      const long long l = value.get<std::int64_t>();
      apply(where, [&] { spec.constant(name, l); });
    } else if (type == "float") {
      const double d = value.get<double>();
      if (std::isfinite(d) && std::abs(d) > double(std::numeric_limits<float>::max())) {
        fail(at, fmt::format("{} is past the range of a float", value.dump()));
      }
      apply(where, [&] { spec.constant(name, static_cast<float>(d)); });
    } else if (type == "double") {
      apply(where, [&] { spec.constant(name, value.get<double>()); });
    } else {
      fail(where + ".type",
           fmt::format("'{}' is not a constant type; use int, long long, float or double", type));
    }
  }

  std::string origin_;
};

}  // namespace detail

/// The Spec `j` describes (see the top of this file); throws SpecError naming `origin`
/// (a file name, say) and the field.
inline Spec spec_from_json(const nlohmann::json& j, std::string origin = "the spec") {
  return detail::SpecJsonReader(std::move(origin)).read(j);
}

/// The Spec the JSON text describes; text that is not JSON throws SpecError too, with
/// the parser's position.
inline Spec spec_from_json_text(std::string_view text, std::string origin = "the spec") {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::string why = e.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ..." -> from "parse".
    if (const auto at = why.find("] "); at != std::string::npos) why.erase(0, at + 2);
    throw SpecError(fmt::format("kiln::gen: {} is not JSON: {}", origin, why));
  }
  return spec_from_json(j, std::move(origin));
}

}  // namespace kiln::gen
