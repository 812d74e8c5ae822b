// benchmarks/jit_cache: what a kernel costs to get, cold and cached.
//
//   cold compile      a fresh cache directory: NVRTC compiles the kernel
//   disk hit          a new process with the entry on disk: key, read, verify, decode
//   memory hit        a warm in-process cache: one lookup
//
// The kernel is benchmarks/kernels/tiled_matmul.cu (a typed-dimension tiled GEMM, about
// 70 lines over kiln's device headers). Prints a markdown table; --json FILE writes
// cold_compile_ms, disk_hit_ms and memory_hit_us (medians).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/jit.hpp"

namespace fs = std::filesystem;
using namespace kiln::jit;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

Program kernel() {
  Program p = program_from_file(BENCH_KERNEL_DIR "/tiled_matmul.cu");
  p.name = "tiled_matmul.cu";
  return p;
}

Options options() {
  Options o;
  o.target = "sm_90";
  return o;
}

DiskCacheConfig config(const fs::path& dir) {
  return DiskCacheConfig{dir, 256ull << 20, true, "", false};
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Child mode: one get() from a cache directory that already holds the entry.
int disk_hit_child(const std::string& dir, const std::string& out) {
  auto t = Clock::now();
  KernelCache cache(config(dir));
  auto bin = cache.get(kernel(), options());
  double ms = ms_since(t);
  if (cache.stats().disk_hits != 1 || cache.stats().compiles != 0 || bin->code.empty()) {
    std::fprintf(stderr, "expected a disk hit, got %llu compiles\n",
                 static_cast<unsigned long long>(cache.stats().compiles));
    return 1;
  }
  std::ofstream(out) << ms;
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string json;
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--disk-hit-child" && i + 2 < argc) return disk_hit_child(argv[i + 1], argv[i + 2]);
    if (a == "--json" && i + 1 < argc) {
      json = argv[++i];
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--reps N]\n", argv[0]);
      return 2;
    }
  }
  std::string tmpl = (fs::temp_directory_path() / "kiln-bench-XXXXXX").string();
  fs::path root = ::mkdtemp(tmpl.data());

  // Cold: a new, empty cache directory each time.
  std::vector<double> cold;
  for (int r = 0; r < reps; ++r) {
    fs::path dir = root / ("cold" + std::to_string(r));
    KernelCache cache(config(dir));
    auto t = Clock::now();
    cache.get(kernel(), options());
    cold.push_back(ms_since(t));
  }

  // Disk hit in a fresh process (the entry from the first cold run).
  std::vector<double> disk;
  for (int r = 0; r < reps; ++r) {
    fs::path out = root / "child.ms";
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string self = fs::read_symlink("/proc/self/exe");
      std::string dir = (root / "cold0").string();
      ::execl(self.c_str(), self.c_str(), "--disk-hit-child", dir.c_str(), out.c_str(), nullptr);
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw kiln::Error("disk-hit child failed");
    double ms = 0;
    std::ifstream(out) >> ms;
    disk.push_back(ms);
  }

  // Memory hit: many lookups on a warm cache; the program is built once, as a caller would.
  KernelCache warm(config(root / "cold0"));
  const Program p = kernel();
  const Options o = options();
  warm.get(p, o);
  std::vector<double> mem;
  const int calls = 100000;
  for (int r = 0; r < reps; ++r) {
    auto t = Clock::now();
    for (int i = 0; i < calls; ++i) warm.get(p, o);
    mem.push_back(ms_since(t) * 1000.0 / calls);
  }
  fs::remove_all(root);

  const double cold_ms = median(cold), disk_ms = median(disk), mem_us = median(mem);
  std::printf("| what | median | samples |\n| --- | --- | --- |\n");
  std::printf("| cold compile (NVRTC, sm_90) | %.1f ms | %d |\n", cold_ms, reps);
  std::printf("| disk hit, fresh process | %.2f ms | %d |\n", disk_ms, reps);
  std::printf("| memory hit | %.3f us | %d x %d calls |\n", mem_us, reps, calls);
  std::printf("\ncold / disk hit: %.0fx (target >= 20x); memory hit target < 1 us\n",
              cold_ms / disk_ms);
  if (!json.empty()) {
    std::ofstream(json) << "{\"cold_compile_ms\": " << cold_ms << ", \"disk_hit_ms\": " << disk_ms
                        << ", \"memory_hit_us\": " << mem_us << ", \"reps\": " << reps << "}\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
