#pragma once
/// KILN_PROFILE=FILE: profile the whole run, and write the result when the program exits,
/// normally or through an exception that escapes main.
///
///   FILE ending in .json     the Chrome/Perfetto trace      .json.gz  the same, gzipped
///   FILE ending in .csv      every record                   .svg      the roofline chart
///
/// The top-N table goes to stderr as well. KILN_PROFILE_BACKEND picks events or cupti.
/// Hardware counters (KILN_PROFILE_METRICS) are not collected in this timing run: they need
/// the work run a second time (profile_with_counters in counters.hpp); kiln says so once at
/// start.
///
/// KILN_PROFILE_COUNTERS=FILE.json: the whole run is a counter pass instead (a
/// CounterSession from start to exit, KILN_PROFILE_METRICS or the default set), and FILE
/// gets each kernel's counters (counters_to_json). `kiln profile --counters` runs the
/// program twice, with KILN_PROFILE and then with this, and joins the two. Where both are
/// set, the counter pass wins and KILN_PROFILE is ignored, with a warning: its replays
/// would be timed.
///
/// The file is checked when the program starts, not when it ends: a name with another
/// extension gets ".json" added, and a directory kiln cannot write to is replaced by the temp
/// directory (kiln-profile-<pid> with the same extension), each with one warning line naming
/// the file that will be written. Where writing fails at exit all the same, the profile goes
/// to that temp file instead, and stderr says where.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "counters.hpp"
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

/// Whether write_profile() knows what to write to `path`, from its extension.
inline bool has_profile_extension(const std::string& path) {
  for (const char* e : {".json", ".gz", ".csv", ".svg"}) {
    const std::string ext(e);
    if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
      return true;
    }
  }
  return false;
}

/// A file in the temp directory for the profile KILN_PROFILE asked for at `path` (same
/// extension): where the profile goes when `path` cannot be written.
inline std::string fallback_profile_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::temp_directory_path(ec);
  if (ec) dir = "/tmp";
  const std::string name = fs::path(path).filename().string();
  const auto dot = name.find('.');
  const std::string ext = dot == std::string::npos ? ".json" : name.substr(dot);
  return (dir / ("kiln-profile-" + std::to_string(::getpid()) + ext)).string();
}

/// The file the profile of KILN_PROFILE=`requested` is written to: `requested`, or where it
/// cannot be, a name that can, with one warning line on stderr saying why and where.
inline std::string checked_profile_path(const std::string& requested) {
  namespace fs = std::filesystem;
  std::string path = requested;
  if (!has_profile_extension(path)) {
    path += ".json";
    std::fprintf(stderr,
                 "kiln: KILN_PROFILE=%s does not end in .json, .json.gz, .csv or .svg, so kiln "
                 "cannot tell what to write; the Chrome trace will be written to %s\n",
                 requested.c_str(), path.c_str());
  }
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    const int error = errno;
    const std::string fallback = fallback_profile_path(path);
    std::fprintf(stderr,
                 "kiln: KILN_PROFILE=%s: cannot write in %s (%s); the profile will be written to "
                 "%s instead. Set KILN_PROFILE to a file in a directory you can write to.\n",
                 requested.c_str(), dir.c_str(), std::strerror(error), fallback.c_str());
    path = fallback;
  }
  return path;
}

/// Constructs, before this object, the process-wide state writing at exit needs (the
/// driver and each device's slot), so that it is destroyed after it: the profile is written
/// when static objects are destroyed, and those made later (in main) go first.
inline void keep_driver_for_exit() noexcept {
  try {
    const int n = rt::device_count();
    for (int d = 0; d < n; ++d) (void)rt::detail::device_slot(d);
  } catch (...) {
    // No driver: nothing to keep; profiling says why when it starts.
  }
}

class EnvironmentProfile {
 public:
  EnvironmentProfile() {
    const char* c = std::getenv("KILN_PROFILE_COUNTERS");
    const char* p = std::getenv("KILN_PROFILE");
    if ((c && *c) || (p && *p)) keep_driver_for_exit();
    if (c && *c) {
      start_counters(c);
      return;
    }
    if (!p || !*p) return;
    path_ = checked_profile_path(p);
    if (kiln::detail::env_setting("KILN_PROFILE_METRICS")) {
      std::fprintf(stderr,
                   "kiln: KILN_PROFILE_METRICS is set, but KILN_PROFILE profiles the whole run "
                   "once, so %s will have timing only: counters need a second pass of the work "
                   "(kiln::prof::profile_with_counters, see docs/profiling.md)\n",
                   path_.c_str());
    }
    try {
      Profiler::instance().start(backend_from_environment());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln: KILN_PROFILE is set, but profiling could not start: %s\n",
                   e.what());
      path_.clear();
      return;
    }
    write_on_terminate();
  }
  ~EnvironmentProfile() { write(); }

  static EnvironmentProfile& instance();

  /// Whether the whole run is being profiled (KILN_PROFILE) or counted
  /// (KILN_PROFILE_COUNTERS).
  bool active() const { return !path_.empty(); }

  void write() {
    std::call_once(written_, [this] {
      if (counting_) {
        write_counters();
        return;
      }
      if (path_.empty()) return;
      try {
        Profile profile = Profiler::instance().stop();
        std::fprintf(stderr, "%s", top_table(profile).c_str());
        std::string path = path_;
        try {
          write_profile(profile, path);
        } catch (const std::exception& e) {
          // Never lose the run's records: the temp directory is the last resort.
          path = fallback_profile_path(path_);
          std::fprintf(stderr, "kiln: could not write the profile to %s (%s); writing it to %s\n",
                       path_.c_str(), e.what(), path.c_str());
          write_profile(profile, path);
        }
        std::fprintf(stderr, "kiln: profile of %zu kernel launches written to %s\n",
                     profile.kernels.size(), path.c_str());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "kiln: could not write the profile to %s: %s\n", path_.c_str(),
                     e.what());
      }
    });
  }

 private:
  // An exception that escapes main still writes what was recorded.
  void write_on_terminate() {
    previous_ = std::set_terminate([] {
      instance().write();
      if (instance().previous_) instance().previous_();
      std::abort();
    });
  }

  void start_counters(const std::string& requested) {
    if (const char* p = std::getenv("KILN_PROFILE"); p && *p) {
      std::fprintf(stderr,
                   "kiln: KILN_PROFILE_COUNTERS and KILN_PROFILE are both set; this run is a "
                   "counter pass only (its kernels are replayed, so timing them would mislead): "
                   "KILN_PROFILE=%s is ignored\n",
                   p);
    }
    path_ = requested;
    std::filesystem::path dir = std::filesystem::path(path_).parent_path();
    if (dir.empty()) dir = ".";
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      const int error = errno;
      const std::string fallback = fallback_profile_path(path_ + ".json");
      std::fprintf(stderr,
                   "kiln: KILN_PROFILE_COUNTERS=%s: cannot write in %s (%s); the counters will "
                   "be written to %s instead\n",
                   requested.c_str(), dir.c_str(), std::strerror(error), fallback.c_str());
      path_ = fallback;
    }
    try {
      metrics_ = metrics_from_environment().value_or(default_metrics());
      check_metrics_for_device(metrics_, "KILN_PROFILE_METRICS");
      CounterOptions options;
      options.metrics = metrics_;
      counting_ = std::make_unique<CounterSession>(options);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln: KILN_PROFILE_COUNTERS is set, but counting could not start: %s\n",
                   e.what());
      path_.clear();
      return;
    }
    write_on_terminate();
  }

  void write_counters() {
    try {
      const CounterResult result = counting_->finish();
      counting_.reset();
      write_file(path_, counters_to_json(result, metrics_).dump(1));
      std::fprintf(stderr,
                   "kiln: counters of %zu kernel launches (%zu passes each) written to %s\n",
                   result.ranges.size(), result.passes, path_.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln: could not write the counters to %s: %s\n", path_.c_str(),
                   e.what());
    }
  }

  std::string path_;
  std::vector<std::string> metrics_;
  std::unique_ptr<CounterSession> counting_;
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

/// Whether this run is profiled as a whole, by KILN_PROFILE (a timing session from start to
/// exit) or KILN_PROFILE_COUNTERS (a counter pass): `kiln profile` sets them. A program
/// with sessions of its own skips them then (a second Session cannot start, and one inside
/// the counter pass would time replays).
inline bool whole_run_profiled() {
  return detail::EnvironmentProfile::instance().active();
}

}  // namespace kiln::prof
