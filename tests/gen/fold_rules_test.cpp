// One source of truth for folds: kiln/dims/fold_rules.hpp decides both what kiln::Layout
// accepts at compile time and what Spec::validate() accepts, so a spec whose header would
// fail inside the kernel's compiler is refused by validate() with a message instead.
#include <doctest/doctest.h>

#include <string>

#include "kiln/dims.hpp"
#include "kiln/dims/fold_rules.hpp"
#include "kiln/gen.hpp"

using namespace kiln::gen;
using kiln::fold_rules::FoldExtent;
using kiln::fold_rules::FoldProblem;

namespace {

doctest::Contains has(const std::string& fragment) {
  return doctest::Contains(fragment.c_str());
}

// (K8:4, K:n): K8 counts K in units of 8, so K fits under it for n <= 8.
constexpr FoldExtent k8_then_k(int k_size) {
  return {0, 1, k_size};
}
constexpr FoldExtent fits[] = {{0, 8, 4}, k8_then_k(8), {1, 1, 64}};
constexpr FoldExtent too_big[] = {{0, 8, 4}, k8_then_k(16)};
constexpr FoldExtent run_time[] = {{0, 8, 4}, k8_then_k(-1)};
constexpr FoldExtent repeated[] = {{0, 8, 4}, {0, 8, 2}};
constexpr FoldExtent not_dividing[] = {{0, 6, 2}, {0, 4, 4}};

KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;

Spec k_spec() {
  Spec s;
  s.dim("I").dim("K").fold("K8", "K", 8).fold("K4", "K", 4).fold("K6", "K", 6);
  return s;
}

}  // namespace

TEST_CASE("the fold rules, as kiln::Layout applies them at compile time") {
  static_assert(kiln::fold_rules::fold_problem(fits, 3, 1) == FoldProblem::none);
  static_assert(kiln::fold_rules::fold_problem(too_big, 2, 1) == FoldProblem::does_not_fit);
  static_assert(kiln::fold_rules::fold_problem(run_time, 2, 1) == FoldProblem::none);
  static_assert(kiln::fold_rules::fold_problem(repeated, 2, 0) == FoldProblem::repeated_stride);
  static_assert(kiln::fold_rules::fold_problem(not_dividing, 2, 1) ==
                FoldProblem::strides_do_not_divide);
  static_assert(kiln::fold_rules::coarser_stride(fits, 3, 1) == 8);
  static_assert(kiln::fold_rules::coarser_stride(fits, 3, 0) == 0);
  // The layout that the rules accept compiles and carries K into K8.
  using L = kiln::make_layout_t<kiln::Extent<K8, 4>, kiln::Extent<K, 8>>;
  static_assert(L::carry_ratio<1> == 8);
  CHECK(L::carry_ratio<0> == 0);
}

TEST_CASE("validate() refuses a fold that does not fit under the next coarser one") {
  {
    Spec s = k_spec();
    s.tensor(TensorSpec("A", DType::f32).dim("K8", 4).dim("K", 16));
    CHECK_THROWS_WITH_AS(s.validate(),
                         has("tensor 'A' gives 'K' the size 16, which does not fit under 'K8'"),
                         SpecError);
    CHECK_THROWS_WITH_AS(s.validate(), has("give 'K' a size of at most 8"), SpecError);
    CHECK_THROWS_AS(s.header(), SpecError);
  }
  {
    Spec s = k_spec();
    s.compound_index("Idx", {{"K8", 4}, {"K", 9}});
    CHECK_THROWS_WITH_AS(s.validate(),
                         has("compound index 'Idx' gives 'K' the size 9, which does not fit"),
                         SpecError);
  }
  {  // A fold of a fold: K8 of size 4 spans 32 of K, more than one step (16) of K16.
    Spec s = k_spec();
    s.fold("K16", "K8", 2);
    s.tensor(TensorSpec("A", DType::f32).dim("K16", 2).dim("K8", 4));
    CHECK_THROWS_WITH_AS(s.validate(), has("which does not fit under 'K16'"), SpecError);
  }
}

TEST_CASE("validate() accepts what kiln::Layout accepts") {
  Spec s = k_spec();
  s.tensor(TensorSpec("A", DType::f32).dim("K8", 4).dim("K", 8));
  s.tensor(TensorSpec("B", DType::f32).dim("K8", 4).dim("I", 3).dim("K", 8));
  s.tensor(TensorSpec("R", DType::f32).dim("K8", 4).dim("K", kiln::gen::dynamic));
  s.compound_index("Idx", {{"K8", 2}, {"K4", 2}, {"K", 4}});
  CHECK_NOTHROW(s.validate());
  const std::string header = s.header();
  CHECK(header.find("using A = kiln::Tensor<float, kiln::Extent<K8, 4>, kiln::Extent<K, 8>>;") !=
        std::string::npos);
}

TEST_CASE("validate() names the rule for repeated and non-dividing strides too") {
  {
    Spec s = k_spec();
    s.tensor(TensorSpec("A", DType::f32).dim("K6", 2).dim("K4", 4));
    CHECK_THROWS_WITH_AS(s.validate(), has("whose fold strides do not divide each other"),
                         SpecError);
  }
  {
    Spec s = k_spec();
    s.fold("G8", "K", 8);
    s.tensor(TensorSpec("A", DType::f32).dim("K8", 2).dim("G8", 2));
    CHECK_THROWS_WITH_AS(s.validate(), has("which both count 'K' in units of 8"), SpecError);
  }
}
