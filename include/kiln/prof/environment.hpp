#pragma once
/// KILN_PROFILE=FILE: profile the whole run, and write the result when the program exits,
/// normally or through an exception that escapes main.
///
///   FILE ending in .json     the Chrome/Perfetto trace      .json.gz  the same, gzipped
///   FILE ending in .csv      every record                   .svg      the roofline chart
///
/// The top-N table goes to stderr as well. KILN_PROFILE_BACKEND picks events or cupti.

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>

#include "profiler.hpp"
#include "report.hpp"
#include "roofline.hpp"
#include "trace.hpp"

namespace kiln::prof {

/// Writes `profile` to `path`, in the format its extension names (see above).
inline void write_profile(const Profile& profile, const std::string& path) {
  auto ends_with = [&](const char* s) {
    std::string e(s);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends_with(".json") || ends_with(".gz")) {
    write_chrome_trace(profile, path);
  } else if (ends_with(".csv")) {
    write_file(path, to_csv(profile));
  } else if (ends_with(".svg")) {
    write_file(
        path, roofline_svg(profile, profile.devices.empty() ? 0 : profile.devices.front().ordinal));
  } else {
    throw Error("kiln: cannot tell what to write to " + path +
                " (KILN_PROFILE): end it in .json, .json.gz, .csv or .svg");
  }
}

namespace detail {

class EnvironmentProfile {
 public:
  EnvironmentProfile() {
    const char* p = std::getenv("KILN_PROFILE");
    if (!p || !*p) return;
    path_ = p;
    try {
      Profiler::instance().start(backend_from_environment());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln: KILN_PROFILE is set, but profiling could not start: %s\n",
                   e.what());
      path_.clear();
      return;
    }
    previous_ = std::set_terminate([] {
      instance().write();
      if (instance().previous_) instance().previous_();
      std::abort();
    });
  }
  ~EnvironmentProfile() { write(); }

  static EnvironmentProfile& instance();

  void write() {
    std::call_once(written_, [this] {
      if (path_.empty()) return;
      try {
        Profile profile = Profiler::instance().stop();
        std::fprintf(stderr, "%s", top_table(profile).c_str());
        write_profile(profile, path_);
        std::fprintf(stderr, "kiln: profile of %zu kernel launches written to %s\n",
                     profile.kernels.size(), path_.c_str());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "kiln: could not write the profile to %s: %s\n", path_.c_str(),
                     e.what());
      }
    });
  }

 private:
  std::string path_;
  std::once_flag written_;
  std::terminate_handler previous_ = nullptr;
};

// One per program: constructed before main (where this header is included), destroyed
// after it returns.
inline EnvironmentProfile environment_profile;
inline EnvironmentProfile& EnvironmentProfile::instance() {
  return environment_profile;
}

}  // namespace detail
}  // namespace kiln::prof
