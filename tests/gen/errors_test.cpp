// Every rule a Spec enforces: each invalid spec throws kiln::gen::SpecError whose message
// names the offending item.
#include <doctest/doctest.h>

#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kiln/gen.hpp"

using namespace kiln::gen;

namespace {

// A message fragment to look for (doctest::Contains does not take a std::string).
doctest::Contains has(const std::string& fragment) {
  return doctest::Contains(fragment.c_str());
}

// A spec with I, K (total 64), K8 and WARP, LANE declared.
Spec base_spec() {
  Spec s;
  s.dim("I").dim("K", 64).fold("K8", "K", 8).dim("WARP").dim("LANE");
  return s;
}

}  // namespace

TEST_CASE("SpecError is a kiln::Error") {
  CHECK_THROWS_AS(Spec().dim("1x"), kiln::Error);
  CHECK_THROWS_AS(Spec().dim("1x"), std::runtime_error);
}

TEST_CASE("an unknown dimension in a fold, a tensor or a compound index") {
  {
    Spec s = base_spec();
    s.fold("J8", "J", 8);
    CHECK_THROWS_WITH_AS(s.header(), has("fold 'J8' folds 'J', an unknown dimension"), SpecError);
    CHECK_THROWS_WITH_AS(s.validate(), has("dim(\"J\")"), SpecError);
  }
  {
    Spec s = base_spec();
    s.module("JM8", "J", 8);
    CHECK_THROWS_WITH_AS(s.header(), has("module 'JM8' folds 'J', an unknown dimension"),
                         SpecError);
  }
  {
    Spec s = base_spec();
    s.tensor(TensorSpec("A", DType::f32).dim("I", 4).dim("J", 4));
    CHECK_THROWS_WITH_AS(s.header(),
                         has("tensor 'A' uses dimension 'J', which the spec does not declare"),
                         SpecError);
  }
  {
    Spec s = base_spec();
    s.compound_index("Idx", {{"WARP", 8}, {"LANES", 32}});
    CHECK_THROWS_WITH_AS(
        s.header(), has("compound index 'Idx' uses dimension 'LANES', which the spec does not"),
        SpecError);
  }
  {  // a name of another kind is not a dimension
    Spec s = base_spec();
    s.constant("N", 4).tensor(TensorSpec("A", DType::f32).dim("N", 4));
    CHECK_THROWS_WITH_AS(
        s.header(), has("tensor 'A' uses 'N' as a dimension, but it is a constant"), SpecError);
    Spec t = base_spec();
    t.tensor(TensorSpec("A", DType::f32).dim("I", 4)).fold("A2", "A", 2);
    CHECK_THROWS_WITH_AS(t.header(), has("fold 'A2' folds 'A', which is a tensor"), SpecError);
  }
}

TEST_CASE("a duplicate name, across every kind of item") {
  // Each adds the item "X" of one kind.
  const std::vector<std::pair<std::string, std::function<void(Spec&)>>> kinds = {
      {"dimension", [](Spec& s) { s.dim("X"); }},
      {"dimension", [](Spec& s) { s.dim("X", 16); }},
      {"fold", [](Spec& s) { s.fold("X", "K", 2); }},
      {"module", [](Spec& s) { s.module("X", "K", 2); }},
      {"tensor", [](Spec& s) { s.tensor(TensorSpec("X", DType::f32).dim("I", 2)); }},
      {"compound index",
       [](Spec& s) {
         s.compound_index("X", {{"I", 2}});
       }},
      {"constant", [](Spec& s) { s.constant("X", 1); }},
      {"constant", [](Spec& s) { s.constant("X", 1.5f); }},
      {"constant", [](Spec& s) { s.constant("X", 1.5); }},
      {"constant", [](Spec& s) { s.constant("X", 1LL); }},
      {"macro", [](Spec& s) { s.macro("X", "1"); }},
  };
  for (const auto& [first_kind, first] : kinds) {
    for (const auto& [second_kind, second] : kinds) {
      CAPTURE(first_kind);
      CAPTURE(second_kind);
      Spec s = base_spec();
      first(s);
      CHECK_THROWS_WITH_AS(second(s),
                           has("the name 'X' is already taken by a " + first_kind +
                               ", so it cannot name a " + second_kind),
                           SpecError);
    }
  }
  // The failed call left the spec as it was.
  Spec s = base_spec();
  s.dim("X");
  CHECK_THROWS_AS(s.constant("X", 1), SpecError);
  CHECK(s.header().find("constexpr") == std::string::npos);
}

TEST_CASE("a name that is not a C++ identifier") {
  for (std::string name : {"", "1abc", "a-b", "a b", "a.b", "x\xc3\xa9", "A::B", "a\n"}) {
    CAPTURE(name);
    CHECK_THROWS_WITH_AS(Spec().dim(name),
                         has("the dimension name '" + name + "' is not a C++ identifier"),
                         SpecError);
  }
  CHECK_THROWS_WITH_AS(Spec().macro("9", "1"), has("macro name '9'"), SpecError);
  CHECK_THROWS_WITH_AS(Spec().constant("x y", 1), has("constant name 'x y'"), SpecError);
  CHECK_THROWS_WITH_AS(TensorSpec("T-1", DType::f32), has("tensor name 'T-1'"), SpecError);
  CHECK_THROWS_WITH_AS(TensorSpec("T", DType::f32).dim("I J", 2), has("dimension name 'I J'"),
                       SpecError);
  CHECK_THROWS_WITH_AS(base_spec().fold("K 2", "K", 2), has("fold name 'K 2'"), SpecError);
  CHECK_THROWS_WITH_AS(base_spec().fold("K2", "K-", 2), has("dimension name 'K-'"), SpecError);
  CHECK_THROWS_WITH_AS(base_spec().compound_index("Idx", {{"I+", 2}}), has("'I+'"), SpecError);
  CHECK_THROWS_WITH_AS(base_spec().compound_index("1dx", {{"I", 2}}),
                       has("compound index name '1dx'"), SpecError);
}

TEST_CASE("a C++ keyword is not a name") {
  // The full C++20 keyword list, alternative operator spellings included.
  const std::vector<std::string> keywords = {
      "alignas",       "alignof",     "asm",       "auto",      "bool",         "break",
      "case",          "catch",       "char",      "char8_t",   "char16_t",     "char32_t",
      "class",         "concept",     "const",     "consteval", "constexpr",    "constinit",
      "const_cast",    "continue",    "co_await",  "co_return", "co_yield",     "decltype",
      "default",       "delete",      "do",        "double",    "dynamic_cast", "else",
      "enum",          "explicit",    "export",    "extern",    "false",        "float",
      "for",           "friend",      "goto",      "if",        "inline",       "int",
      "long",          "mutable",     "namespace", "new",       "noexcept",     "nullptr",
      "operator",      "private",     "protected", "public",    "register",     "reinterpret_cast",
      "requires",      "return",      "short",     "signed",    "sizeof",       "static",
      "static_assert", "static_cast", "struct",    "switch",    "template",     "this",
      "thread_local",  "throw",       "true",      "try",       "typedef",      "typeid",
      "typename",      "union",       "unsigned",  "using",     "virtual",      "void",
      "volatile",      "wchar_t",     "while",     "and",       "and_eq",       "bitand",
      "bitor",         "compl",       "not",       "not_eq",    "or",           "or_eq",
      "xor",           "xor_eq"};
  CHECK(keywords.size() == 92);
  for (const auto& k : keywords) {
    CAPTURE(k);
    CHECK(is_cpp_keyword(k));
    CHECK_THROWS_WITH_AS(Spec().dim(k), has("the dimension name '" + k + "' is a C++ keyword"),
                         SpecError);
  }
  CHECK_THROWS_WITH_AS(Spec().macro("while", "1"), has("macro name 'while' is a C++ keyword"),
                       SpecError);
  CHECK_THROWS_WITH_AS(TensorSpec("class", DType::f32), has("tensor name 'class' is a C++ keyword"),
                       SpecError);
}

TEST_CASE("a reserved identifier is not a name") {
  for (std::string name : {"_X", "_Tile", "__x", "a__b", "x__", "_A_"}) {
    CAPTURE(name);
    CHECK_THROWS_WITH_AS(Spec().constant(name, 1),
                         has("the constant name '" + name + "' is reserved in C++"), SpecError);
  }
  CHECK_THROWS_WITH_AS(Spec().dim("kiln"), has("'kiln' would clash with kiln's own"), SpecError);
  CHECK_THROWS_WITH_AS(Spec().macro("KILN_DIM", "x"), has("'KILN_DIM' would clash"), SpecError);
}

TEST_CASE("a zero or negative size, stride, padding or factor") {
  CHECK_THROWS_WITH_AS(Spec().dim("I", 0), has("dimension 'I' has the total size 0"), SpecError);
  CHECK_THROWS_WITH_AS(Spec().dim("I", -4), has("dimension 'I' has the total size -4"), SpecError);
  for (int bad : {0, -1}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(TensorSpec("A", DType::f32).dim("I", bad),
                         has("tensor 'A' gives dimension 'I' the size " + std::to_string(bad)),
                         SpecError);
    CHECK_THROWS_WITH_AS(TensorSpec("A", DType::f32).dim("I", 4, Stride{bad}),
                         has("tensor 'A' gives dimension 'I' the stride " + std::to_string(bad)),
                         SpecError);
    CHECK_THROWS_WITH_AS(TensorSpec("A", DType::f32).dim("I", bad, Padding{1}),
                         has("tensor 'A' gives dimension 'I' the size"), SpecError);
    CHECK_THROWS_WITH_AS(base_spec().fold("K0", "K", bad),
                         has("fold 'K0' of 'K' has the factor " + std::to_string(bad)), SpecError);
    CHECK_THROWS_WITH_AS(base_spec().module("KM0", "K", bad),
                         has("module 'KM0' of 'K' has the factor " + std::to_string(bad)),
                         SpecError);
    CHECK_THROWS_WITH_AS(
        base_spec().compound_index("Idx", {{"WARP", 8}, {"LANE", bad}}),
        has("compound index 'Idx' gives dimension 'LANE' the size " + std::to_string(bad)),
        SpecError);
  }
  CHECK_THROWS_WITH_AS(TensorSpec("A", DType::f32).dim("I", 4, Padding{-1}),
                       has("tensor 'A' pads dimension 'I' by -1 elements"), SpecError);
}

TEST_CASE("a fold that does not divide its dimension's total size") {
  {
    Spec s;
    s.dim("K", 100).fold("K8", "K", 8);
    CHECK_THROWS_WITH_AS(s.header(),
                         has("fold 'K8' counts 'K' in units of 8, which do not divide its "
                             "total size 100"),
                         SpecError);
  }
  {  // a fold of a fold: K8 by 4 is units of 32, and 48 is not a multiple
    Spec s;
    s.dim("K", 48).fold("K8", "K", 8).fold("K32", "K8", 4);
    CHECK_THROWS_WITH_AS(s.header(), has("fold 'K32' counts 'K' in units of 32"), SpecError);
  }
  {  // a module covers factor units of what it bounds
    Spec s;
    s.dim("K", 20).module("KM8", "K", 8);
    CHECK_THROWS_WITH_AS(s.header(), has("module 'KM8' counts 'K' in units of 8"), SpecError);
  }
  {  // without a total size there is nothing to check
    Spec s;
    s.dim("K").fold("K7", "K", 7);
    CHECK_NOTHROW(s.header());
  }
}

TEST_CASE("folds of one dimension in a tensor whose strides do not divide, or are equal") {
  Spec s;
  s.dim("K").dim("I").fold("K4", "K", 4).fold("K6", "K", 6).module("KM8", "K", 8);
  s.fold("G4", "K", 4);
  {
    Spec t = s;
    t.tensor(TensorSpec("A", DType::f32).dim("K6", 2).dim("I", 2).dim("K4", 4));
    CHECK_THROWS_WITH_AS(t.header(),
                         has("tensor 'A' holds 'K4' (units of 4) and 'K6' (units of 6) of "
                             "dimension 'K', whose fold strides do not divide each other"),
                         SpecError);
  }
  {
    Spec t = s;
    t.tensor(TensorSpec("A", DType::f32).dim("KM8", 8).dim("K", 8));
    CHECK_THROWS_WITH_AS(t.header(),
                         has("tensor 'A' holds 'KM8' and 'K', which both count 'K' in units "
                             "of 1"),
                         SpecError);
  }
  {
    Spec t = s;
    t.tensor(TensorSpec("A", DType::f32).dim("K4", 8).dim("G4", 8));
    CHECK_THROWS_WITH_AS(t.header(), has("tensor 'A' holds 'K4' and 'G4'"), SpecError);
  }
  {
    Spec t = s;
    t.compound_index("Idx", {{"K6", 2}, {"K4", 4}});
    CHECK_THROWS_WITH_AS(t.header(), has("compound index 'Idx' holds 'K4' (units of 4)"),
                         SpecError);
  }
}

TEST_CASE("a dimension listed twice in a tensor or compound index") {
  CHECK_THROWS_WITH_AS(TensorSpec("A", DType::f32).dim("I", 2).dim("K", 2).dim("I", 2),
                       has("tensor 'A' lists dimension 'I' twice"), SpecError);
  CHECK_THROWS_WITH_AS(TensorSpec("A", DType::f32).dim("I", 2).dim("I", 2, Stride{4}),
                       has("tensor 'A' lists dimension 'I' twice"), SpecError);
  CHECK_THROWS_WITH_AS(base_spec().compound_index("Idx", {{"WARP", 2}, {"WARP", 4}}),
                       has("compound index 'Idx' lists dimension 'WARP' twice"), SpecError);
}

TEST_CASE("a swizzle with Shift < Bits, or out of range") {
  CHECK_THROWS_WITH_AS(TensorSpec("S", DType::f16).dim("I", 8).swizzle(3, 3, 2),
                       has("tensor 'S' has the swizzle <3, 3, 2> with Shift 2 < Bits 3"),
                       SpecError);
  CHECK_THROWS_WITH_AS(TensorSpec("S", DType::f16).swizzle(-1, 0, 0),
                       has("tensor 'S' has the swizzle <-1, 0, 0>"), SpecError);
  CHECK_THROWS_WITH_AS(TensorSpec("S", DType::f16).swizzle(10, 10, 11), has("reaches past bit 30"),
                       SpecError);
  CHECK_THROWS_WITH_AS(TensorSpec("S", DType::f16).swizzle(1, 1, 1).swizzle(2, 2, 2),
                       has("tensor 'S' is given a swizzle twice"), SpecError);
  CHECK_NOTHROW(TensorSpec("S", DType::f16).swizzle(3, 3, 3));
  CHECK_NOTHROW(TensorSpec("S", DType::f16).swizzle(0, 0, 0));
}

TEST_CASE("other invalid specs") {
  SUBCASE("a cycle of folds") {
    Spec s;
    s.fold("A", "B", 2).fold("B", "A", 2);
    CHECK_THROWS_WITH_AS(s.header(), has("fold 'A' folds itself (A -> B -> A)"), SpecError);
  }
  SUBCASE("a fold of a module") {
    Spec s = base_spec();
    s.module("KM8", "K", 8).fold("KM16", "KM8", 2);
    CHECK_THROWS_WITH_AS(s.header(), has("fold 'KM16' folds 'KM8', which is a module"), SpecError);
  }
  SUBCASE("a tensor without dimensions") {
    CHECK_THROWS_WITH_AS(base_spec().tensor(TensorSpec("A", DType::f32)),
                         has("tensor 'A' has no dimensions"), SpecError);
    CHECK_THROWS_WITH_AS(base_spec().compound_index("Idx", {}),
                         has("compound index 'Idx' has no dimensions"), SpecError);
  }
  SUBCASE("padding over a run-time packed stride") {
    CHECK_THROWS_WITH_AS(
        base_spec().tensor(TensorSpec("A", DType::f32).dim("I", 4, Padding{1}).dim("K", dynamic)),
        has("tensor 'A' pads dimension 'I', but its packed stride depends on a run-time"),
        SpecError);
    CHECK_THROWS_WITH_AS(
        base_spec().tensor(
            TensorSpec("A", DType::f32).dim("I", 4, Padding{1}).dim("K", 4, Stride{dynamic})),
        has("tensor 'A' pads dimension 'I'"), SpecError);
  }
  SUBCASE("a tensor past 32-bit offsets") {
    CHECK_THROWS_WITH_AS(
        base_spec().tensor(TensorSpec("A", DType::f32).dim("I", 65536).dim("K", 65536)),
        has("tensor 'A' spans 4294967296 elements at dimension 'I'"), SpecError);
  }
  SUBCASE("a fold past int") {
    Spec s;
    s.dim("K").fold("K1", "K", 1 << 20).fold("K2", "K1", 1 << 20);
    CHECK_THROWS_WITH_AS(s.header(), has("fold 'K2' measures 'K' in units of"), SpecError);
  }
  SUBCASE("a macro over several lines") {
    CHECK_THROWS_WITH_AS(Spec().macro("M", "1 \\\n + 2"),
                         has("macro 'M' has a value with a line break"), SpecError);
  }
  SUBCASE("a constant that is not finite") {
    CHECK_THROWS_WITH_AS(Spec().constant("inf", std::numeric_limits<float>::infinity()),
                         has("constant 'inf' is not finite"), SpecError);
    CHECK_THROWS_WITH_AS(Spec().constant("nan", std::numeric_limits<double>::quiet_NaN()),
                         has("constant 'nan' is not finite"), SpecError);
  }
  SUBCASE("an element type outside the enumeration") {
    CHECK_THROWS_WITH_AS(TensorSpec("A", static_cast<DType>(99)),
                         has("99 is not a kiln::gen::DType"), SpecError);
  }
}
