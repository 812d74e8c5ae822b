#!/usr/bin/env bash
# Bundles kiln's header-only dependencies (fmt, nlohmann_json, doctest, xxhash) from this
# machine's packages (scripts/install-deps.sh installs them) into DIR, with the minimal CMake
# package files find_package needs, and libxgboost (the factories' performance model) where
# it is installed. Copy DIR to a GPU machine that cannot install packages and build there
# with -DCMAKE_PREFIX_PATH=DIR (scripts/gpu-check.sh: KILN_CMAKE_ARGS=-DCMAKE_PREFIX_PATH=DIR);
# point KILN_XGBOOST_LIBRARY at DIR/lib/libxgboost.so.0 to use the model there.
#
#   scripts/bundle-deps.sh DIR
set -euo pipefail
dir="${1:?usage: scripts/bundle-deps.sh DIR}"
inc="${KILN_DEPS_INCLUDE:-/usr/include}"
for h in fmt nlohmann doctest xxhash.h; do
  [ -e "$inc/$h" ] || { echo "bundle-deps: $inc/$h is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
mkdir -p "$dir/include" "$dir/lib/cmake"
cp -r "$inc/fmt" "$inc/nlohmann" "$inc/doctest" "$inc/xxhash.h" "$dir/include/"

# package NAME TARGET [DEFINITIONS]: an INTERFACE IMPORTED target over DIR/include.
package() {
  local name="$1" target="$2" defs="${3:-}"
  mkdir -p "$dir/lib/cmake/$name"
  {
    echo 'get_filename_component(_kiln_deps "${CMAKE_CURRENT_LIST_DIR}/../../../include" ABSOLUTE)'
    echo "if(NOT TARGET $target)"
    echo "  add_library($target INTERFACE IMPORTED)"
    echo "  set_target_properties($target PROPERTIES INTERFACE_INCLUDE_DIRECTORIES \"\${_kiln_deps}\""
    if [ -n "$defs" ]; then echo "    INTERFACE_COMPILE_DEFINITIONS \"$defs\""; fi
    echo "  )"
    echo "endif()"
    echo "set(${name}_FOUND TRUE)"
  } > "$dir/lib/cmake/$name/${name}Config.cmake"
  # The version is the installed package's (any version request is met by what was copied).
  printf 'set(PACKAGE_VERSION "%s")\nset(PACKAGE_VERSION_COMPATIBLE TRUE)\nset(PACKAGE_VERSION_EXACT FALSE)\n' \
    "${4:-999}" > "$dir/lib/cmake/$name/${name}ConfigVersion.cmake"
}
package fmt fmt::fmt-header-only "FMT_HEADER_ONLY=1"
echo 'if(NOT TARGET fmt::fmt)
  add_library(fmt::fmt INTERFACE IMPORTED)
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_LINK_LIBRARIES fmt::fmt-header-only)
endif()' >> "$dir/lib/cmake/fmt/fmtConfig.cmake"
package nlohmann_json nlohmann_json::nlohmann_json
package doctest doctest::doctest

for lib in libxgboost.so.0 libdmlc.so.0; do
  found="$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l && !f {print $NF; f = 1}' || true)"
  if [ -n "$found" ]; then cp -L "$found" "$dir/lib/"; fi
done
echo "bundle-deps: $dir (build with -DCMAKE_PREFIX_PATH=$dir)"
