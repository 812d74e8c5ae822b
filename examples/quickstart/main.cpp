// kiln quickstart, the whole path: a typed Spec -> generated header -> compile (or cache
// hit) -> launch on the GPU -> check against the CPU. Without a GPU it compiles for sm_90
// and says so.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kiln/gen.hpp"
#include "kiln/jit.hpp"
#include "kiln/rt.hpp"

// The same dimensions on the host side, for typed views of device buffers.
KILN_DIM(ROW);
KILN_DIM(COL);

int main() try {
  using namespace kiln;
  constexpr int cols = 256;
  const int rows = 1000;

  // 1. Describe the kernel's tensors; kiln generates the header the kernel includes.
  gen::Spec spec;
  spec.dim("ROW")
      .dim("COL")
      .constant("COLS", cols)
      .tensor(gen::TensorSpec("In", gen::DType::f32)
                  .read_only()
                  .dim("ROW", gen::dynamic)
                  .dim("COL", cols))
      .tensor(gen::TensorSpec("Scale", gen::DType::f32).read_only().dim("COL", cols))
      .tensor(gen::TensorSpec("Out", gen::DType::f32).dim("ROW", gen::dynamic).dim("COL", cols));

  jit::Program program = jit::program_from_file(QUICKSTART_KERNEL);
  program.name = "scale_rows.cu";
  program.headers.push_back({"spec.hpp", spec.header()});

  // 2. Compile for the GPU here (or for sm_90 when there is none), through the caches.
  const bool have_gpu = rt::device_count() > 0;
  jit::Options options;
  options.target = have_gpu ? rt::Device(0).arch() : "sm_90";
  auto& cache = jit::KernelCache::global();
  auto t0 = std::chrono::steady_clock::now();
  auto binary = cache.get(program, options);
  double get_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto st = cache.stats();
  std::printf("scale_rows for %s: %s in %.1f ms (%zu-byte binary)\n", options.target.c_str(),
              st.disk_hits ? "loaded from the disk cache" : "compiled", get_ms,
              binary->code.size());
  if (!have_gpu) {
    std::printf("no GPU found: compiled only (this is fine on a machine without one)\n");
    return 0;
  }

  // 3. Launch on device 0 with typed views of device buffers, and time it.
  rt::Device device(0);
  rt::Function fn = rt::load_module(binary, device).function("scale_rows");
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> in(std::size_t(rows) * cols), scale(cols);
  for (auto& v : in) v = dist(rng);
  for (auto& v : scale) v = dist(rng);

  rt::DeviceBuffer<float> d_in(in.size(), device), d_scale(scale.size(), device),
      d_out(in.size(), device);
  d_in.copy_from(in);
  d_scale.copy_from(scale);
  d_out.fill_bytes(0xff);  // NaN: an element the kernel misses cannot pass the check

  rt::Stream stream(device);
  rt::Event start(device), stop(device);
  start.record(stream);
  rt::launch(fn, {{unsigned(rows)}, {128}, 0, stream},
             d_in.tensor<Extent<ROW, dynamic>, Extent<COL, cols>>(ROW(rows)),
             d_scale.tensor<Extent<COL, cols>>(),
             d_out.tensor<Extent<ROW, dynamic>, Extent<COL, cols>>(ROW(rows)));
  stop.record(stream);
  stop.synchronize();

  // 4. Check every element against a double-precision CPU reference.
  std::vector<float> out = d_out.to_vector();
  double worst = 0;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      double want =
          double(in[std::size_t(r) * cols + std::size_t(c)]) * double(scale[std::size_t(c)]);
      double got = out[std::size_t(r) * cols + std::size_t(c)];
      double err =
          std::isnan(got) ? INFINITY : std::abs(got - want) / std::max(1e-30, std::abs(want));
      worst = std::max(worst, err);
    }
  }
  std::printf("ran on %s in %.3f ms; %d x %d elements, worst relative error %.2e: %s\n",
              device.properties().name.c_str(), stop.elapsed_ms_since(start), rows, cols, worst,
              worst < 1e-6 ? "correct" : "WRONG");
  return worst < 1e-6 ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
