// Spec::tensor<T>(): a Spec's tensors from the host's own tensor types give the same header
// as the same tensors written out with TensorSpec.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "kiln/dims.hpp"
#include "kiln/gen.hpp"

namespace {

KILN_DIM(ROW);
KILN_DIM(COL);

using kiln::dynamic;
using kiln::Extent;
namespace gen = kiln::gen;

// The header of a spec with dimensions ROW and COL and the one tensor `t`.
std::string header_with(const gen::TensorSpec& t, bool fold = false) {
  gen::Spec s;
  s.dim("ROW").dim("COL");
  if (fold) s.fold("COL8", "COL", 8);
  return s.tensor(t).header();
}

template <class T>
std::string header_of(const char* name, bool fold = false) {
  gen::Spec s;
  if (fold) s.dim("COL").fold("COL8", "COL", 8);
  return s.tensor<T>(name).header();
}

}  // namespace

TEST_CASE("element types map to DTypes by kind and size") {
  CHECK(gen::dtype_of<float>() == gen::DType::f32);
  CHECK(gen::dtype_of<const double>() == gen::DType::f64);
  CHECK(gen::dtype_of<kiln::f16>() == gen::DType::f16);
  CHECK(gen::dtype_of<kiln::bf16>() == gen::DType::bf16);
  CHECK(gen::dtype_of<std::int64_t>() == gen::DType::i64);  // long, not long long, on Linux
  CHECK(gen::dtype_of<std::uint8_t>() == gen::DType::u8);
  CHECK(gen::dtype_of<short>() == gen::DType::i16);
  CHECK(gen::dtype_of<unsigned>() == gen::DType::u32);
}

TEST_CASE("a host tensor type gives the header its TensorSpec would") {
  SUBCASE("run-time rows, static columns, read-only") {
    using In = kiln::Tensor<const float, Extent<ROW, dynamic>, Extent<COL, 256>>;
    CHECK(header_of<In>("In") == header_with(gen::TensorSpec("In", gen::DType::f32)
                                                 .read_only()
                                                 .dim("ROW", gen::dynamic)
                                                 .dim("COL", 256)));
  }
  SUBCASE("static sizes, mutable, f16") {
    using T = kiln::Tensor<kiln::f16, Extent<COL, 8>, Extent<ROW, 64>>;
    CHECK(header_of<T>("T") ==
          header_with(gen::TensorSpec("T", gen::DType::f16).dim("COL", 8).dim("ROW", 64)));
  }
  SUBCASE("a padded static stride stays explicit, a packed one stays packed") {
    using P = kiln::Tensor<float, Extent<ROW, 32, 33>, Extent<COL, 32>>;
    CHECK(
        header_of<P>("P") ==
        header_with(
            gen::TensorSpec("P", gen::DType::f32).dim("ROW", 32, gen::Stride{33}).dim("COL", 32)));
  }
  SUBCASE("a run-time stride") {
    using R = kiln::Tensor<std::int64_t, Extent<ROW, dynamic, dynamic>, Extent<COL, 4>>;
    CHECK(header_of<R>("R") == header_with(gen::TensorSpec("R", gen::DType::i64)
                                               .dim("ROW", gen::dynamic, gen::Stride{gen::dynamic})
                                               .dim("COL", 4)));
  }
  SUBCASE("a swizzle") {
    using S = kiln::SwizzledTensor<float, kiln::Swizzle<3, 2, 3>, Extent<ROW, 8>, Extent<COL, 32>>;
    CHECK(header_of<S>("S") ==
          header_with(
              gen::TensorSpec("S", gen::DType::f32).dim("ROW", 8).dim("COL", 32).swizzle(3, 2, 3)));
  }
  SUBCASE("a fold the spec declared is spelled by its name") {
    using F = kiln::Tensor<float, Extent<ROW, dynamic>, Extent<kiln::Fold<COL, 8>, 4>>;
    CHECK(header_of<F>("F", true) ==
          header_with(gen::TensorSpec("F", gen::DType::f32).dim("ROW", gen::dynamic).dim("COL8", 4),
                      true));
  }
}

TEST_CASE("a fold the spec does not name is refused, saying what to declare") {
  using F = kiln::Tensor<float, Extent<kiln::Fold<COL, 8>, 4>>;
  gen::Spec s;
  CHECK_THROWS_WITH_AS(s.tensor<F>("F"), doctest::Contains("spec.fold(\"COL8\", \"COL\", 8)"),
                       gen::SpecError);
}

TEST_CASE("the dimensions a host tensor uses are declared once, beside the ones declared before") {
  using A = kiln::Tensor<float, Extent<ROW, dynamic>, Extent<COL, 16>>;
  using B = kiln::Tensor<const float, Extent<COL, 16>>;
  gen::Spec s;
  s.dim("COL", 16).tensor<A>("A").tensor<B>("B");
  const std::string h = s.header();
  CHECK(h.find("KILN_DIM(ROW);\n") != std::string::npos);
  CHECK(h.find("KILN_DIM(COL);  // total size 16\n") != std::string::npos);
  CHECK(h.find("KILN_DIM(COL);\n") == std::string::npos);
}
