#pragma once
/// How a kernel factory picks a config when the tuning database has none for the problem:
/// KILN_TUNE = off (the factory's heuristic), model (the performance model ranks the
/// candidates and the best few are timed) or full (every candidate is timed).

#include <cstdlib>
#include <string>

#include "../detail/enum_names.hpp"
#include "../detail/environment.hpp"
#include "../error.hpp"
#include "../prof/stats.hpp"

namespace kiln::factory {

enum class TunePolicy { off, model, full };

inline constexpr auto tune_policy_names = kiln::detail::enum_names<TunePolicy>(
    {{TunePolicy::off, "off"}, {TunePolicy::model, "model"}, {TunePolicy::full, "full"}});

inline const char* to_string(TunePolicy p) {
  return tune_policy_names.name(p);
}

/// Parses "off", "model" or "full"; throws kiln::Error naming `what` for anything else.
inline TunePolicy parse_tune_policy(const std::string& text, const std::string& what) {
  if (const auto p = tune_policy_names.parse(text)) return *p;
  throw Error("kiln: " + what + "=" + text + " is not a tuning policy; use " +
              tune_policy_names.choices());
}

/// Settings of a factory's tuning.
struct TuneOptions {
  TunePolicy policy = TunePolicy::off;
  /// Under `model`: how many of the best-ranked candidates are timed.
  int top_k = 3;
  /// When a candidate's time is known well enough: tuning needs ranks, not the last 0.5%.
  prof::StopRule stop{0.01, 5, 200, 2.0};
  bool flush_l2 = true;

  /// The defaults with KILN_TUNE (off when unset) and KILN_TUNE_TOP_K applied; throws
  /// kiln::Error for values that are not a policy or a count from 1 to 1000.
  static TuneOptions from_environment() {
    TuneOptions o;
    if (const auto p =
            kiln::detail::env_choice("KILN_TUNE", tune_policy_names, "a tuning policy")) {
      o.policy = *p;
    }
    if (const auto k = kiln::detail::env_count("KILN_TUNE_TOP_K", 1, 1000,
                                               "how many candidates the model's ranking times")) {
      o.top_k = static_cast<int>(*k);
    }
    return o;
  }
};

/// How a Kernel's config was chosen.
enum class Selection {
  only,       ///< the factory offered one candidate
  database,   ///< the tuning database had the winner
  heuristic,  ///< KILN_TUNE=off: the factory's heuristic
  full,       ///< every candidate was timed
  model,      ///< the model's best-ranked candidates were timed
};

inline constexpr auto selection_names =
    kiln::detail::enum_names<Selection>({{Selection::only, "only"},
                                         {Selection::database, "database"},
                                         {Selection::heuristic, "heuristic"},
                                         {Selection::full, "full"},
                                         {Selection::model, "model"}});

inline const char* to_string(Selection s) {
  return selection_names.name(s);
}

}  // namespace kiln::factory
