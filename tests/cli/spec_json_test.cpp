// kiln::gen::spec_from_json (include/kiln/gen/spec_json.hpp), which `kiln compile --spec`
// reads: a JSON spec gives the same header as the fluent calls, and each mistake is one
// SpecError line naming the file and the field.
#include <doctest/doctest.h>

#include <string>

#include "kiln/gen/spec_json.hpp"

using namespace kiln::gen;

namespace {
// The message spec_from_json_text throws for `text` (fails the test where it throws none).
std::string error_of(const std::string& text) {
  try {
    (void)spec_from_json_text(text, "s.json");
  } catch (const SpecError& e) {
    const std::string message = e.what();
    CHECK(message.find('\n') == std::string::npos);
    return message;
  }
  FAIL("no SpecError for " << text);
  return {};
}
}  // namespace

TEST_CASE("spec_from_json: every kind of item, the same header as the fluent calls") {
  const std::string text = R"({
    "dims": {"I": 128, "K": null, "WARP": null, "LANE": null},
    "folds": {"K8": {"of": "K", "factor": 8}},
    "modules": {"KM": {"of": "K", "modulus": 8}},
    "tensors": {
      "A": {"dtype": "f16", "read_only": true,
            "dims": [{"dim": "I", "size": 64}, {"dim": "K", "size": "dynamic"}]},
      "S": {"dtype": "f32", "swizzle": {"bits": 2, "base": 2, "shift": 3},
            "dims": [{"dim": "I", "size": 64, "padding": 8}, {"dim": "K", "size": 32}]},
      "T": {"dtype": "u8", "read_only": false,
            "dims": [{"dim": "I", "size": "dynamic", "stride": "dynamic"},
                     {"dim": "K8", "size": 4, "stride": 16}]}
    },
    "compound_indices": {"ThreadIdx": [{"dim": "WARP", "size": 8}, {"dim": "LANE", "size": 32}]},
    "constants": {"kN": 4, "kBig": 5000000000, "kD": 0.25, "kF": {"type": "float", "value": 0.5},
                  "kL": {"type": "long long", "value": 7}, "kI": {"type": "int", "value": -3},
                  "kE": {"type": "double", "value": 1e-3}},
    "macros": {"TILE": "64", "FAST": "", "COUNT": 3},
    "code": [{"name": "second", "text": "struct B {};"}, {"name": "first", "text": "struct A {};"}],
    "kernel_name": "k__f16"
  })";
  Spec fluent;
  fluent.dim("I", 128).dim("K").dim("WARP").dim("LANE").fold("K8", "K", 8).module("KM", "K", 8);
  fluent.tensor(TensorSpec("A", DType::f16).read_only().dim("I", 64).dim("K", dynamic));
  fluent.tensor(TensorSpec("S", DType::f32).dim("I", 64, Padding{8}).dim("K", 32).swizzle(2, 2, 3));
  fluent.tensor(
      TensorSpec("T", DType::u8).dim("I", dynamic, Stride{dynamic}).dim("K8", 4, Stride{16}));
  fluent.compound_index("ThreadIdx", {{"WARP", 8}, {"LANE", 32}});
  fluent.constant("kN", 4).constant("kBig", 5000000000LL).constant("kD", 0.25);
  fluent.constant("kF", 0.5f).constant("kL", 7LL).constant("kI", -3).constant("kE", 1e-3);
  fluent.macro("TILE", "64").macro("FAST", "").macro("COUNT", "3");
  fluent.code("second", "struct B {};").code("first", "struct A {};").kernel_name("k__f16");
  const std::string header = spec_from_json_text(text, "s.json").header();
  CHECK(header == fluent.header());
  // The types the JSON picked, as the header declares them.
  CHECK(header.find("inline constexpr int kN = 4;") != std::string::npos);
  CHECK(header.find("inline constexpr long long kBig = 5000000000") != std::string::npos);
  CHECK(header.find("inline constexpr double kD = ") != std::string::npos);
  CHECK(header.find("inline constexpr float kF = ") != std::string::npos);
  CHECK(header.find("struct B {};\n\n// Code: first") != std::string::npos);  // list order
  // An empty object is an empty spec.
  CHECK(spec_from_json(nlohmann::json::object()).header() == Spec().header());
}

TEST_CASE("spec_from_json: mistakes name the file and the field") {
  CHECK(error_of("{\"dims\": {\"I\": 4,}}")
            .starts_with("kiln::gen: s.json is not JSON: parse error at line 1, column 18"));
  CHECK(error_of("[1, 2]") ==
        "kiln::gen: s.json: must be a JSON object describing a "
        "kiln::gen::Spec, not a list");
  CHECK(error_of(R"({"dim": {"I": 4}})") ==
        "kiln::gen: s.json: dim: unknown field; a spec has the fields dims, folds, modules, "
        "tensors, compound_indices, constants, macros, code, kernel_name");
  CHECK(error_of(R"({"dims": {"I": "64"}})") ==
        "kiln::gen: s.json: dims.I: must be a positive integer, or null when not known, not the "
        "string \"64\"");
  CHECK(error_of(R"({"dims": {"I": 3000000000}})") ==
        "kiln::gen: s.json: dims.I: 3000000000 is past the range of an int; give a positive "
        "integer, or null when not known");
  CHECK(
      error_of(R"({"dims": {"I": 0}})")
          .starts_with(
              "kiln::gen: s.json: dims.I: dimension 'I' has the total size 0; a total size must be "
              "positive"));
  CHECK(error_of(R"({"dims": {"my-dim": 4}})")
            .starts_with("kiln::gen: s.json: dims.my-dim: the dimension name 'my-dim' is not a C++ "
                         "identifier"));
  CHECK(error_of(R"({"dims": {"K": null}, "folds": {"K8": {"of": "K"}}})") ==
        "kiln::gen: s.json: folds.K8: the field \"factor\" is missing");
  CHECK(error_of(R"({"dims": {"K": null}, "modules": {"K8": {"of": "K", "factor": 8}}})") ==
        "kiln::gen: s.json: modules.K8.factor: unknown field; 'modules.K8' has the fields of, "
        "modulus");
  CHECK(error_of(R"({"dims": {"I": null}, "tensors": {"A": {"dtype": "float",
        "dims": [{"dim": "I", "size": 4}]}}})") ==
        "kiln::gen: s.json: tensors.A.dtype: 'float' is not an element type; use one of f16, "
        "bf16, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64");
  CHECK(error_of(R"({"dims": {"I": null}, "tensors": {"A": {"dtype": "f32",
        "dims": [{"dim": "I", "size": 4, "strides": 1}]}}})") ==
        "kiln::gen: s.json: tensors.A.dims[0].strides: unknown field; 'tensors.A.dims[0]' has "
        "the fields dim, size, stride, padding");
  CHECK(error_of(R"({"dims": {"I": null}, "tensors": {"A": {"dtype": "f32",
        "dims": [{"dim": "I", "size": 4, "stride": 8, "padding": 1}]}}})") ==
        "kiln::gen: s.json: tensors.A.dims[0]: give a \"stride\" or a \"padding\", not both");
  CHECK(error_of(R"({"dims": {"I": null}, "tensors": {"A": {"dtype": "f32",
        "dims": [{"dim": "I", "size": "dyn"}]}}})") ==
        "kiln::gen: s.json: tensors.A.dims[0].size: must be a positive integer or \"dynamic\", "
        "not the string \"dyn\"");
  CHECK(error_of(R"({"dims": {"I": null}, "tensors": {"A": {"dtype": "f32", "dims": []}}})")
            .starts_with("kiln::gen: s.json: tensors.A: tensor 'A' has no dimensions"));
  CHECK(error_of(R"({"dims": {"I": null}, "tensors": {"A": {"dtype": "f32", "read_only": 1,
        "dims": [{"dim": "I", "size": 4}]}}})") ==
        "kiln::gen: s.json: tensors.A.read_only: must be true or false, not the number 1");
  CHECK(error_of(R"({"constants": {"kX": "1"}})") ==
        "kiln::gen: s.json: constants.kX: must be a number or {\"type\": TYPE, \"value\": "
        "NUMBER}, not the string \"1\"");
  CHECK(error_of(R"({"constants": {"kX": {"type": "half", "value": 1}}})") ==
        "kiln::gen: s.json: constants.kX.type: 'half' is not a constant type; use int, long "
        "long, float or double");
  CHECK(error_of(R"({"constants": {"kX": {"type": "float", "value": 1e39}}})") ==
        "kiln::gen: s.json: constants.kX.value: 1e+39 is past the range of a float");
  CHECK(error_of(R"({"macros": {"M": ["a"]}})") ==
        "kiln::gen: s.json: macros.M: must be a string (or a number), not a list");
  CHECK(error_of(R"({"macros": {"M": "a\nb"}})")
            .starts_with("kiln::gen: s.json: macros.M: macro 'M' has a value with a line break"));
  CHECK(error_of(R"({"code": {"name": "c", "text": "x"}})") ==
        "kiln::gen: s.json: code: must be a list of {\"name\": NAME, \"text\": CODE}, in header "
        "order, not an object");
  CHECK(error_of(R"({"kernel_name": "1k"})")
            .starts_with(
                "kiln::gen: s.json: kernel_name: the kernel name '1k' is not a C++ identifier"));
  // Names are shared by every kind, as in the fluent calls.
  CHECK(error_of(R"({"dims": {"N": 4}, "constants": {"N": 4}})")
            .starts_with(
                "kiln::gen: s.json: constants.N: the name 'N' is already taken by a dimension"));
  // What only the whole spec shows: the Spec's message, which names the tensor.
  CHECK(error_of(R"({"tensors": {"A": {"dtype": "f32", "dims": [{"dim": "X", "size": 4}]}}})") ==
        "kiln::gen: s.json: tensor 'A' uses dimension 'X', which the spec does not declare; "
        "declare it with dim(\"X\") or fold(...), or fix the name");
  CHECK(error_of(R"({"dims": {"I": 12}, "folds": {"I8": {"of": "I", "factor": 8}}})")
            .starts_with("kiln::gen: s.json: fold 'I8' counts 'I' in units of 8, which do not "
                         "divide its total size 12"));
}
