// Every config a factory offers compiles for every NVIDIA target from its compile request,
// with no GPU (NVRTC); the one that must not compile fails with the source's own message.
#include <doctest/doctest.h>

#include <string>

#include "kiln/jit/compiler.hpp"
#include "scale_factory.hpp"

TEST_CASE("the scale factory's configs compile for sm_80, sm_86, sm_89 and sm_90") {
  factory_test::ScaleFactory f;
  const factory_test::ScaleParams p{1 << 20};
  for (const char* arch : {"sm_80", "sm_86", "sm_89", "sm_90"}) {
    const auto dev = factory_test::fake_device(arch);
    int compiled = 0;
    for (const auto& c : f.candidates(p, dev)) {
      auto req = f.compile_request(p, c, dev);
      const auto& compiler = kiln::jit::compiler_for(arch);
      if (c.broken) {
        CHECK_THROWS_WITH_AS(compiler.compile(req.program, req.options),
                             doctest::Contains("broken on purpose"), kiln::CompileError);
        continue;
      }
      const kiln::jit::Binary b = compiler.compile(req.program, req.options);
      CHECK(b.target == arch);
      CHECK(b.code.size() > 0);
      // The entry point carries the specialization.
      CHECK(b.code.find(f.kernel_name(p, c)) != std::string::npos);
      ++compiled;
    }
    CHECK(compiled == 13);
  }
}
