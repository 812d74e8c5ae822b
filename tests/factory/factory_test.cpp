// include/kiln/factory: the memo (one make per key, parallel makes, failures not kept),
// its keys, tuning settings, kernel names and what a factory compiles, without a GPU.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support.hpp"
#include "kiln/factory/detail/memo.hpp"
#include "kiln/factory/detail/memo_key.hpp"
#include "scale_factory.hpp"

using namespace kiln::factory;
using factory_test::ScaleConfig;
using factory_test::ScaleFactory;
using factory_test::ScaleParams;

namespace {
struct Hashed {
  double scale = 1;  // a double: its bytes are not a unique representation
  bool operator==(const Hashed&) const = default;
};
}  // namespace
template <>
struct std::hash<Hashed> {
  std::size_t operator()(const Hashed& h) const { return std::size_t(h.scale * 1000) + 42; }
};

namespace {
struct IntHash {
  std::size_t operator()(int k) const { return std::size_t(k); }
};
using IntMemo = detail::Memo<int, std::string, IntHash, std::equal_to<int>>;
}  // namespace

TEST_CASE("memo: many threads asking for one key make it once and all get it") {
  IntMemo memo;
  std::atomic<int> makes{0};
  std::vector<std::thread> threads;
  std::vector<const std::string*> got(16);
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      got[std::size_t(t)] = &memo.get(7, [&] {
        makes.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the others pile up
        return std::make_shared<const std::string>("seven");
      });
    });
  }
  for (auto& t : threads) t.join();
  CHECK(makes.load() == 1);
  for (auto* p : got) CHECK(p == got[0]);
  CHECK(*got[0] == "seven");
  REQUIRE(memo.find(7) != nullptr);
  CHECK(memo.find(8) == nullptr);
}

TEST_CASE("memo: different keys are made at the same time") {
  // Key 1's make waits until key 2's make has started: with a lock held across makes this
  // would time out instead of passing.
  IntMemo memo;
  std::mutex m;
  std::condition_variable cv;
  bool second_started = false;
  bool first_saw_second = false;
  std::thread a([&] {
    memo.get(1, [&] {
      std::unique_lock lock(m);
      first_saw_second =
          cv.wait_for(lock, std::chrono::seconds(10), [&] { return second_started; });
      return std::make_shared<const std::string>("one");
    });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::thread b([&] {
    memo.get(2, [&] {
      {
        std::lock_guard lock(m);
        second_started = true;
      }
      cv.notify_all();
      return std::make_shared<const std::string>("two");
    });
  });
  a.join();
  b.join();
  CHECK(first_saw_second);
  CHECK(*memo.find(1) == "one");
  CHECK(*memo.find(2) == "two");
}

TEST_CASE("memo: a failed make reaches every waiter and is not kept") {
  IntMemo memo;
  int calls = 0;
  auto failing = [&]() -> std::shared_ptr<const std::string> {
    ++calls;
    throw std::runtime_error("no luck");
  };
  CHECK_THROWS_WITH(memo.get(3, failing), "no luck");
  CHECK(memo.find(3) == nullptr);
  CHECK(memo.size() == 0);
  const std::string& v = memo.get(3, [&] {
    ++calls;
    return std::make_shared<const std::string>("three");
  });
  CHECK(v == "three");
  CHECK(calls == 2);
}

TEST_CASE("memo: a failed make reaches a thread waiting on it") {
  IntMemo memo;
  std::atomic<bool> making{false};
  std::string waiter_error;
  std::thread maker([&] {
    try {
      memo.get(5, [&]() -> std::shared_ptr<const std::string> {
        making = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        throw std::runtime_error("make failed");
      });
    } catch (const std::exception&) {
    }
  });
  while (!making) std::this_thread::yield();
  try {
    memo.get(5, [] { return std::make_shared<const std::string>("waiter made it"); });
    waiter_error = "no error";
  } catch (const std::exception& e) {
    waiter_error = e.what();
  }
  maker.join();
  CHECK(waiter_error == "make failed");  // it waited on the make in progress
  CHECK(memo.find(5) == nullptr);
}

TEST_CASE("memo: a failed replace keeps the earlier value") {
  IntMemo memo;
  const std::string& old = memo.get(6, [] { return std::make_shared<const std::string>("old"); });
  CHECK_THROWS_WITH(
      memo.get(
          6,
          []() -> std::shared_ptr<const std::string> { throw std::runtime_error("retune failed"); },
          true),
      "retune failed");
  REQUIRE(memo.find(6) != nullptr);
  CHECK(memo.find(6) == &old);
  CHECK(memo.get(6, [] { return std::make_shared<const std::string>("x"); }) == "old");
}

TEST_CASE("memo: while a replace runs, readers keep getting the earlier value") {
  IntMemo memo;
  const std::string& old = memo.get(8, [] { return std::make_shared<const std::string>("old"); });
  std::atomic<bool> replacing{false}, release{false};
  std::thread t([&] {
    memo.get(
        8,
        [&] {
          replacing = true;
          while (!release) std::this_thread::yield();
          return std::make_shared<const std::string>("new");
        },
        true);
  });
  while (!replacing) std::this_thread::yield();
  // No waiting on the replace: this returns the earlier value at once.
  CHECK(&memo.get(8, [] { return std::make_shared<const std::string>("x"); }) == &old);
  release = true;
  t.join();
  CHECK(*memo.find(8) == "new");
  CHECK(old == "old");  // kept alive
}

TEST_CASE("memo: replacing keeps the old value alive and returns the new one") {
  IntMemo memo;
  const std::string& old = memo.get(4, [] { return std::make_shared<const std::string>("old"); });
  const std::string& fresh = memo.get(
      4, [] { return std::make_shared<const std::string>("new"); }, true);
  CHECK(old == "old");  // still readable
  CHECK(fresh == "new");
  CHECK(*memo.find(4) == "new");
  // Without replace, the new value is what get() returns.
  CHECK(&memo.get(4, [] { return std::make_shared<const std::string>("x"); }) == &fresh);
}

TEST_CASE("memo keys: equal params on one device are one key; devices and values differ") {
  using Key = detail::MemoKey<ScaleParams>;
  detail::MemoHash<ScaleParams> hash;
  detail::MemoEqual<ScaleParams> eq;
  static_assert(detail::hash_bytes_v<ScaleParams>, "an int64 alone hashes by bytes");
  CHECK(hash(Key{0, {100}}) == hash(Key{0, {100}}));
  CHECK(eq(Key{0, {100}}, Key{0, {100}}));
  CHECK_FALSE(eq(Key{0, {100}}, Key{1, {100}}));
  CHECK_FALSE(eq(Key{0, {100}}, Key{0, {101}}));
  CHECK(hash(Key{0, {100}}) != hash(Key{1, {100}}));
  // Padding (int, int, int is fine; a struct with a double and an int is not) -> JSON.
  struct Padded {
    double x;
    int y;
  };
  static_assert(!detail::hash_bytes_v<Padded>, "padding bytes must not be hashed");
  // A std::hash specialization is used where there is one.
  static_assert(detail::has_std_hash<Hashed>);
  detail::MemoHash<Hashed> by_std;
  CHECK(by_std(detail::MemoKey<Hashed>{0, {2.0}}) == std::hash<Hashed>{}(Hashed{2.0}));
}

TEST_CASE("tuning settings come from KILN_TUNE and KILN_TUNE_TOP_K, and bad values say so") {
  {
    kiln_test::ScopedEnv tune("KILN_TUNE", nullptr);
    kiln_test::ScopedEnv k("KILN_TUNE_TOP_K", nullptr);
    CHECK(TuneOptions::from_environment().policy == TunePolicy::off);
    CHECK(TuneOptions::from_environment().top_k == 3);
  }
  {
    kiln_test::ScopedEnv tune("KILN_TUNE", "model");
    kiln_test::ScopedEnv k("KILN_TUNE_TOP_K", "5");
    CHECK(TuneOptions::from_environment().policy == TunePolicy::model);
    CHECK(TuneOptions::from_environment().top_k == 5);
  }
  {
    kiln_test::ScopedEnv tune("KILN_TUNE", "fast");
    CHECK_THROWS_WITH_AS(
        TuneOptions::from_environment(),
        doctest::Contains(
            "KILN_TUNE is 'fast', which is not a tuning policy; use off, model or full"),
        kiln::Error);
  }
  {
    kiln_test::ScopedEnv k("KILN_TUNE_TOP_K", "0");
    CHECK_THROWS_AS(TuneOptions::from_environment(), kiln::Error);
  }
  ScaleFactory f;
  TuneOptions bad;
  bad.top_k = 0;
  CHECK_THROWS_AS(f.set_tune_options(bad), kiln::Error);
}

TEST_CASE("a factory validates params, lists candidates and names kernels by specialization") {
  ScaleFactory f;
  const auto dev = factory_test::fake_device();
  CHECK_THROWS_WITH_AS(f.candidates({0}, dev), "kiln: scale needs n >= 1 elements, not 0",
                       kiln::Error);
  const auto list = f.candidates({1000}, dev);
  CHECK(list.size() == 14);
  CHECK(f.kernel_name({1000}, {256, 4, 0}) == "scale__1000__0_256_4");
  CHECK(detail::name_part(nlohmann::json{{"dtype", "f16"}, {"cols", 4096}, {"neg", -2}}) ==
        "4096_f16_m2");
  CHECK_THROWS_AS(ScaleFactory(true, 1, "not a name"), kiln::Error);
}

TEST_CASE("a factory's compile request carries the spec header and the kernel's name") {
  ScaleFactory f;
  const auto req = f.compile_request({1000}, {256, 4, 0}, factory_test::fake_device("sm_86"));
  CHECK(req.options.target == "sm_86");
  REQUIRE(req.program.headers.size() == 1);
  CHECK(req.program.headers[0].name == "spec.hpp");
  const std::string& h = req.program.headers[0].contents;
  CHECK(h.find("#define KILN_KERNEL_NAME scale__1000__0_256_4\n") != std::string::npos);
  CHECK(h.find("VEC = 4") != std::string::npos);
  CHECK(h.find("#define SCALE_BROKEN 0") != std::string::npos);
  CHECK_THROWS_AS(kiln::gen::Spec().kernel_name("9lives"), kiln::gen::SpecError);
}

TEST_CASE("the tuning key names the factory, version, params, device and tools") {
  // Keys from two factory versions differ, so version 2 never reuses version 1's winner.
  TuningKey a{"scale", 1,           nlohmann::json(ScaleParams{10}), "Test GPU", "sm_90",
              13000,   "nvrtc 13.0"};
  TuningKey b = a;
  b.version = 2;
  CHECK(a.id() != b.id());
  CHECK(a.id() == TuningKey(a).id());
  CHECK(a.id().find("\"factory\":\"scale\"") != std::string::npos);
}
