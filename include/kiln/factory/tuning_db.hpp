#pragma once
/// The persistent tuning database: what kernel factories learned by timing candidate
/// configs, kept in one JSON file (by default beside the kernel disk cache) so that later
/// runs, and the performance model, can use it.
///
/// Each entry is filed under its TuningKey (factory name and version, params, device name
/// and arch, driver and compiler versions) and records every candidate that was tried, not
/// only the winner. The format is in detail/tuning_db_format.hpp.
///
/// Several processes may share the file. Updates take an exclusive flock() on a sidecar
/// "<file>.lock", read the current file, change it and rename a new file over it, so that
/// concurrent updates of different keys all land and readers always see a whole file.
/// Lookups keep a parsed copy and read the file again only when it has changed.
///
/// A file that is not a tuning database (garbage, cut short, wrong schema) is renamed to
/// "<file>.corrupt-<unix time>" with one warning on stderr, and the database starts empty:
/// losing tuning results costs only tuning time, so it never stops the program. A file of
/// a newer format version is neither used nor changed (stores throw).

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../detail/environment.hpp"
#include "../error.hpp"
#include "detail/tuning_db_file.hpp"
#include "detail/tuning_db_format.hpp"
#include "tuning_json.hpp"
#include "tuning_record.hpp"

namespace kiln::factory {

/// A tuning database file; thread-safe, and safe to share its file between processes.
class TuningDatabase {
 public:
  /// A database kept in `file`, which need not exist yet (it and its missing parent
  /// directories are created by the first store). An empty path gives a database that
  /// keeps its entries in memory only and never writes a file.
  explicit TuningDatabase(std::filesystem::path file) : file_(std::move(file)) {
    std::error_code ec;
    if (!file_.empty()) {
      if (auto absolute = std::filesystem::absolute(file_, ec); !ec) file_ = std::move(absolute);
    }
  }

  TuningDatabase(const TuningDatabase&) = delete;
  TuningDatabase& operator=(const TuningDatabase&) = delete;

  /// The process's database, in default_file() as the environment names it when first
  /// called.
  static TuningDatabase& global() {
    static TuningDatabase db(default_file());
    return db;
  }

  /// The file the environment names. KILN_TUNING_DB is the database's own switch and
  /// location: a file path (made absolute) puts it there; 0, off or false (any letter
  /// case) keeps it in memory only; unset, empty, 1, on or true puts it at tuning.json in
  /// kiln's cache directory ($KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln or $HOME/.cache/kiln).
  /// KILN_CACHE, the kernel disk cache's switch, does not turn it off. Empty (in memory
  /// only) where no directory is named. (A file whose name reads like a switch is written
  /// ./on.)
  static std::filesystem::path default_file() {
    if (auto v = kiln::detail::env_value("KILN_TUNING_DB")) {
      if (const auto on = kiln::detail::parse_switch(*v)) {
        if (!*on) return {};
      } else {
        std::error_code ec;
        auto absolute = std::filesystem::absolute(*v, ec);
        return ec ? std::filesystem::path(*v) : absolute;
      }
    }
    if (auto dir = kiln::detail::cache_dir_from_environment()) return *dir / "tuning.json";
    return {};
  }

  /// The database file (absolute; empty for a database in memory only).
  const std::filesystem::path& file() const noexcept { return file_; }
  bool in_memory() const noexcept { return file_.empty(); }

  /// The entry stored under `key`, or nullopt. Costs one stat() while the file is
  /// unchanged. Never throws for a missing, unreadable or corrupt file.
  std::optional<TuningEntry> find(const TuningKey& key) const {
    std::lock_guard lock(mutex_);
    refresh_locked();
    const auto it = entries_.find(key.id());
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }

  /// Every entry, or those of the factory named `factory` (of any version), ordered by
  /// key id.
  std::vector<TuningEntry> entries(const std::string& factory = {}) const {
    std::lock_guard lock(mutex_);
    refresh_locked();
    std::vector<TuningEntry> out;
    for (const auto& [id, entry] : entries_) {
      if (factory.empty() || entry.key.factory == factory) out.push_back(entry);
    }
    return out;
  }

  /// Stores `entry` under its key, replacing what was there. Throws kiln::Error, naming
  /// the file and the failure, where the file cannot be written (the old file is then
  /// unchanged) or has a newer format version.
  void store(const TuningEntry& entry) {
    update("store a tuning result in",
           [&](detail::TuningEntries& m) { m.insert_or_assign(entry.key.id(), entry); });
  }

  /// Removes the entry of `key`, if there is one. Throws as store() does.
  void erase(const TuningKey& key) {
    update("remove a tuning result from", [&](detail::TuningEntries& m) { m.erase(key.id()); });
  }

  /// Writes the entries (all, or those of the factory named `factory`) to `out` as a
  /// database file of their own, for an application to ship; returns how many it wrote.
  /// Replaces `out` atomically. Throws kiln::Error where `out` cannot be written.
  std::size_t export_to(const std::filesystem::path& out, const std::string& factory = {}) const {
    detail::TuningEntries chosen;
    for (auto& entry : entries(factory)) {
      std::string id = entry.key.id();
      chosen.insert_or_assign(std::move(id), std::move(entry));
    }
    if (std::string problem = detail::replace_file(out, detail::dump_tuning_db(chosen));
        !problem.empty()) {
      throw Error("kiln: could not export the tuning database to " + out.string() + " (" + problem +
                  "); check the path, its free space and permissions");
    }
    return chosen.size();
  }

  /// Merges the entries of the database file `in` (one export_to() wrote, say) into this
  /// one; an imported entry replaces this database's entry of the same key. Returns how
  /// many entries `in` held. Atomic as store() is, and throws as store() does; also throws
  /// kiln::Error, naming `in` and what is wrong, where `in` cannot be read or is not a
  /// tuning database (it is left as it is).
  std::size_t import_from(const std::filesystem::path& in) {
    const auto read = detail::read_with_identity(in);
    const std::string from = "kiln: cannot import tuning results from " + in.string();
    if (read.error != 0) {
      throw Error(
          from + ": " +
          (read.error == EINVAL ? "it is not a regular file" : detail::errno_text(read.error)));
    }
    auto parsed = detail::parse_tuning_db(read.text);
    if (parsed.newer_version != 0) {
      throw Error(from + ": it has format version " + std::to_string(parsed.newer_version) +
                  ", written by a newer kiln; this kiln reads version " +
                  std::to_string(detail::tuning_db_format_version) + ". Use a newer kiln.");
    }
    if (!parsed.problem.empty()) {
      throw Error(from + ": it is not a kiln tuning database (" + parsed.problem + ")");
    }
    if (parsed.damaged > 0) {
      throw Error(from + ": " + std::to_string(parsed.damaged) +
                  " of its entries cannot be read (" + parsed.first_damage +
                  "); nothing was imported");
    }
    update("import tuning results into", [&](detail::TuningEntries& m) {
      for (const auto& [id, entry] : parsed.entries) m.insert_or_assign(id, entry);
    });
    return parsed.entries.size();
  }

 private:
  std::filesystem::path lock_file() const { return file_.string() + ".lock"; }

  static void warn(const std::string& message) {
    std::fwrite(message.data(), 1, message.size(), stderr);
    std::fflush(stderr);
  }

  /// Drops the parsed copy (an empty database, as for a missing file). Needs mutex_.
  void forget_locked() const {
    entries_.clear();
    seen_.reset();
    seen_whole_ = false;
    newer_version_ = 0;
    text_.clear();
  }

  /// Brings entries_ up to date with the file, where its identity changed since it was
  /// read. (A rename that reuses the inode, keeps the size and lands in the same mtime
  /// tick goes unseen until the next change; stores compare the bytes, so they never lose
  /// updates that way.) Needs mutex_. Never throws for the file's sake.
  void refresh_locked() const {
    if (in_memory()) return;
    struct ::stat st {};
    if (::stat(file_.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return forget_locked();
    } else if (seen_ && *seen_ == detail::identity_of(st)) {
      return;
    }
    if (std::string problem = load_locked(nullptr); !problem.empty() && !warned_unreadable_) {
      warned_unreadable_ = true;
      warn("kiln: cannot read the tuning database " + file_.string() + " (" + problem +
           "); kernels are tuned again until it is readable\n");
    }
  }

  /// Reads the file into entries_, setting a corrupt one aside (under `held`, the file's
  /// lock, or else taking it). Needs mutex_. Returns "" or why the file could not be read
  /// or set aside; entries_ is then empty.
  std::string load_locked(const detail::ExclusiveFileLock* held) const {
    auto read = detail::read_with_identity(file_);
    if (read.error == 0 && seen_whole_ && read.text == text_) {  // the same bytes: no parse
      seen_ = read.identity;
      return {};
    }
    forget_locked();
    if (read.error == ENOENT) return {};
    if (read.error == EINVAL) return "it is not a regular file";
    detail::ParsedTuningDb parsed;
    if (read.error == EFBIG) {  // set aside as corrupt, below
      parsed.problem = "larger than " + std::to_string(detail::max_tuning_db_bytes >> 20) +
                       " MiB, which no tuning database is";
    } else if (read.error != 0) {
      return detail::errno_text(read.error);
    } else {
      parsed = detail::parse_tuning_db(read.text);
    }
    if (parsed.newer_version != 0) {
      seen_ = read.identity;
      newer_version_ = parsed.newer_version;
      if (!warned_newer_) {
        warned_newer_ = true;
        warn("kiln: the tuning database " + file_.string() + " has format version " +
             std::to_string(newer_version_) + ", written by a newer kiln (this one reads " +
             std::to_string(detail::tuning_db_format_version) +
             "); kiln neither uses nor changes it. Use a newer kiln, or set KILN_TUNING_DB to "
             "another file.\n");
      }
      return {};
    }
    if (parsed.problem.empty() && parsed.damaged == 0) {
      if (!parsed.duplicates.empty()) {  // once per version of the file: it is read once
        std::string lines;
        for (const auto& d : parsed.duplicates) lines += "  " + d + "\n";
        warn("kiln: the tuning database " + file_.string() + " repeats itself:\n" + lines);
      }
      entries_ = std::move(parsed.entries);
      seen_ = read.identity;
      seen_whole_ = true;
      text_ = std::move(read.text);
      return {};
    }
    if (!held) {
      // Under the lock, read again: another process may have set it aside or replaced it.
      detail::ExclusiveFileLock lock;
      if (std::string problem = lock.acquire(lock_file()); !problem.empty()) {
        seen_ = read.identity;         // warn once per version of the file
        if (parsed.problem.empty()) {  // damaged entries only: use the good ones
          entries_ = std::move(parsed.entries);
          warn("kiln: the tuning database " + file_.string() + " has " +
               std::to_string(parsed.damaged) + " damaged entries (" + parsed.first_damage +
               "); kiln uses its " + std::to_string(entries_.size()) +
               " good ones but could not lock it to rewrite it (" + problem + ")\n");
          return {};
        }
        warn("kiln: the tuning database " + file_.string() + " is corrupt (" + parsed.problem +
             "); it could not be moved aside (" + problem + "), so kiln ignores it\n");
        return {};
      }
      return load_locked(&lock);
    }
    if (parsed.problem.empty()) {
      // Some entries are damaged: keep the others. The whole file goes aside for a person
      // to look at, and the good entries are written back in its place.
      entries_ = std::move(parsed.entries);
      seen_ = read.identity;
      std::string problem;
      const auto moved = detail::set_aside(file_, problem);
      std::string text = detail::dump_tuning_db(entries_);
      detail::FileIdentity written;
      if (moved.empty() || !(problem = detail::replace_file(file_, text, &written)).empty()) {
        warn("kiln: the tuning database " + file_.string() + " has " +
             std::to_string(parsed.damaged) + " damaged entries (" + parsed.first_damage +
             "); kiln uses its " + std::to_string(entries_.size()) +
             " good ones but could not rewrite it (" + problem + ")\n");
        return {};
      }
      seen_ = written;
      seen_whole_ = true;
      text_ = std::move(text);
      warn("kiln: the tuning database " + file_.string() + " had " +
           std::to_string(parsed.damaged) + " damaged entries (the first: " + parsed.first_damage +
           "); kept its " + std::to_string(entries_.size()) +
           " good ones and moved the original to " + moved.string() + "\n");
      return {};
    }
    std::string problem;
    const auto moved = detail::set_aside(file_, problem);
    if (moved.empty()) {
      seen_ = read.identity;  // find() reports it once, not on every call
      return "it is corrupt (" + parsed.problem + ") and could not be moved aside: " + problem;
    }
    warn("kiln: the tuning database " + file_.string() + " is corrupt (" + parsed.problem +
         "); moved it to " + moved.string() + " and starting empty\n");
    return {};
  }

  /// Applies `change` to the entries: in memory, or as a read-change-write of the file
  /// under its lock. `action` words the failure ("store a tuning result in").
  void update(const char* action, const std::function<void(detail::TuningEntries&)>& change) {
    std::lock_guard lock(mutex_);
    if (in_memory()) return change(entries_);
    const auto fail = [&](const std::string& problem) {
      return Error("kiln: could not " + std::string(action) + " the tuning database " +
                   file_.string() + " (" + problem +
                   "). The file is unchanged; check the free space and permissions there, or "
                   "set KILN_TUNING_DB to another file.");
    };
    if (std::string problem = detail::ensure_directory(file_.parent_path()); !problem.empty()) {
      throw fail(problem);
    }
    detail::ExclusiveFileLock file_lock;
    if (std::string problem = file_lock.acquire(lock_file()); !problem.empty()) throw fail(problem);
    // Read again under the lock whatever the file's identity says: an inode reused within
    // one clock tick could pass for the version read before, and lose others' updates.
    if (std::string problem = load_locked(&file_lock); !problem.empty()) throw fail(problem);
    if (newer_version_ != 0) {
      throw Error("kiln: could not " + std::string(action) + " the tuning database " +
                  file_.string() + ": it has format version " + std::to_string(newer_version_) +
                  ", written by a newer kiln, which this one does not change. Use a newer "
                  "kiln, or set KILN_TUNING_DB to another file.");
    }
    try {
      change(entries_);
      std::string text = detail::dump_tuning_db(entries_);
      detail::FileIdentity written;
      if (std::string problem = detail::replace_file(file_, text, &written); !problem.empty()) {
        throw fail(problem);
      }
      seen_ = written;
      seen_whole_ = true;
      text_ = std::move(text);
    } catch (...) {
      forget_locked();  // entries_ holds a change the file lacks: read the file next time
      throw;
    }
  }

  std::filesystem::path file_;
  mutable std::mutex mutex_;
  // The parsed copy of the file (guarded by mutex_).
  mutable detail::TuningEntries entries_;
  mutable std::optional<detail::FileIdentity> seen_;  // the version read; nullopt: none
  mutable bool seen_whole_ = false;                   // whether it was a database, now in entries_
  mutable std::string text_;                          // its bytes, where it was
  mutable std::int64_t newer_version_ = 0;            // the file's, where newer than ours
  mutable bool warned_newer_ = false;
  mutable bool warned_unreadable_ = false;
};

}  // namespace kiln::factory
