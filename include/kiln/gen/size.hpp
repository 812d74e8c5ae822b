#pragma once
/// Sizes and strides of generated extents: a positive int, or known only at run time.

#include "../dims/layout.hpp"  // kiln::dynamic

namespace kiln::gen {

/// kiln::dynamic and its type, declared again here: gen::dynamic is the same entity as
/// kiln::dynamic (the constant device code writes in Extent<K, kiln::dynamic>), so a
/// program with both `using namespace kiln;` and `using namespace kiln::gen;` sees one.
using ::kiln::Dynamic;
using ::kiln::dynamic;

/// A size or stride: a static int (which a Spec requires to be positive) or dynamic.
/// Converts implicitly from both, so `{"I", 64}` and `{"K", dynamic}` read naturally.
class Size {
 public:
  constexpr Size(int value) : value_(value) {}  // NOLINT(google-explicit-constructor)
  constexpr Size(Dynamic) : dynamic_(true) {}   // NOLINT(google-explicit-constructor)

  constexpr bool is_dynamic() const { return dynamic_; }
  /// The static value (0 for a dynamic size).
  constexpr int value() const { return value_; }

  friend constexpr bool operator==(const Size&, const Size&) = default;

 private:
  int value_ = 0;
  bool dynamic_ = false;
};

/// An explicit stride for a tensor dimension, in elements: Stride{40}, Stride{dynamic}.
struct Stride {
  Size value;
};

/// Extra elements added to a tensor dimension's packed stride: Padding{8} on rows of 32
/// gives a stride of 40. The packed stride must be static.
struct Padding {
  int elements;
};

}  // namespace kiln::gen
