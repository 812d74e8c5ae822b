#pragma once
/// The error a kernel header Spec throws when it is invalid.

#include "../error.hpp"

namespace kiln::gen {

/// An invalid kiln::gen::Spec: the message names the offending item (dimension, fold,
/// tensor, constant, macro or compound index) and says what to change. Thrown by the
/// fluent calls where the problem is visible there, otherwise by validate() and header().
class SpecError : public Error {
 public:
  using Error::Error;
};

}  // namespace kiln::gen
