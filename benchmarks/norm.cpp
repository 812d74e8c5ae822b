// benchmarks/norm: kiln's LayerNorm and RMSNorm (kiln::ops::layer_norm / rms_norm, and with
// --backward their backward passes) against a device-to-device copy in the same run, over
// the shapes of issue 16. GB/s count the bytes the op must move: forward one read of x and
// one write of y (with --residual also the residual read and h written); backward reads of
// dy and x, the write of dx, and dweight and dbias. "% of copy" is kiln's GB/s over the
// copy's (one read and one write), measured here.
//
//   norm [--json FILE] [--dtypes f16,bf16,f32] [--shapes 8192x8192,...]
//        [--kinds layer_norm,rms_norm] [--residual] [--backward] [--sweep] [--copy-kernel]
//        [bench flags: --noise PCT --seconds S --no-flush]
//
// --sweep also times every candidate config of each problem (what KILN_TUNE=full would
// try) and names the fastest in the summary's last column; each is checked first (the
// forward's y against the CPU, the backward's dx, dweight and dbias against the op's own
// kernel's). Backward candidates are timed as a call runs them (their kernel over its
// grid, then the column sum); multi-pass ones with the sums are left out, saying so: a
// call runs them all alike (the weight-gradient kernel, dx, the column sum), as the op's
// own does where it is one of them. --copy-kernel also times a plain streaming copy kernel
// of the copy's bytes (bench::CopyKernel), and the summary gains kiln's % of its GB/s.
//
// Forward calls pass a weight (and a bias for LayerNorm) and save mean and rstd; backward
// calls ask for dweight (and dbias) with a workspace. Where cuDNN is compiled in
// (KILN_BENCH_CUDNN), the plain forward and the backward are also timed through cuDNN's
// graph API (cudnn_norm.hpp: one normalization node; the forward's in the training phase,
// so that it saves its statistics too; the backward's on the statistics kiln's forward
// saved, making dx, dscale and dbias), after its whole output (y; dx, dscale, dbias) is
// compared with kiln's; a cuDNN that cannot run a problem is left out of it, saying why.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/ops/norm.hpp"
#include "kiln/prof.hpp"
#include "kiln/rt.hpp"
#include "row_data.hpp"

#ifdef KILN_BENCH_CUDNN
#include "cudnn_norm.hpp"
#endif

using namespace kiln;
using NormDType = kiln::gen::DType;  // f16, bf16 or f32 for a norm
using bench::CopyKernel;
using bench::decode;
using bench::gbps_of;
using bench::make_input;
using bench::split;
using ops::NormKind;
using ops::NormParams;

namespace {

struct Shape {
  std::int64_t rows;
  int cols;
};

/// Checks rows 0 and rows - 1 of the forward's y (weight and bias as given) against the
/// CPU; throws if they are wrong.
void spot_check(NormKind kind, NormDType dt, Shape s, const std::vector<unsigned char>& x,
                const std::vector<unsigned char>& w, const std::vector<unsigned char>& y) {
  const std::size_t esize = std::size_t(gen::size_of(dt));
  for (std::int64_t r : {std::int64_t(0), s.rows - 1}) {
    const std::size_t base = std::size_t(r) * std::size_t(s.cols) * esize;
    double mean = 0, var = 0;
    for (int c = 0; c < s.cols; ++c) mean += decode(dt, &x[base + c * esize]);
    mean = kind == NormKind::layer_norm ? mean / s.cols : 0.0;
    for (int c = 0; c < s.cols; ++c) {
      const double d = decode(dt, &x[base + c * esize]) - mean;
      var += d * d;
    }
    const double rstd = 1.0 / std::sqrt(var / s.cols + 1e-5);
    for (int c = 0; c < s.cols; ++c) {
      const double wv = decode(dt, &w[c * esize]);
      const double bias = kind == NormKind::layer_norm ? wv : 0.0;  // the weight serves as bias
      const double want = (decode(dt, &x[base + c * esize]) - mean) * rstd * wv + bias;
      const double got = decode(dt, &y[base + c * esize]);
      if (!(std::fabs(got - want) <= 1e-2 * (std::fabs(want) + 1.0))) {
        throw Error("norm benchmark: wrong output at row " + std::to_string(r) + " col " +
                    std::to_string(c) + ": " + std::to_string(got) + " != " + std::to_string(want));
      }
    }
  }
}

/// The values of outputs of `dt` held as 16- or 32-bit patterns (T), as doubles.
template <class T>
std::vector<double> values_of(NormDType dt, const std::vector<T>& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    out[i] = decode(dt, reinterpret_cast<const unsigned char*>(&v[i]));
  return out;
}
/// f32 outputs (cuDNN's dscale and dbias) as doubles.
std::vector<double> values_of(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

/// `got` against `want`, element by element, relative to |want| + 1: the largest difference
/// up to the first element more than 2% off, and that element (none where every one is
/// within 2%).
std::pair<double, std::optional<std::size_t>> compare_values(const std::vector<double>& got,
                                                             const std::vector<double>& want) {
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(want[i] - got[i]) / (std::fabs(want[i]) + 1.0);
    if (!(d <= 2e-2)) return {worst, i};
    worst = std::max(worst, d);
  }
  return {worst, std::nullopt};
}

/// compare_values of outputs of `dt` as 16- or 32-bit patterns.
template <class T>
std::pair<double, std::optional<std::size_t>> compare_outputs(NormDType dt,
                                                              const std::vector<T>& got,
                                                              const std::vector<T>& want) {
  return compare_values(values_of(dt, got), values_of(dt, want));
}

/// A norm's buffers as 16- or 32-bit patterns (T), launched through the ops.
template <class T>
struct Problem {
  NormKind kind;
  NormDType dt;
  Shape s;
  bool residual;
  rt::DeviceBuffer<T> x, y, r, h, w, dy, dx, dw, db;
  rt::DeviceBuffer<float> mean, rstd, workspace;

  Problem(NormKind k, NormDType d, Shape shape, bool res, bool backward, const rt::Device& gpu)
      : kind(k), dt(d), s(shape), residual(res) {
    const std::size_t n = std::size_t(s.rows) * std::size_t(s.cols);
    const std::size_t cols = std::size_t(s.cols);
    x = rt::DeviceBuffer<T>(n, gpu);
    y = rt::DeviceBuffer<T>(n, gpu);
    w = rt::DeviceBuffer<T>(cols, gpu);
    mean = rt::DeviceBuffer<float>(std::size_t(s.rows), gpu);
    rstd = rt::DeviceBuffer<float>(std::size_t(s.rows), gpu);
    if (residual) {
      r = rt::DeviceBuffer<T>(n, gpu);
      h = rt::DeviceBuffer<T>(n, gpu);
    }
    if (backward) {
      dy = rt::DeviceBuffer<T>(n, gpu);
      dx = rt::DeviceBuffer<T>(n, gpu);
      dw = rt::DeviceBuffer<T>(cols, gpu);
      if (kind == NormKind::layer_norm) db = rt::DeviceBuffer<T>(cols, gpu);
      workspace = rt::DeviceBuffer<float>(
          std::max<std::size_t>(
              1, ops::norm_backward_workspace_size(kind, dt, s.rows, s.cols, true,
                                                   kind == NormKind::layer_norm, gpu)),
          gpu);
    }
  }

  void forward(rt::StreamRef st) {
    ops::NormArgs<T> a{.weight = &w, .rstd = &rstd};
    if (kind == NormKind::layer_norm) {
      a.bias = &w;
      a.mean = &mean;
    }
    if (residual) {
      a.residual = &r;
      a.h = &h;
    }
    if (kind == NormKind::layer_norm) {
      ops::layer_norm(dt, x, y, s.rows, s.cols, a, st);
    } else {
      ops::rms_norm(dt, x, y, s.rows, s.cols, a, st);
    }
  }

  /// The forward through one kernel of the factory, as the op launches it.
  void forward_with(const ops::NormFactory::KernelType& k, rt::StreamRef st) {
    const NormParams p{kind, dt, s.cols, residual, s.rows};
    rt::LaunchConfig lc = ops::detail::norm_launch(p, k.config());
    lc.stream = st;
    const bool layer = kind == NormKind::layer_norm;
    ops::SplitSlots split;  // kiln's slots for this stream, as a call takes them
    if (k.config().strategy == ops::NormStrategy::split) {
      split = ops::detail::norm_split_slots(y.device(), st, p, k.config());
    }
    k.launch(lc, static_cast<const void*>(x.data()),
             static_cast<const void*>(residual ? r.data() : nullptr),
             static_cast<const void*>(w.data()),
             static_cast<const void*>(layer ? w.data() : nullptr), static_cast<void*>(y.data()),
             static_cast<void*>(residual ? h.data() : nullptr), layer ? mean.data() : nullptr,
             rstd.data(), 1e-5f, int(s.rows), split.data(), split.next());
    split.launched();
  }

  /// The backward as a call runs `plan` (norm_backward_plan_for one of the factory's
  /// kernels), with `partial` for its partial sums.
  void backward_with(const ops::detail::NormBackwardPlan& plan, rt::DeviceBuffer<float>& partial,
                     rt::StreamRef st) {
    const bool layer = kind == NormKind::layer_norm;
    const ops::NormBackwardParams p{kind, dt, s.cols, true, layer, s.rows};
    ops::detail::launch_norm_backward(
        p, plan, dy.data(), x.data(), w.data(), layer ? mean.data() : nullptr, rstd.data(),
        dx.data(), partial.data(), dw.data(), layer ? db.data() : nullptr, false, dx.device(), st);
  }

  void backward(rt::StreamRef st) {
    ops::NormBackwardArgs<T> a{
        .weight = &w, .rstd = &rstd, .dweight = &dw, .workspace = &workspace};
    if (kind == NormKind::layer_norm) {
      a.mean = &mean;
      a.dbias = &db;
      ops::layer_norm_backward(dt, dy, x, dx, s.rows, s.cols, a, st);
    } else {
      ops::rms_norm_backward(dt, dy, x, dx, s.rows, s.cols, a, st);
    }
  }
};

}  // namespace

int main(int argc, char** argv) try {
  std::vector<std::string> extra;
  const auto args = prof::BenchArgs::parse(argc, argv, &extra);
  std::vector<NormDType> dtypes = {NormDType::f16, NormDType::bf16, NormDType::f32};
  std::vector<NormKind> kinds = {NormKind::layer_norm, NormKind::rms_norm};
  std::vector<Shape> shapes = {{8192, 8192},  {65536, 1024}, {16384, 4096},
                               {32768, 512},  {4096, 16384}, {1024, 65536},
                               {64, 1 << 20}, {512, 4096},   {8, 8192}};
  bool backward = false, residual = false, sweep = false, with_copy_kernel = false;
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const std::string& a = extra[i];
    if (a == "--sweep") {
      sweep = true;
    } else if (a == "--backward") {
      backward = true;
    } else if (a == "--residual") {
      residual = true;
    } else if (a == "--copy-kernel") {
      with_copy_kernel = true;
    } else if (a == "--dtypes" && i + 1 < extra.size()) {
      dtypes.clear();
      for (const auto& d : split(extra[++i], ','))
        dtypes.push_back(nlohmann::json(d).get<NormDType>());
    } else if (a == "--kinds" && i + 1 < extra.size()) {
      kinds.clear();
      for (const auto& k : split(extra[++i], ',')) {
        if (k != "layer_norm" && k != "rms_norm") {
          throw Error("norm: --kinds takes layer_norm and rms_norm, not " + k);
        }
        kinds.push_back(k == "layer_norm" ? NormKind::layer_norm : NormKind::rms_norm);
      }
    } else if (a == "--shapes" && i + 1 < extra.size()) {
      shapes.clear();
      for (const auto& s : split(extra[++i], ',')) {
        const auto parts = split(s, 'x');
        if (parts.size() != 2) throw Error("norm: --shapes takes ROWSxCOLS,..., not " + s);
        shapes.push_back({std::stoll(parts[0]), std::stoi(parts[1])});
      }
    } else {
      throw Error("norm: unknown argument '" + a +
                  "' (besides the bench flags: --dtypes LIST, --shapes LIST, --kinds LIST, "
                  "--residual, --backward, --sweep, --copy-kernel)");
    }
  }
  if (backward && residual) {
    throw Error("norm: --residual is a forward variant; its backward is the plain backward");
  }
  if (rt::device_count() == 0) {
    std::printf("no GPU found: the norm benchmark needs one\n");
    return 0;
  }
  rt::Device gpu(0);
  gpu.make_current();
  const auto& props = gpu.properties();
  const std::string op =
      std::string(backward ? "backward" : "forward") + (residual ? " with the fused residual" : "");
  std::printf("# LayerNorm and RMSNorm, %s, on %s\n\n", op.c_str(), props.name.c_str());

  nlohmann::json json = {{"device", props.name},
                         {"direction", backward ? "backward" : "forward"},
                         {"residual", residual},
                         {"problems", nlohmann::json::array()}};
#ifdef KILN_BENCH_CUDNN
  cudnnHandle_t cudnn = nullptr;
  if (const cudnnStatus_t st = cudnnCreate(&cudnn); st != CUDNN_STATUS_SUCCESS) {
    std::printf("cuDNN left out: cudnnCreate: %s\n", cudnnGetErrorString(st));
    cudnn = nullptr;
  }
  struct HandleGuard {
    cudnnHandle_t h;
    ~HandleGuard() {
      if (h) cudnnDestroy(h);
    }
  } cudnn_guard{cudnn};
#endif
  std::string summary = bench::table_header(
      "| op | rows x cols | dtype | kiln kernel | copy GB/s | kiln GB/s | % of copy | time us | "
      "cuDNN GB/s | x cuDNN | best config (sweep) |",
      with_copy_kernel);
  std::optional<CopyKernel> copy_kernel;
  if (with_copy_kernel) copy_kernel.emplace(gpu);
  for (NormKind kind : kinds) {
    for (NormDType dt : dtypes) {
      for (const Shape s : shapes) {
        const std::size_t n = std::size_t(s.rows) * std::size_t(s.cols);
        const double esize = gen::size_of(dt);
        const double matrix = double(n) * esize;
        const bool layer = kind == NormKind::layer_norm;
        const double bytes =
            backward ? 3.0 * matrix + (layer ? 3.0 : 2.0) * s.cols * esize
                     : (residual ? 4.0 : 2.0) * matrix + (layer ? 2.0 : 1.0) * s.cols * esize;
        auto bench_one = [&]<class T>(T) {
          Problem<T> pr(kind, dt, s, residual, backward, gpu);
          const auto input = make_input(dt, n, 12345);
          const auto weight = make_input(dt, std::size_t(s.cols), 999);
          std::vector<T> host(n), host_w(std::size_t(s.cols));
          std::memcpy(host.data(), input.data(), input.size());
          std::memcpy(host_w.data(), weight.data(), weight.size());
          pr.x.copy_from(host);
          pr.w.copy_from(host_w);
          // y's first and last rows against the CPU (the residual variant's y is unchecked).
          auto check_y = [&] {
            if (residual) return;
            const std::vector<T> y = pr.y.to_vector();
            std::vector<unsigned char> y_bytes(y.size() * sizeof(T));
            std::memcpy(y_bytes.data(), y.data(), y_bytes.size());
            spot_check(kind, dt, s, input, weight, y_bytes);
          };
          pr.forward(rt::StreamRef{});
          check_y();
          std::string name;
          prof::Bench bench(args.options());
          bench.add(
              "copy", [&](rt::StreamRef st) { pr.y.copy_from(pr.x, st); }, 2.0 * matrix);
          if (copy_kernel) {
            bench.add(
                "copy kernel",
                [&](rt::StreamRef st) {
                  (*copy_kernel)(pr.x.data(), pr.y.data(), std::size_t(matrix), st);
                },
                2.0 * matrix);
          }
          if (backward) {
            const auto grad = make_input(dt, n, 777);
            std::memcpy(host.data(), grad.data(), grad.size());
            pr.dy.copy_from(host);
            pr.backward(rt::StreamRef{});
            name = ops::detail::norm_backward_kernel({kind, dt, s.cols, true, layer, s.rows}, gpu)
                       .name();
            bench.add(
                "kiln " + name, [&](rt::StreamRef st) { pr.backward(st); }, bytes);
          } else {
            name = ops::norm_factory()
                       .get({kind, dt, s.cols, residual, ops::detail::row_bucket(s.rows)}, gpu)
                       .name();
            bench.add(
                "kiln " + name, [&](rt::StreamRef st) { pr.forward(st); }, bytes);
          }
#ifdef KILN_BENCH_CUDNN
          // cuDNN's forward or backward (not the residual variant, which it has no node for),
          // its whole output first compared with kiln's: y, or dx, dweight and dbias.
          std::unique_ptr<bench::CudnnNorm> cud;
          std::optional<rt::DeviceBuffer<float>> weight32, dscale32, dbias32;
          std::optional<rt::DeviceBuffer<T>> cudnn_dx;
          if (cudnn && !residual) {
            try {
              cud = std::make_unique<bench::CudnnNorm>(
                  backward ? bench::CudnnNorm::backward : bench::CudnnNorm::forward, cudnn, layer,
                  dt, s.rows, s.cols, 1e-5f, gpu);
              // Its scale and bias in f32 (as cuDNN's engines take them): kiln's weight, which
              // serves as both here.
              std::vector<float> w32(std::size_t(s.cols));
              for (int c = 0; c < s.cols; ++c)
                w32[std::size_t(c)] = decode(dt, &weight[c * std::size_t(esize)]);
              weight32.emplace(std::size_t(s.cols), gpu);
              weight32->copy_from(w32);
              // compare(what, cudnn's, kiln's) as doubles: throws at the first element far
              // apart, else gives the largest difference.
              auto compare = [&](const char* what, const std::vector<double>& theirs,
                                 const std::vector<double>& ours) {
                const std::size_t cols = std::size_t(s.cols);
                const auto [worst, far] = compare_values(theirs, ours);
                if (far) {
                  throw Error(fmt::format(
                      "its {} differs from kiln's at row {} col {}: {} against kiln's {}", what,
                      *far / cols, *far % cols, theirs[*far], ours[*far]));
                }
                return worst;
              };
              double worst = 0;
              if (!backward) {
                cud->bind(pr.x.data(), pr.y.data(), weight32->data(), weight32->data(),
                          pr.mean.data(), pr.rstd.data());
                const std::vector<T> kiln_y = pr.y.to_vector();  // the forward's above
                pr.y.fill_bytes(0xff);
                (*cud)(rt::StreamRef{});
                gpu.synchronize();
                worst = compare("output", values_of(dt, pr.y.to_vector()), values_of(dt, kiln_y));
              } else {
                // On the statistics kiln's forward saved above; dscale and dbias in f32.
                cudnn_dx.emplace(n, gpu);
                dscale32.emplace(std::size_t(s.cols), gpu);
                if (layer) dbias32.emplace(std::size_t(s.cols), gpu);
                cud->bind_backward(pr.dy.data(), pr.x.data(), weight32->data(), pr.mean.data(),
                                   pr.rstd.data(), cudnn_dx->data(), dscale32->data(),
                                   layer ? dbias32->data() : nullptr);
                cudnn_dx->fill_bytes(0xff);
                dscale32->fill_bytes(0xff);
                if (layer) dbias32->fill_bytes(0xff);
                (*cud)(rt::StreamRef{});
                gpu.synchronize();
                worst = compare("dx", values_of(dt, cudnn_dx->to_vector()),
                                values_of(dt, pr.dx.to_vector()));
                worst = std::max(worst, compare("dweight", values_of(dscale32->to_vector()),
                                                values_of(dt, pr.dw.to_vector())));
                if (layer) {
                  worst = std::max(worst, compare("dbias", values_of(dbias32->to_vector()),
                                                  values_of(dt, pr.db.to_vector())));
                }
              }
              std::printf("cuDNN's %s matches kiln's (largest difference %.2e of |kiln| + 1)\n",
                          backward ? "dx, dweight and dbias" : "output", worst);
              bench.add(
                  "cudnn", [&](rt::StreamRef st) { (*cud)(st); }, bytes);
            } catch (const std::exception& e) {
              std::printf("cuDNN left out: %s\n", e.what());
              cud.reset();
            }
          }
#endif
          // --sweep over the backward's candidates: each timed as a call runs it, its dx,
          // dweight and dbias first compared with the op's own kernel's.
          if (sweep && backward) {
            auto& factory = ops::norm_backward_factory();
            const ops::NormBackwardParams p{kind, dt, s.cols, true, layer, s.rows};
            ops::NormBackwardParams bucket = p;
            bucket.rows = ops::detail::row_bucket(s.rows);
            const auto configs = factory.configs(bucket, props);
            auto built = factory.build_all(bucket, configs, gpu);
            const std::vector<T> dx_ref = pr.dx.to_vector(), dw_ref = pr.dw.to_vector();
            const std::vector<T> db_ref = layer ? pr.db.to_vector() : std::vector<T>{};
            // Throws where `got` is more than 2% of |want| + 1 from `want`.
            auto differs = [&](const std::vector<T>& got, const std::vector<T>& want,
                               const char* what) {
              if (const auto far = compare_outputs(dt, got, want).second) {
                throw Error(
                    fmt::format("its {} differs from the op's at {}: {} against {}", what, *far,
                                decode(dt, reinterpret_cast<const unsigned char*>(&got[*far])),
                                decode(dt, reinterpret_cast<const unsigned char*>(&want[*far]))));
              }
            };
            for (std::size_t i = 0; i < configs.size(); ++i) {
              const std::string kname = factory.kernel_name(bucket, configs[i]);
              if (kname == name) continue;
              try {
                if (ops::detail::norm_backward_split(p, configs[i])) {
                  throw Error(
                      "multi pass with the sums runs as the call's split plan, as every "
                      "such candidate does");
                }
                auto k = built[i].kernel;
                if (!k) throw Error(built[i].reason);
                // (The timed run holds the kernel, whose plan points at it, and the buffer.)
                auto plan = std::make_shared<const ops::detail::NormBackwardPlan>(
                    ops::detail::norm_backward_plan_for(p, *k, gpu));
                auto partial = std::make_shared<rt::DeviceBuffer<float>>(
                    std::size_t(std::max<std::int64_t>(1, plan->partial_floats)), gpu);
                pr.dx.fill_bytes(0xff);
                pr.dw.fill_bytes(0xff);
                if (layer) pr.db.fill_bytes(0xff);
                pr.backward_with(*plan, *partial, rt::StreamRef{});
                gpu.synchronize();
                differs(pr.dx.to_vector(), dx_ref, "dx");
                differs(pr.dw.to_vector(), dw_ref, "dweight");
                if (layer) differs(pr.db.to_vector(), db_ref, "dbias");
                bench.add(
                    kname,
                    [&, k, plan, partial](rt::StreamRef st) {
                      pr.backward_with(*plan, *partial, st);
                    },
                    bytes);
              } catch (const std::exception& e) {
                std::printf("sweep: %s left out: %s\n", kname.c_str(), e.what());
              }
            }
          }
          // --sweep: every candidate config, compiled in parallel through the kernel cache,
          // each checked as the op's own kernel was before it is timed.
          if (sweep && !backward) {
            auto& factory = ops::norm_factory();
            const NormParams bucket{kind, dt, s.cols, residual, ops::detail::row_bucket(s.rows)};
            const auto configs = factory.configs(bucket, props);
            auto built = factory.build_all(bucket, configs, gpu);
            for (std::size_t i = 0; i < configs.size(); ++i) {
              const std::string kname = factory.kernel_name(bucket, configs[i]);
              if (kname == name) continue;
              try {
                auto k = built[i].kernel;
                if (!k) throw Error(built[i].reason);
                pr.y.fill_bytes(0xff);
                pr.forward_with(*k, rt::StreamRef{});
                check_y();
                bench.add(
                    kname, [&, k](rt::StreamRef st) { pr.forward_with(*k, st); }, bytes);
              } catch (const std::exception& e) {
                std::printf("sweep: %s left out: %s\n", kname.c_str(), e.what());
              }
            }
          }
          std::printf("## %s %s %lld x %d\n\n", ops::detail::norm_name(kind),
                      std::string(gen::to_string(dt)).c_str(), (long long)s.rows, s.cols);
          const auto results = bench.run();
          std::fputs(prof::markdown(results).c_str(), stdout);
          std::printf("\n");
          const double copy = gbps_of(results, "copy");
          const double kiln_gbps = gbps_of(results, "kiln " + name);
          const double us = kiln_gbps > 0 ? bytes / kiln_gbps / 1e3 : 0.0;
          const double cudnn_gbps = gbps_of(results, "cudnn");
          const auto [best, best_gbps] = bench::best_kernel(results, name, kiln_gbps);
          summary += fmt::format(
              "| {} | {} x {} | {} | {} | {:.0f} | {:.0f} | {:.1f}% | {:.1f} | {} | {} | {} |\n",
              ops::detail::norm_name(kind), s.rows, s.cols, std::string(gen::to_string(dt)), name,
              copy, kiln_gbps, 100 * kiln_gbps / copy, us,
              cudnn_gbps > 0 ? fmt::format("{:.0f}", cudnn_gbps) : "-",
              cudnn_gbps > 0 ? fmt::format("{:.2f}x", kiln_gbps / cudnn_gbps) : "-",
              sweep ? fmt::format("{} {:.0f} ({:.1f}%)", best, best_gbps, 100 * best_gbps / copy)
                    : "-");
          json["problems"].push_back(
              {{"op", ops::detail::norm_name(kind)},
               {"rows", s.rows},
               {"cols", s.cols},
               {"dtype", std::string(gen::to_string(dt))},
               {"kernel", name},
               {"bytes", bytes},
               {"copy_gbps", copy},
               {"kiln_gbps", kiln_gbps},
               {"percent_of_copy", 100 * kiln_gbps / copy},
               {"cudnn_gbps", cudnn_gbps > 0 ? nlohmann::json(cudnn_gbps) : nlohmann::json()},
               {"best",
                sweep ? nlohmann::json{{"kernel", best}, {"gbps", best_gbps}} : nlohmann::json()},
               {"results", prof::to_json(results)}});
          if (copy_kernel) {
            bench::add_copy_kernel_share(summary, json["problems"].back(), kiln_gbps, results);
          }
        };
        if (dt == NormDType::f32) {
          bench_one(std::uint32_t{});
        } else {
          bench_one(std::uint16_t{});
        }
      }
    }
  }
  std::printf("# Summary\n\n%s", summary.c_str());
  if (!args.json_path.empty()) {
    std::ofstream f(args.json_path);
    f << json.dump(2) << '\n';
    if (!f.flush()) throw Error("norm: cannot write " + args.json_path);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
