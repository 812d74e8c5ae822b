#pragma once
/// The kernel header generator (host only): describe a kernel's dimensions, folds,
/// tensors, compound indices, constants and macros in a kiln::gen::Spec, and
/// Spec::header() writes the C++ header a kernel includes. See docs/generator.md.

#include "gen/dtype.hpp"
#include "gen/literals.hpp"
#include "gen/names.hpp"
#include "gen/size.hpp"
#include "gen/spec.hpp"
#include "gen/spec_error.hpp"
#include "gen/spec_json.hpp"
#include "gen/tensor_spec.hpp"
