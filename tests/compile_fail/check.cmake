# cmake -P script: a compile-fail case in fmt's manner. SOURCE must compile as it is and
# must NOT compile with -DKILN_COMPILE_FAIL; the compiler's error must match the regex
# on the source's "// expect: " line, so a case cannot pass by failing for another reason.
# The compiler runs in the C locale so its quotes are plain ASCII.
# Variables: CXX, COMPILER_ID, SOURCE, INCLUDE.
file(STRINGS ${SOURCE} expect_lines REGEX "^// expect: ")
list(GET expect_lines 0 expect)
string(REPLACE "// expect: " "" expect "${expect}")

set(flags -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I${INCLUDE})
execute_process(COMMAND ${CMAKE_COMMAND} -E env LC_ALL=C LANG=C ${CXX} ${flags} ${SOURCE}
                RESULT_VARIABLE ok_rc ERROR_VARIABLE ok_err OUTPUT_QUIET)
if(NOT ok_rc EQUAL 0)
  message(FATAL_ERROR "the valid variant of ${SOURCE} does not compile, so the case proves nothing:\n${ok_err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E env LC_ALL=C LANG=C ${CXX} ${flags} -DKILN_COMPILE_FAIL ${SOURCE}
                RESULT_VARIABLE bad_rc ERROR_VARIABLE bad_err OUTPUT_QUIET)
if(bad_rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled with KILN_COMPILE_FAIL: the mistake it holds is not caught")
endif()
# The expected wording is GCC's for language errors; other compilers only have to reject.
if(COMPILER_ID STREQUAL "GNU" AND NOT bad_err MATCHES "${expect}")
  message(FATAL_ERROR "${SOURCE} failed to compile, but not with an error matching '${expect}':\n${bad_err}")
endif()
message(STATUS "rejected as expected ('${expect}')")
