// kiln::dynamic (dims/layout.hpp) and kiln::gen::dynamic (gen/size.hpp) are one entity, so
// a program may say `using namespace kiln;` and `using namespace kiln::gen;` together.
#include <doctest/doctest.h>

#include <type_traits>

#include "kiln/dims.hpp"
#include "kiln/gen.hpp"

namespace dynamic_namespaces {

using namespace kiln;
using namespace kiln::gen;

KILN_DIM(I);
KILN_DIM(K);

// Unqualified `dynamic` is not ambiguous, and works as an int template argument.
using T = Tensor<float, Extent<I, dynamic>, Extent<K, 32>>;
static_assert(T::layout_type::extent_at<0>::size == -1);
static_assert(T::layout_type::extent_at<0>::size == dynamic);
constexpr const kiln::Dynamic* dims_dynamic = &kiln::dynamic;
constexpr const kiln::Dynamic* gen_dynamic = &kiln::gen::dynamic;
static_assert(dims_dynamic == gen_dynamic, "one entity, not two");
static_assert(std::is_same_v<kiln::Dynamic, kiln::gen::Dynamic>);
static_assert(int(dynamic) == -1);

TEST_CASE("gen::Size tells dynamic apart from a number") {
  CHECK(Size(dynamic).is_dynamic());
  CHECK(Size(dynamic).value() == 0);
  CHECK_FALSE(Size(64).is_dynamic());
  CHECK(Size(64).value() == 64);
  // -1 written as a number stays a number (a Spec rejects it), only `dynamic` is run-time.
  CHECK_FALSE(Size(-1).is_dynamic());
  CHECK(gen::Stride{dynamic}.value.is_dynamic());
}

TEST_CASE("a spec and a tensor written with the same unqualified dynamic") {
  const std::string header =
      Spec()
          .dim("I")
          .dim("K")
          .tensor(TensorSpec("A", DType::f32).read_only().dim("I", dynamic).dim("K", 32))
          .header();
  CHECK(header.find("kiln::Extent<I, kiln::dynamic>") != std::string::npos);
  float data[2 * 32] = {};
  T t(data, I(2));
  CHECK(t.size<I>() == I(2));
}

}  // namespace dynamic_namespaces
