// benchmarks/softmax: kiln's row softmax against cuDNN's (cudnnSoftmaxForward, accurate,
// per row) and a device-to-device copy of the same bytes, in the same run, over short,
// 4096-, 8192-, 65536- and 1M-long rows, many rows and few. GB/s count one read and one
// write of the matrix; "% of copy" is kiln's GB/s over the copy's, measured here.
//
//   softmax [--json FILE] [--dtypes f16,bf16,f32] [--shapes 8192x8192,...] [--sweep]
//           [--backward] [--copy-kernel] [bench flags: --noise PCT --seconds S --no-flush]
//
// --backward times the backward instead, kiln::ops::softmax_backward (dx from y and dy)
// against cudnnSoftmaxBackward: its GB/s count two reads and one write of the matrix, the
// copy's still one read and one write, so "% of copy" compares bandwidths.
// --sweep also times every candidate config of each problem (what KILN_TUNE=full would
// choose from). --copy-kernel also times a plain streaming copy kernel of the same bytes
// (bench::CopyKernel), and the summary gains kiln's % of its GB/s. The factory picks its
// config as KILN_TUNE says (off: the heuristic).
// cuDNN is compiled in where CMake found it (KILN_BENCH_CUDNN).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/jit.hpp"
#include "kiln/ops/softmax.hpp"
#include "kiln/prof.hpp"
#include "kiln/rt.hpp"
#include "row_data.hpp"

#ifdef KILN_BENCH_CUDNN
#include "cudnn_support.hpp"
#endif

using namespace kiln;
using SoftmaxDType = kiln::gen::DType;  // f16, bf16 or f32 for a softmax
using bench::CopyKernel;
using bench::decode;
using bench::gbps_of;
using bench::make_input;
using bench::split;
using ops::SoftmaxParams;

namespace {

struct Shape {
  std::int64_t rows;
  int cols;
};

#ifdef KILN_BENCH_CUDNN
using bench::cudnn_check;
/// cudnnSoftmaxForward over (N: rows, C: cols, 1, 1), softmax over C for each row.
class CudnnSoftmax {
 public:
  CudnnSoftmax(cudnnHandle_t h, SoftmaxDType dt, Shape s) : h_(h) {
    cudnn_check(cudnnCreateTensorDescriptor(&desc_), "cudnnCreateTensorDescriptor");
    const cudnnDataType_t type = dt == SoftmaxDType::f16    ? CUDNN_DATA_HALF
                                 : dt == SoftmaxDType::bf16 ? CUDNN_DATA_BFLOAT16
                                                            : CUDNN_DATA_FLOAT;
    cudnn_check(
        cudnnSetTensor4dDescriptor(desc_, CUDNN_TENSOR_NCHW, type, int(s.rows), s.cols, 1, 1),
        "cudnnSetTensor4dDescriptor");
  }
  ~CudnnSoftmax() { cudnnDestroyTensorDescriptor(desc_); }
  CudnnSoftmax(const CudnnSoftmax&) = delete;
  CudnnSoftmax& operator=(const CudnnSoftmax&) = delete;
  void operator()(rt::StreamRef s, const void* x, void* y) const {
    cudnn_check(cudnnSetStream(h_, static_cast<cudaStream_t>(s.handle)), "cudnnSetStream");
    const float alpha = 1.0f, beta = 0.0f;
    cudnn_check(cudnnSoftmaxForward(h_, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &alpha,
                                    desc_, x, &beta, desc_, y),
                "cudnnSoftmaxForward");
  }
  /// cudnnSoftmaxBackward: dx from the forward's output y and dy.
  void backward(rt::StreamRef s, const void* y, const void* dy, void* dx) const {
    cudnn_check(cudnnSetStream(h_, static_cast<cudaStream_t>(s.handle)), "cudnnSetStream");
    const float alpha = 1.0f, beta = 0.0f;
    cudnn_check(cudnnSoftmaxBackward(h_, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE,
                                     &alpha, desc_, y, desc_, dy, &beta, desc_, dx),
                "cudnnSoftmaxBackward");
  }

 private:
  cudnnHandle_t h_;
  cudnnTensorDescriptor_t desc_ = nullptr;
};
#endif

/// Checks rows 0 and rows - 1 of kiln's output against the CPU; throws if they are wrong.
void spot_check(SoftmaxDType dt, Shape s, const std::vector<unsigned char>& in,
                const rt::DeviceBuffer<unsigned char>& out) {
  const std::vector<unsigned char> got = out.to_vector();
  const std::size_t esize = std::size_t(gen::size_of(dt));
  for (std::int64_t r : {std::int64_t(0), s.rows - 1}) {
    const std::size_t base = std::size_t(r) * std::size_t(s.cols) * esize;
    double m = -INFINITY, sum = 0;
    for (int c = 0; c < s.cols; ++c) m = std::max(m, double(decode(dt, &in[base + c * esize])));
    for (int c = 0; c < s.cols; ++c) sum += std::exp(double(decode(dt, &in[base + c * esize])) - m);
    for (int c = 0; c < s.cols; ++c) {
      const double want = std::exp(double(decode(dt, &in[base + c * esize])) - m) / sum;
      const double g = decode(dt, &got[base + c * esize]);
      if (!(std::fabs(g - want) <= 1e-2 * want + 1e-7)) {
        throw Error("softmax benchmark: wrong output at row " + std::to_string(r) + " col " +
                    std::to_string(c) + ": " + std::to_string(g) + " != " + std::to_string(want));
      }
    }
  }
}

/// The backward's spot check: rows 0 and rows - 1 of dx against the CPU's
/// y * (dy - sum(dy * y)); throws if they are wrong.
void spot_check_backward(SoftmaxDType dt, Shape s, const std::vector<unsigned char>& y,
                         const std::vector<unsigned char>& dy,
                         const rt::DeviceBuffer<unsigned char>& dx) {
  const std::vector<unsigned char> got = dx.to_vector();
  const std::size_t esize = std::size_t(gen::size_of(dt));
  for (std::int64_t r : {std::int64_t(0), s.rows - 1}) {
    const std::size_t base = std::size_t(r) * std::size_t(s.cols) * esize;
    double dot = 0, size = 0;
    for (int c = 0; c < s.cols; ++c) {
      const double p = double(decode(dt, &y[base + c * esize])) * decode(dt, &dy[base + c * esize]);
      dot += p;
      size += std::fabs(p);
    }
    for (int c = 0; c < s.cols; ++c) {
      const double yc = decode(dt, &y[base + c * esize]), dyc = decode(dt, &dy[base + c * esize]);
      const double want = yc * (dyc - dot);
      const double g = decode(dt, &got[base + c * esize]);
      if (!(std::fabs(g - want) <= 1e-2 * (std::fabs(want) + 1e-3 * std::fabs(yc) * size) + 1e-7)) {
        throw Error("softmax benchmark: wrong backward output at row " + std::to_string(r) +
                    " col " + std::to_string(c) + ": " + std::to_string(g) +
                    " != " + std::to_string(want));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) try {
  std::vector<std::string> extra;
  const auto args = prof::BenchArgs::parse(argc, argv, &extra);
  std::vector<SoftmaxDType> dtypes = {SoftmaxDType::f16, SoftmaxDType::bf16, SoftmaxDType::f32};
  std::vector<Shape> shapes = {{65536, 128},  {65536, 1024}, {16384, 4096}, {8192, 8192},
                               {4096, 16384}, {1024, 65536}, {64, 1 << 20}, {8, 8192}};
  bool sweep = false;
  bool backward = false;
  bool with_copy_kernel = false;
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const std::string& a = extra[i];
    if (a == "--sweep") {
      sweep = true;
    } else if (a == "--backward") {
      backward = true;
    } else if (a == "--copy-kernel") {
      with_copy_kernel = true;
    } else if (a == "--dtypes" && i + 1 < extra.size()) {
      dtypes.clear();
      for (const auto& d : split(extra[++i], ','))
        dtypes.push_back(nlohmann::json(d).get<SoftmaxDType>());
    } else if (a == "--shapes" && i + 1 < extra.size()) {
      shapes.clear();
      for (const auto& s : split(extra[++i], ',')) {
        const auto parts = split(s, 'x');
        if (parts.size() != 2) throw Error("softmax: --shapes takes ROWSxCOLS,..., not " + s);
        shapes.push_back({std::stoll(parts[0]), std::stoi(parts[1])});
      }
    } else {
      throw Error("softmax: unknown argument '" + a +
                  "' (besides the bench flags: --dtypes LIST, --shapes LIST, --sweep, "
                  "--backward, --copy-kernel)");
    }
  }
  if (rt::device_count() == 0) {
    std::printf("no GPU found: the softmax benchmark needs one\n");
    return 0;
  }
  rt::Device gpu(0);
  gpu.make_current();
  const auto& props = gpu.properties();
  auto& factory = backward ? ops::softmax_backward_factory() : ops::softmax_factory();
#ifdef KILN_BENCH_CUDNN
  cudnnHandle_t cudnn = nullptr;
  cudnn_check(cudnnCreate(&cudnn), "cudnnCreate");
  const std::string peer = "cudnn " + std::to_string(cudnnGetVersion());
#else
  const std::string peer = "cuDNN not found at build time";
#endif
  const char* op = backward ? "softmax backward" : "softmax";
  std::printf("# %s on %s (%s)\n\n", op, props.name.c_str(), peer.c_str());

  nlohmann::json json = {{"device", props.name},
                         {"peer", peer},
                         {"op", backward ? "softmax_backward" : "softmax"},
                         {"problems", nlohmann::json::array()}};
  std::string summary = bench::table_header(
      "| rows x cols | dtype | kiln kernel | copy GB/s | kiln GB/s | % of copy | cuDNN GB/s | "
      "kiln / cuDNN speed | best config (sweep) |",
      with_copy_kernel);
  std::optional<CopyKernel> copy_kernel;
  if (with_copy_kernel) copy_kernel.emplace(gpu);
  for (SoftmaxDType dt : dtypes) {
    for (const Shape s : shapes) {
      const SoftmaxParams p{dt, s.cols, s.rows};
      const std::size_t n = std::size_t(s.rows) * std::size_t(s.cols);
      const double copy_bytes = 2.0 * double(n) * gen::size_of(dt);
      const double bytes = (backward ? 3.0 : 2.0) * double(n) * gen::size_of(dt);
      // The forward reads `in` (x) and writes `out` (y); the backward reads `in` (y) and
      // `grad` (dy), and writes `out` (dx).
      const auto input = make_input(dt, n);
      const auto grad_input = backward ? make_input(dt, n, 777) : std::vector<unsigned char>{};
      rt::DeviceBuffer<unsigned char> in(input.size(), gpu), out(input.size(), gpu);
      rt::DeviceBuffer<unsigned char> grad(grad_input.size(), gpu);
      in.copy_from(input);
      if (backward) grad.copy_from(grad_input);
      out.fill_bytes(0xff);
      using Kernel = factory::Kernel<SoftmaxParams, ops::SoftmaxConfig>;
      auto run = [&](const Kernel& k, rt::StreamRef st) {
        if (backward) {  // as ops::softmax_backward launches it (a split config with slots)
          ops::detail::launch_softmax_backward(k, gpu, k.launch_config(), in.data(), grad.data(),
                                               out.data(), s.rows, st);
        } else {  // as ops::softmax launches it (a split config with kiln's slots)
          ops::detail::launch_softmax(k, gpu, k.launch_config(), in.data(), out.data(), s.rows, st);
        }
      };
      auto check = [&] {
        if (backward) {
          spot_check_backward(dt, s, input, grad_input, out);
        } else {
          spot_check(dt, s, input, out);
        }
      };

      const auto& kernel = factory.get(p, gpu);
      run(kernel, rt::StreamRef{});
      check();

      prof::Bench bench(args.options());
      bench.add(
          "copy", [&](rt::StreamRef st) { out.copy_from(in, st); }, copy_bytes);
      if (copy_kernel) {
        bench.add(
            "copy kernel",
            [&](rt::StreamRef st) { (*copy_kernel)(in.data(), out.data(), in.size(), st); },
            copy_bytes);
      }
      bench.add(
          "kiln " + kernel.name(), [&](rt::StreamRef st) { run(kernel, st); }, bytes);
#ifdef KILN_BENCH_CUDNN
      std::optional<CudnnSoftmax> cud;
      try {
        cud.emplace(cudnn, dt, s);
        auto run_cudnn = [&](rt::StreamRef st) {
          if (backward) {
            cud->backward(st, in.data(), grad.data(), out.data());
          } else {
            (*cud)(st, in.data(), out.data());
          }
        };
        out.fill_bytes(0xff);
        run_cudnn(rt::StreamRef{});
        gpu.make_current();
        rt::driver().check(rt::driver().context_synchronize(), "context_synchronize");
        check();
        bench.add("cudnn", run_cudnn, bytes);
      } catch (const std::exception& e) {
        std::printf("cuDNN skipped for %s %lldx%d: %s\n", std::string(gen::to_string(dt)).c_str(),
                    (long long)s.rows, s.cols, e.what());
        cud.reset();
      }
#endif
      // --sweep: every candidate config, compiled in parallel through the kernel cache.
      std::vector<std::shared_ptr<const factory::Kernel<SoftmaxParams, ops::SoftmaxConfig>>> swept;
      if (sweep) {
        const auto configs = factory.configs(p, props);
        auto built = factory.build_all(p, configs, gpu);
        for (std::size_t i = 0; i < configs.size(); ++i) {
          const std::string name = factory.kernel_name(p, configs[i]);
          if (name == kernel.name()) continue;
          try {
            auto k = built[i].kernel;
            if (!k) throw Error(built[i].reason);
            run(*k, rt::StreamRef{});
            check();
            swept.push_back(k);
            bench.add(
                name, [&, k](rt::StreamRef st) { run(*k, st); }, bytes);
          } catch (const std::exception& e) {
            std::printf("sweep: %s left out: %s\n", name.c_str(), e.what());
          }
        }
      }

      std::printf("## %s %lld x %d\n\n", std::string(gen::to_string(dt)).c_str(), (long long)s.rows,
                  s.cols);
      const auto results = bench.run();
      std::fputs(prof::markdown(results).c_str(), stdout);
      std::printf("\n");

      const double copy = gbps_of(results, "copy");
      const double kiln_gbps = gbps_of(results, "kiln " + kernel.name());
      const double cudnn_gbps = gbps_of(results, "cudnn");
      const auto [best, best_gbps] = bench::best_kernel(results, kernel.name(), kiln_gbps);
      summary += fmt::format("| {} x {} | {} | {} | {:.0f} | {:.0f} | {:.1f}% | {} | {} | {} |\n",
                             s.rows, s.cols, std::string(gen::to_string(dt)).c_str(), kernel.name(),
                             copy, kiln_gbps, 100 * kiln_gbps / copy,
                             cudnn_gbps > 0 ? fmt::format("{:.0f}", cudnn_gbps) : "-",
                             cudnn_gbps > 0 ? fmt::format("{:.2f}x", kiln_gbps / cudnn_gbps) : "-",
                             sweep ? fmt::format("{} {:.0f}", best, best_gbps) : "-");
      nlohmann::json j = {{"rows", s.rows},
                          {"cols", s.cols},
                          {"dtype", std::string(gen::to_string(dt)).c_str()},
                          {"kernel", kernel.name()},
                          {"copy_gbps", copy},
                          {"kiln_gbps", kiln_gbps},
                          {"percent_of_copy", 100 * kiln_gbps / copy},
                          {"results", prof::to_json(results)}};
      if (cudnn_gbps > 0) {
        j["cudnn_gbps"] = cudnn_gbps;
        j["speedup_vs_cudnn"] = kiln_gbps / cudnn_gbps;
      }
      if (sweep) j["best"] = {{"kernel", best}, {"gbps", best_gbps}};
      if (copy_kernel) bench::add_copy_kernel_share(summary, j, kiln_gbps, results);
      json["problems"].push_back(std::move(j));
    }
  }
  std::printf("# Summary\n\n%s", summary.c_str());
#ifdef KILN_BENCH_CUDNN
  cudnnDestroy(cudnn);
#endif
  if (!args.json_path.empty()) {
    std::ofstream f(args.json_path);
    f << json.dump(2) << '\n';
    if (!f.flush()) throw Error("softmax: cannot write " + args.json_path);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
