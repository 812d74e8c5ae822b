# kiln's dependencies, all header-only in use. Each is found as an installed package
# first and fetched only where missing. kiln links the packages' own targets
# (fmt::fmt-header-only, nlohmann_json::nlohmann_json), so its export names them and
# kilnConfig.cmake finds them again with find_dependency. A fetched fmt or json is
# installed and exported alongside kiln when KILN_INSTALL is ON, so that kiln's export
# still resolves.
include(GNUInstallDirs)
include(FetchContent)
find_package(Threads REQUIRED)
# The oldest fmt and json kiln takes from a system package (kilnConfig.cmake asks for them too).
set(KILN_FMT_MIN_VERSION 9)
set(KILN_JSON_MIN_VERSION 3.10)

# fmt, header-only
if(NOT TARGET fmt::fmt-header-only)
  find_package(fmt ${KILN_FMT_MIN_VERSION} QUIET)
endif()
if(NOT TARGET fmt::fmt-header-only)
  set(FMT_INSTALL ${KILN_INSTALL})
  FetchContent_Declare(fmt GIT_REPOSITORY https://github.com/fmtlib/fmt.git GIT_TAG 10.2.1)
  FetchContent_MakeAvailable(fmt)
endif()

# nlohmann_json
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json ${KILN_JSON_MIN_VERSION} QUIET)
endif()
if(NOT TARGET nlohmann_json::nlohmann_json)
  set(JSON_Install ${KILN_INSTALL})
  FetchContent_Declare(json URL https://github.com/nlohmann/json/releases/download/v3.11.3/json.tar.xz)
  FetchContent_MakeAvailable(json)
endif()

# xxHash, used inline (XXH_INLINE_ALL): only its header is needed. A fetched xxhash.h
# is installed next to kiln's headers (see KilnInstall.cmake).
find_path(KILN_XXHASH_INCLUDE_DIR xxhash.h)
if(NOT KILN_XXHASH_INCLUDE_DIR)
  FetchContent_Declare(xxhash GIT_REPOSITORY https://github.com/Cyan4973/xxHash.git GIT_TAG v0.8.2)
  FetchContent_Populate(xxhash)
  set(KILN_XXHASH_INCLUDE_DIR ${xxhash_SOURCE_DIR})
  set(KILN_XXHASH_FETCHED ON)
endif()

# The CUDA toolkit's headers (no library is linked).
find_path(KILN_CUDA_INCLUDE_DIR cuda.h
  HINTS ENV CUDA_PATH ENV CUDA_HOME /usr/local/cuda
  PATH_SUFFIXES include)
