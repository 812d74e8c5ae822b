#pragma once
/// The persistent tuning database: what kernel factories learned by timing candidate
/// configs, kept in one JSON file (by default beside the kernel disk cache) so that later
/// runs, and the performance model, can use it.
///
/// Each entry is filed under its TuningKey (factory name and version, params, device name
/// and arch, driver and compiler versions) and records every candidate that was tried, not
/// only the winner. The format is in detail/tuning_db_format.hpp.
///
/// Several processes may share the file. Updates take an exclusive flock() on the file's
/// directory (which, unlike a lock file, nobody can delete under a writer), read what
/// changed since this process last looked, and append the change to a journal beside the
/// file, "<file>.journal"; once the journal has grown as large as the file, the next update
/// folds it into a new file renamed over the old one. A store costs the size of its entry,
/// amortized, not the size of the database, and every writer checks that what it wrote is
/// still there afterwards. Lookups keep a parsed copy and read only what changed. The file
/// and journal are read by detail/tuning_db_reader.hpp in one pass, straight into the
/// records (100,000 entries: about 0.5 s), and what it does not read itself by the general
/// reader of detail/tuning_db_format.hpp, with the same result.
///
/// The directory must be one that nobody else can write to, as the kernel cache's must:
/// owned by this user (or root) and not writable by its group or others. In any other
/// directory the database is not read or written (one warning says why and what to do) and
/// keeps this run's results in memory. The file and its journal are created mode 0600.
///
/// A file that is not a tuning database (garbage, cut short, wrong schema) is renamed to
/// "<file>.corrupt-<unix time>" with one warning on stderr, and the database starts empty:
/// losing tuning results costs only tuning time, so it never stops the program. A file of
/// a newer format version is neither used nor changed (stores throw).

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
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
#include "../detail/private_directory.hpp"
#include "../error.hpp"
#include "detail/tuning_db_file.hpp"
#include "detail/tuning_db_format.hpp"
#include "detail/tuning_db_reader.hpp"
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

  /// The entry stored under `key`, or nullopt. Costs two stat()s (the file and its
  /// journal) while they are unchanged. Never throws for a missing, unreadable or corrupt file.
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
    update("store a tuning result in", {entry.key.id()},
           [&](detail::TuningEntries& m) { m.insert_or_assign(entry.key.id(), entry); });
  }

  /// Removes the entry of `key`, if there is one. Throws as store() does.
  void erase(const TuningKey& key) {
    update("remove a tuning result from", {key.id()},
           [&](detail::TuningEntries& m) { m.erase(key.id()); });
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
    // Mode 0644 (less the umask): an export is meant to be shipped and read by others.
    if (std::string problem =
            kiln::detail::replace_file(AT_FDCWD, out.string(), {detail::dump_tuning_db(chosen)},
                                       {.mode = 0644, .fsync = true});
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
    auto parsed = detail::read_tuning_db(read.text);
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
    std::vector<std::string> ids;
    for (const auto& [id, entry] : parsed.entries) ids.push_back(id);
    update("import tuning results into", ids, [&](detail::TuningEntries& m) {
      for (const auto& [id, entry] : parsed.entries) m.insert_or_assign(id, entry);
    });
    return parsed.entries.size();
  }

 private:
  /// Whether the file's directory may be used: checked at the first use, and again by each
  /// update (see the top of this file).
  enum class Directory { unchecked, trusted, refused };

  /// The directory, opened and locked for one update.
  struct Locked {
    kiln::detail::UniqueFd dir;
    detail::DirectoryLock lock;
  };

  /// Where a journal smaller than the file stops being folded into it at once: below this
  /// size, appending is still cheaper than rewriting a small file.
  static constexpr std::uint64_t journal_min_bytes = 64 * 1024;

  std::filesystem::path journal() const { return file_.string() + ".journal"; }
  std::string name() const { return file_.filename().string(); }
  std::string journal_name() const { return name() + ".journal"; }

  static void warn(const std::string& message) {
    std::fwrite(message.data(), 1, message.size(), stderr);
    std::fflush(stderr);
  }

  /// Opens the file's directory and checks it; where it is not one to trust, refuses it for
  /// the rest of the run with one warning and gives an empty descriptor. Needs mutex_.
  kiln::detail::UniqueFd open_directory_locked() const {
    const std::filesystem::path dir = file_.parent_path();
    auto opened = kiln::detail::open_trusted_directory(
        dir, {.planted = "tuning records that choose the kernels kiln runs",
              .elsewhere = "set KILN_TUNING_DB to a file in a private directory of yours (or "
                           "to 0 to keep tuning results in memory only)"});
    if (!opened.fd) {
      directory_ = Directory::refused;
      warn("kiln: not using the tuning database " + file_.string() + ": its directory " +
           dir.string() + " is unsafe or unusable (" + opened.problem + "); " + opened.advice +
           ". This run keeps its tuning results in memory.\n");
    }
    return std::move(opened.fd);
  }

  /// Whether the file may be used: false for a database in memory only or in a refused
  /// directory. Needs mutex_.
  bool usable_locked() const {
    if (in_memory() || directory_ == Directory::refused) return false;
    if (directory_ == Directory::unchecked) {
      if (!open_directory_locked()) return false;
      directory_ = Directory::trusted;
    }
    return true;
  }

  /// Opens the directory (checked again) into `out` and locks it. Returns "" or what failed;
  /// directory_ says whether it was refused. Needs mutex_.
  std::string lock_locked(Locked& out) const {
    out.dir = open_directory_locked();
    if (!out.dir) return "its directory is not used";
    return out.lock.acquire(out.dir.get(), file_.parent_path());
  }

  /// Drops the parsed copy (an empty database, as for a missing file). Needs mutex_.
  void forget_locked() const {
    entries_.clear();
    loaded_ = false;
    seen_.reset();
    snapshot_bytes_ = 0;
    journal_seen_.reset();
    journal_offset_ = 0;
    journal_damaged_ = false;
    newer_version_ = 0;
  }

  /// Brings entries_ up to date with the files, where they changed since they were read.
  /// Needs mutex_. Never throws for the files' sake.
  void refresh_locked() const {
    if (!usable_locked()) return;
    if (std::string problem = sync_locked(nullptr); !problem.empty() && !warned_unreadable_) {
      warned_unreadable_ = true;
      warn("kiln: cannot read the tuning database " + file_.string() + " (" + problem +
           "); kernels are tuned again until it is readable\n");
    }
  }

  /// Reads the file again where its identity changed (a rename over it changes the inode),
  /// else only the journal's new lines. (A file renamed in whose inode, size and mtime tick
  /// all equal the one read would go unseen; every rename over the file follows a journal
  /// as large as the file, so its size differs.) `held`: the lock, where taken. Returns ""
  /// or why the files could not be read. Needs mutex_.
  std::string sync_locked(const Locked* held) const {
    struct ::stat st {};
    std::optional<detail::FileIdentity> now;
    if (::stat(file_.c_str(), &st) == 0) {
      now = detail::identity_of(st);
    } else if (errno != ENOENT && errno != ENOTDIR) {
      return load_locked(held);  // it says what is wrong
    }
    if (!loaded_ || now != seen_) return load_locked(held);
    if (!seen_ || newer_version_ != 0) return {};
    return read_journal_locked(held);
  }

  /// Applies the journal's lines not read yet to entries_ (all of them, where the journal
  /// is another file than the one read before). Needs mutex_.
  std::string read_journal_locked(const Locked* held) const {
    struct ::stat st {};
    if (::stat(journal().c_str(), &st) != 0) {
      if (errno != ENOENT && errno != ENOTDIR) {
        return "its journal " + journal().string() + ": " + detail::errno_text(errno);
      }
      // Removed without a new file: by a person or a cleaner. Read the file alone again.
      return journal_seen_ ? load_locked(held) : std::string();
    }
    const bool same =
        journal_seen_ && journal_seen_->dev == st.st_dev && journal_seen_->ino == st.st_ino;
    if (same && static_cast<std::uint64_t>(st.st_size) == journal_offset_) return {};
    if (journal_seen_ && (!same || static_cast<std::uint64_t>(st.st_size) < journal_offset_)) {
      return load_locked(held);  // another journal, or one cut back: read everything again
    }
    const std::uint64_t from = journal_seen_ ? journal_offset_ : 0;
    auto read = detail::read_lines_from(journal(), from);
    if (read.error == ENOENT) return journal_seen_ ? load_locked(held) : std::string();
    if (read.error != 0) {
      return "its journal " + journal().string() + ": " +
             (read.error == EINVAL ? std::string("not a regular file")
                                   : detail::errno_text(read.error));
    }
    if (journal_seen_ &&
        (read.identity.dev != journal_seen_->dev || read.identity.ino != journal_seen_->ino)) {
      return load_locked(held);  // replaced between the stat() and the open()
    }
    detail::JournalDamage damage;
    detail::apply_journal_fast(read.text, entries_, damage);
    journal_offset_ = from + read.text.size();
    journal_seen_ = read.identity;
    if (damage.damaged > 0) {
      journal_damaged_ = true;  // the next update rewrites the file without them
      warn("kiln: the tuning database journal " + journal().string() + " has " +
           std::to_string(damage.damaged) + " damaged lines (the first: " + damage.first +
           "); kiln skips them\n");
    }
    return {};
  }

  /// Reads the file and then its whole journal into entries_, setting a corrupt file aside
  /// (under `held`, the lock, or else taking it). Needs mutex_. Returns "" or why the file
  /// could not be read or set aside; entries_ is then empty.
  std::string load_locked(const Locked* held) const {
    forget_locked();
    auto read = detail::read_with_identity(file_);
    if (read.error == ENOENT) {  // a journal without its file changes nothing: it is not read
      loaded_ = true;
      return {};
    }
    if (read.error == EINVAL) return "it is not a regular file";
    detail::ParsedTuningDb parsed;
    if (read.error == EFBIG) {  // set aside as corrupt, below
      parsed.problem = "larger than " + std::to_string(detail::max_tuning_db_bytes >> 20) +
                       " MiB, which no tuning database is";
    } else if (read.error != 0) {
      return detail::errno_text(read.error);
    } else {
      parsed = detail::read_tuning_db(read.text);
    }
    if (parsed.newer_version != 0) {
      loaded_ = true;
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
      loaded_ = true;
      seen_ = read.identity;
      snapshot_bytes_ = read.text.size();
      return read_journal_locked(held);
    }
    if (!held) {
      // Under the lock, read again: another process may have set it aside or replaced it.
      Locked lock;
      if (std::string problem = lock_locked(lock); !problem.empty()) {
        loaded_ = true;
        seen_ = read.identity;  // warn once per version of the file
        if (directory_ == Directory::refused) return {};
        if (parsed.problem.empty()) {  // damaged entries only: use the good ones
          entries_ = std::move(parsed.entries);
          warn("kiln: the tuning database " + file_.string() + " has " +
               std::to_string(parsed.damaged) + " damaged entries (" + parsed.first_damage +
               "); kiln uses its " + std::to_string(entries_.size()) +
               " good ones but could not lock it to rewrite it (" + problem + ")\n");
          return read_journal_locked(nullptr);
        }
        warn("kiln: the tuning database " + file_.string() + " is corrupt (" + parsed.problem +
             "); it could not be moved aside (" + problem + "), so kiln ignores it\n");
        return {};
      }
      return load_locked(&lock);
    }
    std::string problem;
    const auto moved = detail::set_aside(file_, problem);
    loaded_ = true;
    if (parsed.problem.empty()) {
      // Some entries are damaged: keep the others. The whole file goes aside for a person
      // to look at, and the good entries (and the journal's) are written back in its place.
      entries_ = std::move(parsed.entries);
      if (moved.empty()) {
        seen_ = read.identity;
        snapshot_bytes_ = read.text.size();
      }
      if (std::string journal_problem = read_journal_locked(held); !journal_problem.empty()) {
        return journal_problem;
      }
      bool raced = false;
      if (moved.empty() || !(problem = rewrite_locked(*held, raced)).empty()) {
        warn("kiln: the tuning database " + file_.string() + " has " +
             std::to_string(parsed.damaged) + " damaged entries (" + parsed.first_damage +
             "); kiln uses its " + std::to_string(entries_.size()) +
             " good ones but could not rewrite it (" + problem + ")\n");
        return {};
      }
      warn("kiln: the tuning database " + file_.string() + " had " +
           std::to_string(parsed.damaged) + " damaged entries (the first: " + parsed.first_damage +
           "); kept its " + std::to_string(entries_.size()) +
           " good ones and moved the original to " + moved.string() + "\n");
      return {};
    }
    if (moved.empty()) {
      seen_ = read.identity;  // find() reports it once, not on every call
      return "it is corrupt (" + parsed.problem + ") and could not be moved aside: " + problem;
    }
    warn("kiln: the tuning database " + file_.string() + " is corrupt (" + parsed.problem +
         "); moved it to " + moved.string() + " and starting empty\n");
    return {};
  }

  /// Writes entries_ as the new file and removes the journal it now holds. Needs mutex_ and
  /// the lock. Returns "" or what failed (`raced`: someone who does not lock replaced it).
  std::string rewrite_locked(const Locked& held, bool& raced) const {
    const std::string text = detail::dump_tuning_db(entries_);
    detail::FileIdentity written;
    if (std::string problem = detail::replace_file(held.dir.get(), name(), text, written, raced);
        !problem.empty()) {
      return problem;
    }
    seen_ = written;
    snapshot_bytes_ = text.size();
    // Where the journal cannot be removed, it stays: read again over the new file, it
    // changes nothing.
    if (::unlinkat(held.dir.get(), journal_name().c_str(), 0) == 0 || errno == ENOENT) {
      journal_seen_.reset();
      journal_offset_ = 0;
      journal_damaged_ = false;
    }
    return {};
  }

  /// Writes the change of the entries `ids` (already in entries_): appended to the journal,
  /// or, where the journal would outgrow the file, the whole file rewritten. Needs mutex_
  /// and the lock. Returns "" or what failed (`raced` as for rewrite_locked()).
  std::string write_locked(const Locked& held, const std::vector<std::string>& ids,
                           bool& raced) const {
    std::string lines;
    for (const auto& id : ids) {
      const auto it = entries_.find(id);
      lines += it != entries_.end() ? detail::journal_put_line(it->second)
                                    : detail::journal_erase_line(id);
    }
    // The file is rewritten once the journal has grown as large as it: each byte stored is
    // then written about three times, however large the database.
    if (!seen_ || journal_damaged_ ||
        journal_offset_ + lines.size() > std::max(snapshot_bytes_, journal_min_bytes)) {
      return rewrite_locked(held, raced);
    }
    detail::FileIdentity written;
    if (std::string problem = detail::append_lines(held.dir.get(), journal_name(), journal_offset_,
                                                   lines, written, raced);
        !problem.empty()) {
      return problem;
    }
    journal_seen_ = written;
    journal_offset_ += lines.size();
    return {};
  }

  /// Applies `change` (which changes the entries `ids`) to the entries: in memory, or under
  /// the directory's lock to what the files hold, then written. `action` words the failure
  /// ("store a tuning result in").
  void update(const char* action, const std::vector<std::string>& ids,
              const std::function<void(detail::TuningEntries&)>& change) {
    std::lock_guard lock(mutex_);
    if (!usable_locked()) return change(entries_);
    const auto fail = [&](const std::string& problem) {
      return Error("kiln: could not " + std::string(action) + " the tuning database " +
                   file_.string() + " (" + problem +
                   "). The file is unchanged; check the free space and permissions there, or "
                   "set KILN_TUNING_DB to another file.");
    };
    // A write that someone who takes no lock undid at once (removed or replaced) is made
    // again, from what the files then hold.
    constexpr int attempts = 3;
    for (int attempt = 1;; ++attempt) {
      Locked held;
      if (std::string problem = lock_locked(held); !problem.empty()) {
        if (directory_ == Directory::refused) return change(entries_);
        throw fail(problem);
      }
      if (std::string problem = sync_locked(&held); !problem.empty()) throw fail(problem);
      if (newer_version_ != 0) {
        throw Error("kiln: could not " + std::string(action) + " the tuning database " +
                    file_.string() + ": it has format version " + std::to_string(newer_version_) +
                    ", written by a newer kiln, which this one does not change. Use a newer "
                    "kiln, or set KILN_TUNING_DB to another file.");
      }
      bool raced = false;
      std::string problem;
      try {
        change(entries_);
        problem = write_locked(held, ids, raced);
      } catch (...) {
        forget_locked();  // entries_ holds a change the files lack: read them next time
        throw;
      }
      if (problem.empty()) return;
      forget_locked();
      if (!raced || attempt == attempts) throw fail(problem);
    }
  }

  std::filesystem::path file_;
  mutable std::mutex mutex_;
  // The parsed copy of the files (guarded by mutex_).
  mutable detail::TuningEntries entries_;
  mutable Directory directory_ = Directory::unchecked;
  mutable bool loaded_ = false;                               // whether entries_ holds the files
  mutable std::optional<detail::FileIdentity> seen_;          // the file read; nullopt: none
  mutable std::uint64_t snapshot_bytes_ = 0;                  // its size
  mutable std::optional<detail::FileIdentity> journal_seen_;  // the journal read; nullopt: none
  mutable std::uint64_t journal_offset_ = 0;  // how much of it was read (whole lines)
  mutable bool journal_damaged_ = false;      // it has lines that could not be read
  mutable std::int64_t newer_version_ = 0;    // the file's, where newer than ours
  mutable bool warned_newer_ = false;
  mutable bool warned_unreadable_ = false;
};

}  // namespace kiln::factory
