# One packaging test step, run with cmake -P in a fresh scratch build directory.
#   -DMODE=install       configure kiln (KILN_DIR) alone in BINARY_DIR, build it, and
#                        cmake --install it to PREFIX
#   -DMODE=subdirectory|fetchcontent|find_package
#                        configure CONSUMER_DIR in BINARY_DIR taking kiln that way
#                        (from KILN_DIR, or installed in PREFIX), build it, run its test
# and GENERATOR, MAKE_PROGRAM, CXX_COMPILER, CONFIG: the parent build's.
cmake_minimum_required(VERSION 3.21)

function(run)
  execute_process(COMMAND ${ARGN} COMMAND_ECHO STDOUT COMMAND_ERROR_IS_FATAL ANY)
endfunction()

set(configure -G "${GENERATOR}")
if(CONFIG)
  list(APPEND configure -DCMAKE_BUILD_TYPE=${CONFIG})
else()
  set(CONFIG Debug)  # what a multi-config generator builds by default
endif()
if(MAKE_PROGRAM)
  list(APPEND configure -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(CXX_COMPILER)
  list(APPEND configure -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()

file(REMOVE_RECURSE "${BINARY_DIR}")
if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  run(${CMAKE_COMMAND} -S ${KILN_DIR} -B ${BINARY_DIR} ${configure}
      -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_EXAMPLES=OFF -DKILN_BUILD_BENCHMARKS=OFF)
  run(${CMAKE_COMMAND} --build ${BINARY_DIR} --config ${CONFIG})
  run(${CMAKE_COMMAND} --install ${BINARY_DIR} --config ${CONFIG} --prefix ${PREFIX})
  # The installed package must not point back into this machine's source or build tree.
  file(GLOB_RECURSE exported "${PREFIX}/*/kilnTargets.cmake" "${PREFIX}/*/kilnConfig.cmake")
  if(NOT exported)
    message(FATAL_ERROR "no kilnConfig.cmake/kilnTargets.cmake under ${PREFIX}")
  endif()
  foreach(f IN LISTS exported)
    file(READ ${f} text)
    foreach(dir IN ITEMS ${KILN_DIR} ${BINARY_DIR})
      string(FIND "${text}" "${dir}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "${f} names ${dir}")
      endif()
    endforeach()
  endforeach()
else()
  if(MODE STREQUAL "find_package")
    list(APPEND configure -DKILN_CONSUME=find_package -DCMAKE_PREFIX_PATH=${PREFIX})
  else()
    list(APPEND configure -DKILN_CONSUME=${MODE} -DKILN_SOURCE_DIR=${KILN_DIR})
  endif()
  run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${BINARY_DIR} ${configure})
  run(${CMAKE_COMMAND} --build ${BINARY_DIR} --config ${CONFIG})
  run(${CMAKE_CTEST_COMMAND} --test-dir ${BINARY_DIR} -C ${CONFIG} --output-on-failure)
endif()
