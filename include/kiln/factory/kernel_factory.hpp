#pragma once
/// KernelFactory<Params, Config>: given a problem (Params) and a device, a ready kernel
/// compiled for the best Config. A factory says which configs exist, what header each
/// needs and how each launches; get() does the rest: validate, look the problem up in the
/// tuning database, else pick a config by the tuning policy (heuristic, model + timing, or
/// timing everything), compile through the kernel cache, load, memoize.
///
/// Most factories are made from a description (factory/factory.hpp, kiln::factory::Factory);
/// subclassing is for those who want every hook. docs/factories.md builds one step by step.
///
///   struct MyFactory : kiln::factory::KernelFactory<MyParams, MyConfig> {
///     MyFactory() : KernelFactory("my_kernel", 1, kiln::jit::program_from_file("my.cu")) {}
///     std::vector<MyConfig> configs(const MyParams&,
///                                   const kiln::rt::DeviceProperties&) const override;
///     kiln::gen::Spec spec(const MyParams&, const MyConfig&,
///                          const kiln::rt::DeviceProperties&) const override;
///     kiln::rt::LaunchConfig launch_config(const MyParams&, const MyConfig&,
///                                          const kiln::rt::DeviceProperties&) const override;
///   };
///   MyFactory f;
///   f(stream, params, in, out);           // get (tuning on these arguments) and launch
///   f.get(params, device)(stream, in, out);  // or get, then launch

#include <algorithm>
#include <cstdio>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "../gen/spec.hpp"
#include "../jit/kernel_cache.hpp"
#include "../rt/device.hpp"
#include "../rt/launch.hpp"
#include "../rt/module.hpp"
#include "detail/argument_snapshot.hpp"
#include "detail/factory_support.hpp"
#include "detail/memo.hpp"
#include "detail/memo_key.hpp"
#include "detail/model_cache.hpp"
#include "device_features.hpp"
#include "gen_json.hpp"
#include "kernel.hpp"
#include "tune_policy.hpp"
#include "tuner.hpp"
#include "tuning_db.hpp"
#include "tuning_record.hpp"

namespace kiln::factory {

/// Counts since the factory was made.
struct FactoryStats {
  std::uint64_t hits = 0;     ///< get() answered from the memo
  std::uint64_t builds = 0;   ///< kernels made (a config chosen, compiled and loaded)
  std::uint64_t tunings = 0;  ///< times candidates were timed
  std::uint64_t timed = 0;    ///< candidates timed, over all tunings
  std::uint64_t skipped = 0;  ///< candidates that failed to compile, fit or run
};

template <class Params, class Config>
class KernelFactory {
 public:
  using ParamsType = Params;
  using ConfigType = Config;
  using KernelType = Kernel<Params, Config>;
  /// Runs a kernel once on a stream, on buffers made for timing (see tuning_run()).
  using TuningRun = std::function<void(const KernelType&, rt::StreamRef)>;

  /// Parameters:
  ///   name     the kernel family's name; the first part of every kernel name
  ///   version  bump it when the kernel source or the configs change, so that tuning
  ///            results of the old kernel are not used for the new one
  ///   program  the kernel source; it includes "spec.hpp", the header spec() describes
  KernelFactory(std::string name, int version, jit::Program program)
      : name_(std::move(name)),
        version_(version),
        program_(std::move(program)),
        tune_(TuneOptions::from_environment()) {
    if (!gen::is_identifier(name_)) {
      throw Error("kiln: a kernel factory's name must be a C++ identifier, not '" + name_ + "'");
    }
  }
  KernelFactory(const KernelFactory&) = delete;
  KernelFactory& operator=(const KernelFactory&) = delete;
  virtual ~KernelFactory() = default;

  // ---- What a factory defines ----

  /// Throws kiln::Error when `params` are not supported, saying what is.
  virtual void validate(const Params&, const rt::DeviceProperties&) const {}
  /// The candidate configs for `params` on `device` (at least one).
  virtual std::vector<Config> configs(const Params& params,
                                      const rt::DeviceProperties& device) const = 0;
  /// The config used under KILN_TUNE=off (default: the first candidate).
  virtual Config heuristic(const Params&, const std::vector<Config>& candidates,
                           const rt::DeviceProperties&) const {
    return candidates.front();
  }
  /// The header the kernel source includes as "spec.hpp". The factory adds the macro
  /// KILN_KERNEL_NAME (kernel_name()), which the source uses to name its entry point.
  virtual gen::Spec spec(const Params&, const Config&, const rt::DeviceProperties&) const = 0;
  /// Grid, block and dynamic shared memory of a launch (the stream is given per launch).
  virtual rt::LaunchConfig launch_config(const Params&, const Config&,
                                         const rt::DeviceProperties&) const = 0;
  /// Compile options; by default the device's target and nothing else.
  virtual jit::Options options(const Params&, const Config&,
                               const rt::DeviceProperties& device) const {
    jit::Options o;
    o.target = device.arch;
    return o;
  }
  /// The kernel's name with its specialization: by default the factory's name, then the
  /// params' values, then the config's (`softmax__f16_8192__1_256_8`). Must be an identifier.
  virtual std::string kernel_name(const Params& p, const Config& c) const {
    return name_ + "__" + detail::name_part(nlohmann::json(p)) + "__" +
           detail::name_part(nlohmann::json(c));
  }
  /// The kernel source a config compiles (default: the factory's program). A factory whose
  /// configs use different kernels (a GEMM's sm_80 and sm_90 paths) returns each its own;
  /// the kernel name must tell them apart.
  virtual const jit::Program& program_for(const Params&, const Config&) const { return program_; }
  /// Bytes one launch moves and FLOPs it does (0: unknown), for the profiler's roofline.
  virtual double bytes(const Params&) const { return 0; }
  virtual double flops(const Params&) const { return 0; }
  /// Makes buffers for timing candidates on `device`, and returns a call that runs a
  /// candidate once on them. Called once per tuning; the buffers live as long as the call.
  /// The default makes none (an empty TuningRun): candidates are then timed on the
  /// arguments of the call `factory(stream, params, args...)` that first asks for the
  /// kernel, which are saved first and restored after (see detail/argument_snapshot.hpp);
  /// get() without arguments then uses the heuristic until such a call tunes the problem.
  virtual TuningRun tuning_run(const Params&, const rt::Device&) const { return {}; }

  // ---- What users call ----

  /// The kernel for `params` on `device`, made on first use and memoized: a hit costs a
  /// hash of the Params and a shared lock. Many threads asking for one key at once make it
  /// once. Throws kiln::Error for unsupported params (validate()), CompileError, or an Error
  /// listing every candidate's failure when none works.
  const KernelType& get(const Params& params, const rt::Device& device = rt::Device::current()) {
    const Key key{device.ordinal(), params};
    if (const KernelType* k = memo_.find(key)) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return *k;
    }
    return memo_.get(key, [&] { return build(params, device, std::nullopt, nullptr); });
  }

  /// Gets the kernel for `params` on the stream's device and launches it on `stream` with
  /// `args`. The first call for a problem that needs tuning times the candidates on these
  /// arguments (when the factory has no tuning_run of its own), saving the buffers and
  /// writable tensor views among them first and restoring them after; it waits for
  /// `stream` first. Later calls cost what get() and a launch cost.
  template <class... Args>
  void operator()(rt::StreamRef stream, const Params& params, const Args&... args) {
    const rt::Device device =
        stream.device >= 0 ? rt::Device(stream.device) : rt::Device::current();
    const Key key{device.ordinal(), params};
    bool replace = false;  // the memo's kernel was chosen untimed, for lack of arguments
    if (const KernelType* k = memo_.find(key)) {
      if (!has_provisional_.load(std::memory_order_relaxed) || !take_provisional(key)) {
        hits_.fetch_add(1, std::memory_order_relaxed);
        (*k)(stream, args...);
        return;
      }
      replace = true;
    }
    detail::ArgumentSnapshot saved(device);
    const TuningRun on_args = [&](const KernelType& k, rt::StreamRef s) {
      if (!saved.taken()) {
        sync_stream(stream, device);
        saved.take(args...);
      }
      k(s, args...);
    };
    const KernelType& k = memo_.get(
        key, [&] { return build(params, device, std::nullopt, &on_args); }, replace);
    if (saved.taken()) saved.restore();
    k(stream, args...);
  }

  /// Chooses the config for `params` on `device` by `policy` now, even where the database
  /// or the memo has one (the database entry is replaced): to collect tuning records, or to
  /// tune again after a driver update. Returns the new kernel; kernels returned earlier
  /// stay valid.
  const KernelType& tune(const Params& params, const rt::Device& device, TunePolicy policy) {
    return memo_.get(
        Key{device.ordinal(), params}, [&] { return build(params, device, policy, nullptr); },
        true);
  }

  /// The candidate configs of `params` after validate(): what tuning chooses from.
  std::vector<Config> candidates(const Params& params, const rt::DeviceProperties& device) const {
    validate(params, device);
    std::vector<Config> list = configs(params, device);
    if (list.empty()) {
      throw Error("kiln: factory " + name_ + " has no config for params " +
                  nlohmann::json(params).dump() + " on " + device.name);
    }
    return list;
  }

  /// What compiling `config` for `params` takes: the source with its generated "spec.hpp",
  /// and the options. Needs no GPU: `device` may describe one that is not here.
  jit::CompileRequest compile_request(const Params& p, const Config& c,
                                      const rt::DeviceProperties& device) const {
    gen::Spec s = spec(p, c, device);
    s.kernel_name(kernel_name(p, c));
    jit::Program program = program_for(p, c);
    program.headers.push_back({"spec.hpp", s.header()});
    return {std::move(program), options(p, c, device)};
  }

  /// One config built by build_all(): its kernel, or why there is none.
  struct Built {
    std::shared_ptr<const KernelType> kernel;         ///< null when it failed
    CandidateStatus status = CandidateStatus::timed;  ///< compile_error or resources on failure
    std::string reason;
  };
  /// Every config in `configs` compiled (in parallel, through the kernel cache) and loaded
  /// on `device`, untimed and not memoized: for sweeps, tests and tools. A config that does
  /// not compile, or whose launch would not fit the device, says why instead of throwing.
  std::vector<Built> build_all(const Params& p, const std::vector<Config>& configs,
                               const rt::Device& device, Selection how = Selection::full) {
    std::vector<Built> out(configs.size());
    std::vector<jit::CompileRequest> requests;
    std::vector<std::size_t> requested;  // index into configs of each request
    for (std::size_t i = 0; i < configs.size(); ++i) {
      try {
        requests.push_back(compile_request(p, configs[i], device.properties()));
        requested.push_back(i);
      } catch (const std::exception& e) {  // spec() or kernel_name() rejected the config
        out[i].status = CandidateStatus::compile_error;
        out[i].reason = e.what();
      }
    }
    auto compiled = jit::KernelCache::global().compile_all(requests);
    std::vector<jit::CompileOutcome> outcomes(configs.size());
    for (std::size_t j = 0; j < requested.size(); ++j)
      outcomes[requested[j]] = std::move(compiled[j]);
    for (std::size_t i = 0; i < configs.size(); ++i) {
      if (out[i].status != CandidateStatus::timed) continue;
      if (outcomes[i].error) {
        out[i].status = CandidateStatus::compile_error;
        out[i].reason = describe(outcomes[i].error);
        continue;
      }
      try {
        out[i].kernel = load(p, configs[i], device, outcomes[i].binary, how);
      } catch (const std::exception& e) {
        out[i].status = CandidateStatus::resources;
        out[i].reason = e.what();
      }
    }
    return out;
  }

  const std::string& name() const { return name_; }
  int version() const { return version_; }
  const jit::Program& program() const { return program_; }
  TuneOptions tune_options() const {
    std::lock_guard lock(settings_mutex_);
    return tune_;
  }
  /// Replaces the tuning settings (by default from KILN_TUNE and KILN_TUNE_TOP_K).
  void set_tune_options(const TuneOptions& o) {
    if (o.top_k < 1) throw Error("kiln: TuneOptions::top_k must be at least 1");
    prof::validate(o.stop);
    std::lock_guard lock(settings_mutex_);
    tune_ = o;
  }
  /// The tuning database to read and write (default: TuningDatabase::global()).
  void set_database(TuningDatabase* db) {
    std::lock_guard lock(settings_mutex_);
    db_ = db;
  }
  TuningDatabase& database() const {
    std::lock_guard lock(settings_mutex_);
    return db_ ? *db_ : TuningDatabase::global();
  }
  /// The database key of `params` on `device`.
  TuningKey tuning_key(const Params& params, const rt::Device& device) const {
    const std::string& arch = device.arch();
    const jit::Compiler& compiler = jit::compiler_for(arch);
    return TuningKey{name_,
                     version_,
                     nlohmann::json(params),
                     device.properties().name,
                     arch,
                     rt::driver().driver_version,
                     compiler.name() + " " + compiler.version()};
  }
  FactoryStats stats() const {
    std::lock_guard lock(stats_mutex_);
    FactoryStats s = stats_;
    s.hits = hits_.load();
    return s;
  }

 private:
  using Key = detail::MemoKey<Params>;
  // One candidate on its way to being timed or chosen.
  struct Candidate {
    Config config;
    std::string name;
    std::shared_ptr<const KernelType> kernel;
    CandidateRecord record;
  };

  // Makes the kernel of `p` on `device`: from the database, the only candidate, the
  // heuristic, or by timing candidates (on tuning_run()'s buffers, else on `call_run`, the
  // arguments of the call that asked).
  std::shared_ptr<const KernelType> build(const Params& p, const rt::Device& device,
                                          std::optional<TunePolicy> forced,
                                          const TuningRun* call_run) {
    const rt::DeviceProperties& props = device.properties();
    std::vector<Config> configs_list = candidates(p, props);
    const TuneOptions opts = tune_options();
    const TunePolicy policy = forced.value_or(opts.policy);
    TuningDatabase& db = database();
    const TuningKey key = tuning_key(p, device);
    count_build();

    if (!forced) {
      if (auto known = from_database(p, device, configs_list, db, key)) return known;
    }
    if (configs_list.size() == 1) return finish(p, configs_list.front(), device, Selection::only);
    if (policy == TunePolicy::off) {
      return finish(p, heuristic(p, configs_list, props), device, Selection::heuristic);
    }
    bool lacks_arguments = false;
    TuningRun run = timing_run(p, device, call_run, lacks_arguments);
    if (!run) {
      // Chosen untimed for lack of arguments: the first call with arguments tunes it.
      if (lacks_arguments) add_provisional(Key{device.ordinal(), p});
      return finish(p, heuristic(p, configs_list, props), device, Selection::heuristic);
    }

    std::vector<Candidate> cands = make_candidates(std::move(configs_list));
    Selection selection = Selection::full;
    std::vector<std::size_t> to_time =
        choose_to_time(p, device, cands, policy, opts, db, selection);
    measure(p, device, cands, to_time, selection, opts, run);
    if (!any_timed(cands, to_time) && to_time.size() < cands.size()) {
      // The model's best-ranked candidates all failed: time the others before giving up.
      std::vector<std::size_t> rest = others(cands.size(), to_time);
      measure(p, device, cands, rest, Selection::full, opts, run);
      to_time.insert(to_time.end(), rest.begin(), rest.end());
      selection = Selection::full;
    }
    const std::size_t best = pick_best(p, device, cands, to_time);
    record(db, key, device, cands, to_time, best, selection);
    return cands[best].kernel;
  }

  // The database's choice for `key`, if it has one that is still a candidate. (A winner
  // that is no longer a candidate means the factory changed without a version bump: the
  // caller chooses again.)
  std::shared_ptr<const KernelType> from_database(const Params& p, const rt::Device& device,
                                                  const std::vector<Config>& configs_list,
                                                  TuningDatabase& db, const TuningKey& key) {
    if (auto entry = db.find(key)) {
      for (const auto& c : configs_list) {
        if (nlohmann::json(c) == entry->best) return finish(p, c, device, Selection::database);
      }
    }
    return nullptr;
  }

  // What candidates are timed on: tuning_run()'s buffers, else the asking call's arguments;
  // empty when neither is there (a notice says so once, and the heuristic is used).
  // `lacks_arguments` says whether it is empty only for want of the call's arguments.
  TuningRun timing_run(const Params& p, const rt::Device& device, const TuningRun* call_run,
                       bool& lacks_arguments) {
    try {
      if (TuningRun own = tuning_run(p, device)) return own;
    } catch (const std::exception& e) {
      // No buffers to time on (too little memory, say): the heuristic, without timing.
      if (notice_once(std::string("tuning_run: ") + e.what())) {
        std::fprintf(stderr, "kiln: factory %s cannot time candidates (%s); using its heuristic\n",
                     name_.c_str(), e.what());
      }
      return {};
    }
    if (call_run) return *call_run;
    lacks_arguments = true;
    if (notice_once("no tuning run")) {
      std::fprintf(stderr,
                   "kiln: factory %s: get() without arguments has nothing to time candidates on "
                   "(no tuning_run); using its heuristic until a call factory(stream, params, "
                   "args...) tunes on its arguments\n",
                   name_.c_str());
    }
    return {};
  }

  static std::vector<Candidate> make_candidates(std::vector<Config> configs_list) {
    std::vector<Candidate> cands;
    for (auto& c : configs_list) {
      Candidate cand;
      cand.config = std::move(c);
      cand.record.config = nlohmann::json(cand.config);
      cands.push_back(std::move(cand));
    }
    return cands;
  }

  // Which candidates to time: all of them, or under KILN_TUNE=model the model's top k
  // (setting `selection` to model) when it has a model.
  std::vector<std::size_t> choose_to_time(const Params& p, const rt::Device& device,
                                          const std::vector<Candidate>& cands, TunePolicy policy,
                                          const TuneOptions& opts, TuningDatabase& db,
                                          Selection& selection) {
    std::vector<std::size_t> all = others(cands.size(), {});
    if (policy != TunePolicy::model) return all;
    auto ranked = rank_with_model(p, cands, device, db);
    if (!ranked) return all;
    selection = Selection::model;
    const auto k = std::min<std::ptrdiff_t>(opts.top_k, std::ptrdiff_t(ranked->size()));
    return std::vector<std::size_t>(ranked->begin(), ranked->begin() + k);
  }

  // Indices 0 .. n-1 not in `taken`, in order.
  static std::vector<std::size_t> others(std::size_t n, const std::vector<std::size_t>& taken) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < n; ++i) {
      if (std::find(taken.begin(), taken.end(), i) == taken.end()) out.push_back(i);
    }
    return out;
  }

  static bool any_timed(const std::vector<Candidate>& cands, const std::vector<std::size_t>& idx) {
    for (std::size_t i : idx) {
      if (cands[i].record.status == CandidateStatus::timed) return true;
    }
    return false;
  }

  // The fastest timed candidate of cands[idx]; counts the tuning in the stats. Throws
  // listing every candidate's failure when none was timed.
  std::size_t pick_best(const Params& p, const rt::Device& device,
                        const std::vector<Candidate>& cands, const std::vector<std::size_t>& idx) {
    std::ptrdiff_t best = -1;
    std::string failures;
    std::uint64_t n_timed = 0, n_skipped = 0;
    for (std::size_t i : idx) {
      const Candidate& c = cands[i];
      if (c.record.status == CandidateStatus::timed) {
        ++n_timed;
        if (best < 0 || c.record.time_us < cands[std::size_t(best)].record.time_us) {
          best = std::ptrdiff_t(i);
        }
      } else {
        ++n_skipped;
        failures += "\n  " + c.record.config.dump() + ": " + to_string(c.record.status) + ": " +
                    c.record.reason;
      }
    }
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.tunings;
      stats_.timed += n_timed;
      stats_.skipped += n_skipped;
    }
    if (best < 0) {
      throw Error("kiln: factory " + name_ + ": no candidate config works for params " +
                  nlohmann::json(p).dump() + " on " + device.properties().name + ":" + failures);
    }
    return std::size_t(best);
  }

  // Stores the tuning in the database; a database that cannot be written costs a notice,
  // not the kernel.
  void record(TuningDatabase& db, const TuningKey& key, const rt::Device& device,
              const std::vector<Candidate>& cands, const std::vector<std::size_t>& idx,
              std::size_t best, Selection selection) {
    TuningEntry entry;
    entry.key = key;
    entry.device_features = device_features(device.properties());
    for (std::size_t i : idx) entry.candidates.push_back(cands[i].record);
    entry.best = cands[best].record.config;
    entry.policy = to_string(selection);
    entry.when = detail::utc_now();
    try {
      db.store(entry);
    } catch (const Error& e) {
      if (notice_once(e.what())) {
        std::fprintf(stderr, "kiln: factory %s: tuning result not saved: %s\n", name_.c_str(),
                     e.what());
      }
    }
  }

  std::optional<std::vector<std::size_t>> rank_with_model(const Params& p,
                                                          const std::vector<Candidate>& cands,
                                                          const rt::Device& device,
                                                          TuningDatabase& db) {
    std::vector<nlohmann::json> configs_json;
    for (const auto& c : cands) configs_json.push_back(c.record.config);
    std::string why;
    std::optional<std::vector<std::size_t>> ranked;
    try {
      ranked = model_.rank(name_, version_, db, nlohmann::json(p), configs_json,
                           device_features(device.properties()), why);
    } catch (const std::exception& e) {
      why = std::string("the performance model failed: ") + e.what();
    }
    if (!ranked && notice_once(why)) {
      std::fprintf(stderr, "kiln: factory %s, KILN_TUNE=model: %s; timing every candidate\n",
                   name_.c_str(), why.c_str());
    }
    return ranked;
  }

  // Builds and times cands[indices], filling their records.
  void measure(const Params& p, const rt::Device& device, std::vector<Candidate>& cands,
               const std::vector<std::size_t>& indices, Selection selection,
               const TuneOptions& opts, const TuningRun& run) {
    std::vector<Config> subset;
    for (std::size_t i : indices) subset.push_back(cands[i].config);
    auto built = build_all(p, subset, device, selection);
    std::vector<TimedCandidate> timed;
    for (std::size_t j = 0; j < indices.size(); ++j) {
      Candidate& c = cands[indices[j]];
      c.name = kernel_name(p, c.config);
      c.kernel = std::move(built[j].kernel);
      if (!c.kernel) {
        c.record.status = built[j].status;
        c.record.reason = std::move(built[j].reason);
        continue;
      }
      c.record.resources = resources_of(*c.kernel);
      auto kernel = c.kernel;
      timed.push_back({c.name, [&run, kernel](rt::StreamRef s) { run(*kernel, s); }, &c.record});
    }
    time_candidates(device, timed, opts);
  }

  // Registers, spills, shared memory and occupancy of a loaded candidate.
  static CandidateResources resources_of(const KernelType& k) {
    const rt::FunctionAttributes& a = k.function().attributes();
    const rt::LaunchConfig& lc = k.launch_config();
    CandidateResources r;
    r.registers = a.registers;
    r.local_bytes = a.local_bytes;
    r.static_shared_bytes = a.static_shared_bytes;
    r.dynamic_shared_bytes = int(lc.shared_bytes);
    r.threads_per_block = int(lc.block.count());
    r.blocks_per_sm = k.function().occupancy(r.threads_per_block, lc.shared_bytes);
    return r;
  }

  void count_build() {
    std::lock_guard lock(stats_mutex_);
    ++stats_.builds;
  }

  void add_provisional(const Key& key) {
    std::lock_guard lock(stats_mutex_);
    for (const Key& k : provisional_) {
      if (detail::MemoEqual<Params>{}(k, key)) return;
    }
    provisional_.push_back(key);
    has_provisional_.store(true, std::memory_order_relaxed);
  }
  // Whether `key`'s kernel was provisional (then it no longer is).
  bool take_provisional(const Key& key) {
    std::lock_guard lock(stats_mutex_);
    for (auto it = provisional_.begin(); it != provisional_.end(); ++it) {
      if (detail::MemoEqual<Params>{}(*it, key)) {
        provisional_.erase(it);
        has_provisional_.store(!provisional_.empty(), std::memory_order_relaxed);
        return true;
      }
    }
    return false;
  }

  static void sync_stream(rt::StreamRef stream, const rt::Device& device) {
    const rt::DriverApi& api = rt::driver();
    rt::ContextGuard g(device.context());
    api.check(api.stream_synchronize(stream.handle), "stream_synchronize",
              "waiting for the stream before tuning on a call's arguments");
  }

  std::shared_ptr<const KernelType> finish(const Params& p, const Config& c,
                                           const rt::Device& device, Selection how) {
    auto req = compile_request(p, c, device.properties());
    auto binary = jit::KernelCache::global().get(req.program, req.options);
    return load(p, c, device, binary, how);
  }

  // Loads (rt::load_module: once per binary and device) and checks that the launch fits.
  std::shared_ptr<const KernelType> load(const Params& p, const Config& c, const rt::Device& device,
                                         const std::shared_ptr<const jit::Binary>& binary,
                                         Selection how) {
    const std::string kname = kernel_name(p, c);
    rt::Function fn = rt::load_module(binary, device).function(kname);
    rt::LaunchConfig lc = launch_config(p, c, device.properties());
    // (Above the default limit: 48 KiB less the kernel's static shared memory.)
    if (int(lc.shared_bytes) > fn.attributes().max_dynamic_shared_bytes) {
      fn.set_max_dynamic_shared(int(lc.shared_bytes));
    }
    rt::detail::check_limits(fn, lc);
    const int per_sm = fn.occupancy(int(lc.block.count()), lc.shared_bytes);
    if (per_sm == 0) {
      throw Error("kiln: " + kname + " cannot be resident on " + device.properties().name +
                  ": no block of " + std::to_string(lc.block.count()) + " threads with " +
                  std::to_string(lc.shared_bytes) +
                  " bytes of dynamic shared memory fits on a "
                  "multiprocessor (" +
                  std::to_string(fn.attributes().registers) + " registers a thread, " +
                  std::to_string(fn.attributes().static_shared_bytes) +
                  " bytes of static shared memory)");
    }
    if (lc.cooperative) {  // every block resident at once, or the launch would fail
      const std::size_t most =
          std::size_t(per_sm) * std::size_t(device.properties().multiprocessors);
      if (lc.grid.count() > most) {
        throw Error("kiln: " + kname + " cannot be resident on " + device.properties().name +
                    " all at once, as its cooperative launch needs: a grid of " +
                    std::to_string(lc.grid.count()) + " blocks, where the device holds " +
                    std::to_string(per_sm) + " an SM (" + std::to_string(most) + ")");
      }
    }
    if (lc.cluster.count() > 1) {
      if (rt::driver().max_active_clusters && rt::max_active_clusters(fn, lc) == 0) {
        throw Error("kiln: " + kname + " cannot be resident on " + device.properties().name +
                    ": no cluster of " + std::to_string(lc.cluster.count()) + " blocks of " +
                    std::to_string(lc.block.count()) + " threads with " +
                    std::to_string(lc.shared_bytes) + " bytes of dynamic shared memory each fits");
      }
    }
    rt::LaunchInfo info{nlohmann::json(p).dump(), nlohmann::json(c).dump(), bytes(p), flops(p)};
    return std::make_shared<const KernelType>(p, c, kname, std::move(fn), lc, std::move(info), how);
  }

  static std::string describe(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::string s = x.what();
      return s.size() > 2000 ? s.substr(0, 2000) + " [...]" : s;
    } catch (...) {
      return "unknown error";
    }
  }

  bool notice_once(const std::string& what) {
    std::lock_guard lock(stats_mutex_);
    return noticed_.emplace(what, true).second;
  }

  std::string name_;
  int version_;
  jit::Program program_;

  mutable std::mutex settings_mutex_;
  TuneOptions tune_;
  TuningDatabase* db_ = nullptr;

  detail::Memo<Key, KernelType, detail::MemoHash<Params>, detail::MemoEqual<Params>> memo_;
  detail::ModelCache model_;

  mutable std::mutex stats_mutex_;
  FactoryStats stats_;
  std::atomic<std::uint64_t> hits_{0};
  std::map<std::string, bool> noticed_;
  // Keys whose kernel get() chose untimed for lack of arguments (see add_provisional).
  std::vector<Key> provisional_;
  std::atomic<bool> has_provisional_{false};
};

}  // namespace kiln::factory
