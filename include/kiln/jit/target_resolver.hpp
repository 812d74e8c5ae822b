#pragma once
/// Who names the compile target of an Options with no target.
///
/// jit cannot ask the GPU (devices are rt's, a layer up), so it asks a resolver that a
/// higher layer installs: kiln/rt/default_target.hpp (included by kiln/rt.hpp and
/// kiln/kiln.hpp) installs one that answers with the current device's target. Without
/// one, an empty Options::target is an error that says to set it.
///
///   kiln::jit::set_default_target_resolver([] { return std::string("sm_90"); });

#include <atomic>
#include <string>

#include "../error.hpp"

namespace kiln::jit {

/// A function that names the compile target ("sm_90", "gfx942") for Options with none, or
/// throws kiln::Error saying why it cannot.
using TargetResolver = std::string (*)();

namespace detail {
// Constant-initialized, so a resolver installed during static initialization is kept.
inline std::atomic<TargetResolver> default_target_resolver{nullptr};
}  // namespace detail

/// Installs `resolver` (nullptr: none) for every KernelCache; returns the one it replaces.
inline TargetResolver set_default_target_resolver(TargetResolver resolver) noexcept {
  return detail::default_target_resolver.exchange(resolver);
}

/// The target for Options with no target: the installed resolver's answer. Throws
/// kiln::Error where none is installed, saying to set Options::target.
inline std::string default_target() {
  if (const TargetResolver resolver = detail::default_target_resolver.load()) return resolver();
  throw Error(
      "kiln: no compile target given (Options::target is empty) and nothing to take it from; "
      "set Options::target (sm_80, sm_86, sm_89, sm_90, sm_90a or gfx942), or include "
      "kiln/rt.hpp (or kiln/kiln.hpp) to take it from the current device");
}

}  // namespace kiln::jit
