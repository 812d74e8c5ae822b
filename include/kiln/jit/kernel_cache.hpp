#pragma once
/// The kernel binary cache: compiled programs kept in memory and on disk.
///
///   auto& cache = kiln::jit::KernelCache::global();
///   std::shared_ptr<const Binary> bin = cache.get(program, options);
///
/// get() looks in memory, then on disk, then compiles. Many threads asking for one
/// program at once compile it once; different programs compile in parallel (no lock is
/// held across a compile). The disk key covers every file compiled: kiln resolves each
/// #include itself and hands NVRTC the files in memory (dependencies.hpp); a program with
/// an include kiln cannot resolve (`#include MACRO`) is kept out of the disk cache, with
/// one line on stderr.

#include <atomic>
#include <cstdio>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../detail/environment.hpp"
#include "cache_key.hpp"
#include "compiler.hpp"
#include "dependencies.hpp"
#include "disk_cache.hpp"
#include "target_resolver.hpp"

namespace kiln::jit {

/// Counts since the cache was made.
struct KernelCacheStats {
  std::uint64_t memory_hits = 0;  ///< get() answered from memory
  std::uint64_t disk_hits = 0;    ///< get() answered from disk
  std::uint64_t compiles = 0;     ///< programs compiled (successfully or not)
  std::uint64_t compile_failures = 0;
  double compile_ms = 0;  ///< time spent compiling
  DiskCacheStats disk;
};

/// One program to compile, for compile_all().
struct CompileRequest {
  Program program;
  Options options;
};

/// The result of one request of compile_all(): a binary, or the exception it raised.
struct CompileOutcome {
  std::shared_ptr<const Binary> binary;
  std::exception_ptr error;
};

class KernelCache {
 public:
  /// A cache whose disk part follows `disk` (see DiskCacheConfig::from_environment()).
  explicit KernelCache(DiskCacheConfig disk) : disk_(std::move(disk)) {}

  /// The process-wide cache, configured from the environment on first use.
  static KernelCache& global() {
    static KernelCache cache(DiskCacheConfig::from_environment());
    return cache;
  }

  /// The binary of `program` compiled with `options` (an empty target means
  /// default_target(): the current device's where kiln/rt.hpp is included, an error
  /// otherwise). Throws CompileError when it does not compile; a failed compile is not
  /// remembered, so a later call tries again.
  std::shared_ptr<const Binary> get(const Program& program, const Options& options) {
    if (options.target.empty()) {
      Options resolved = options;
      resolved.target = default_target();
      return get(program, resolved);
    }
    const CacheKey request = request_key(program, options);

    std::promise<std::shared_ptr<const Binary>> promise;
    std::shared_future<std::shared_ptr<const Binary>> future;
    bool compile_here = false;
    {
      std::lock_guard lock(mutex_);
      auto it = memory_.find(request);
      if (it != memory_.end()) {
        future = it->second;
      } else {
        future = promise.get_future().share();
        memory_.emplace(request, future);
        compile_here = true;
      }
    }
    if (!compile_here) {
      memory_hits_.fetch_add(1, std::memory_order_relaxed);
      return future.get();
    }
    try {
      options.validate();
      promise.set_value(load_or_compile(program, options));
    } catch (...) {
      promise.set_exception(std::current_exception());
      std::lock_guard lock(mutex_);
      memory_.erase(request);
    }
    return future.get();
  }

  /// Compiles a batch on `jobs` threads (0: KILN_JOBS, else the number of cores). Each
  /// outcome holds the binary or the exception of its request, in request order.
  std::vector<CompileOutcome> compile_all(const std::vector<CompileRequest>& requests,
                                          int jobs = 0) {
    std::vector<CompileOutcome> out(requests.size());
    if (jobs <= 0) jobs = default_jobs();
    const size_t threads = std::min(requests.size(), size_t(jobs));
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < requests.size();) {
        try {
          out[i].binary = get(requests[i].program, requests[i].options);
        } catch (...) {
          out[i].error = std::current_exception();
        }
      }
    };
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    return out;
  }

  /// The content key of a compile: kiln's cache schema version, the compiler's name and
  /// identity (for NVRTC, its library file: resolved path with the full version, size and
  /// time), the target, every flag, and the program as it is compiled: its name, name
  /// expressions, source and in-memory headers, with every file it includes from disk
  /// resolved by kiln and added by path and bytes (resolve_includes(); toolkit headers
  /// aside, which the compiler's identity covers). `options.target` must be set. For a
  /// program with an include kiln cannot resolve (`#include MACRO`) the key cannot cover
  /// the file the compiler finds, so get() keeps such programs out of the disk cache.
  CacheKey content_key(const Program& program, const Options& options) const {
    return prepare(program, options).key;
  }

  KernelCacheStats stats() const {
    KernelCacheStats s;
    s.memory_hits = memory_hits_.load();
    s.disk_hits = disk_hits_.load();
    s.compiles = compiles_.load();
    s.compile_failures = compile_failures_.load();
    {
      std::lock_guard lock(stats_mutex_);
      s.compile_ms = compile_ms_;
    }
    s.disk = disk_.stats();
    return s;
  }

  DiskCache& disk() { return disk_; }

  /// Forgets every binary held in memory (the disk cache is kept).
  void clear_memory() {
    std::lock_guard lock(mutex_);
    memory_.clear();
  }

 private:
  static int default_jobs() {
    if (const auto v =
            kiln::detail::env_count("KILN_JOBS", 1, 1024, "the number of compile threads")) {
      return int(*v);
    }
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : int(n);
  }

  static void add_program(KeyBuilder& k, const Program& program) {
    k.add("name", program.name);
    k.add("source", program.source);
    for (const auto& h : program.headers) {
      k.add("header_name", h.name);
      k.add("header", h.contents);
    }
    for (const auto& e : program.name_expressions) k.add("name_expression", e);
  }

  // The memory cache's key: everything in the request, but not the included files' bytes
  // (within one process kiln assumes they do not change), so a hit costs one hash.
  static CacheKey request_key(const Program& program, const Options& o) {
    KeyBuilder k;
    k.add("target", o.target);
    k.add("std", o.cxx_standard);
    k.add("flags",
          std::int64_t(o.line_info) | std::int64_t(o.debug) << 1 | std::int64_t(o.fast_math) << 2);
    k.add("max_registers", o.max_registers);
    for (const auto& [n, v] : o.defines) {
      k.add("define", n);
      k.add("value", v);
    }
    for (const auto& d : o.include_dirs) k.add("include_dir", d);
    for (const auto& e : o.extra) k.add("extra", e);
    add_program(k, program);
    return k.finish();
  }

  /// A program ready to compile: its includes resolved, and its disk cache key.
  struct Prepared {
    ResolvedProgram resolved;
    CacheKey key;
  };

  static Prepared prepare(const Program& program, const Options& options) {
    const Compiler& compiler = compiler_for(options.target);
    const auto flags = compiler.flags(options);
    std::vector<std::string> dirs, toolkit;
    for (const auto& f : flags) {
      if (f.rfind("-I", 0) == 0) dirs.push_back(f.substr(2));
    }
    // The toolkit's own headers are covered by the compiler's identity; reading them
    // would cost more than the compile.
    if (auto cuda = find_cuda_include_dir(nvrtc_library_path()); !cuda.empty()) {
      toolkit.push_back(cuda.string());
    }
    Prepared p{resolve_includes(program, dirs, toolkit), {}};
    KeyBuilder k;
    k.add("schema", cache_schema_version);
    k.add("compiler", compiler.name());
    k.add("compiler_identity", compiler.identity());
    k.add("target", options.target);
    for (const auto& f : flags) k.add("flag", f);
    add_program(k, p.resolved.program);
    p.key = k.finish();
    return p;
  }

  std::shared_ptr<const Binary> load_or_compile(const Program& program, const Options& options) {
    const Compiler& compiler = compiler_for(options.target);
    const Prepared prepared = prepare(program, options);
    const bool cacheable = prepared.resolved.unresolved.empty();
    if (!cacheable) {
      notice_uncached(program.name, prepared.resolved.unresolved);
    } else if (auto bytes = disk_.load(prepared.key)) {
      try {
        auto b = std::make_shared<const Binary>(Binary::deserialize(*bytes));
        disk_hits_.fetch_add(1, std::memory_order_relaxed);
        return b;
      } catch (const Error&) {
        // A well-formed file with a malformed payload: compile again and overwrite it.
      }
    }
    compiles_.fetch_add(1, std::memory_order_relaxed);
    Binary b;
    try {
      // The compiler gets exactly what the key covers where it takes every file in
      // memory; otherwise (an unresolved include, or hipRTC) it searches for files itself.
      b = compiler.compile(
          cacheable && compiler.compiles_in_memory() ? prepared.resolved.program : program,
          options);
    } catch (...) {
      compile_failures_.fetch_add(1, std::memory_order_relaxed);
      throw;
    }
    {
      std::lock_guard lock(stats_mutex_);
      compile_ms_ += b.compile_ms;
    }
    if (cacheable) disk_.store(prepared.key, b.serialize());
    return std::make_shared<const Binary>(std::move(b));
  }

  /// Says once per program name that `name` is kept out of the disk cache, and why.
  void notice_uncached(const std::string& name, const std::string& why) {
    {
      std::lock_guard lock(stats_mutex_);
      if (!uncached_noticed_.insert(name).second) return;
    }
    const std::string line = "kiln: " + name +
                             " is not kept in the disk cache (it is compiled again in each "
                             "process): " +
                             why +
                             ", so kiln cannot tell which file the compiler reads. Write the "
                             "file name in the #include, or pass the file in Program::headers, "
                             "to cache it.\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  DiskCache disk_;
  mutable std::mutex mutex_;
  std::unordered_map<CacheKey, std::shared_future<std::shared_ptr<const Binary>>> memory_;
  std::atomic<std::uint64_t> memory_hits_{0}, disk_hits_{0}, compiles_{0}, compile_failures_{0};
  mutable std::mutex stats_mutex_;
  double compile_ms_ = 0;
  std::set<std::string> uncached_noticed_;  // guarded by stats_mutex_
};

}  // namespace kiln::jit
