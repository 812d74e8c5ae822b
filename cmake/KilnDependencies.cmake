# kiln's dependencies, all header-only in use. Each is found as an installed package
# first and fetched only where missing. They are wrapped in kiln_* INTERFACE targets
# so kiln's export names its needs whichever way they were found.
include(GNUInstallDirs)
include(FetchContent)
find_package(Threads REQUIRED)

# fmt, header-only
find_package(fmt 9 QUIET)
if(NOT fmt_FOUND)
  FetchContent_Declare(fmt GIT_REPOSITORY https://github.com/fmtlib/fmt.git GIT_TAG 10.2.1)
  FetchContent_MakeAvailable(fmt)
endif()
add_library(kiln_fmt INTERFACE)
target_link_libraries(kiln_fmt INTERFACE $<BUILD_INTERFACE:fmt::fmt-header-only>)

# nlohmann_json
find_package(nlohmann_json 3.10 QUIET)
if(NOT nlohmann_json_FOUND)
  FetchContent_Declare(json URL https://github.com/nlohmann/json/releases/download/v3.11.3/json.tar.xz)
  FetchContent_MakeAvailable(json)
endif()
add_library(kiln_json INTERFACE)
target_link_libraries(kiln_json INTERFACE $<BUILD_INTERFACE:nlohmann_json::nlohmann_json>)

# xxHash, used inline (XXH_INLINE_ALL): only its header is needed
find_path(KILN_XXHASH_INCLUDE_DIR xxhash.h)
if(NOT KILN_XXHASH_INCLUDE_DIR)
  FetchContent_Declare(xxhash GIT_REPOSITORY https://github.com/Cyan4973/xxHash.git GIT_TAG v0.8.2)
  FetchContent_Populate(xxhash)
  set(KILN_XXHASH_INCLUDE_DIR ${xxhash_SOURCE_DIR})
endif()
add_library(kiln_xxhash INTERFACE)
target_include_directories(kiln_xxhash SYSTEM INTERFACE $<BUILD_INTERFACE:${KILN_XXHASH_INCLUDE_DIR}>)

# The CUDA toolkit's headers (no library is linked).
find_path(KILN_CUDA_INCLUDE_DIR cuda.h
  HINTS ENV CUDA_PATH ENV CUDA_HOME /usr/local/cuda
  PATH_SUFFIXES include)
