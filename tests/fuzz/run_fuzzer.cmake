# Runs one fuzz target for ctest (label fuzz).
#
#   cmake -DFUZZER=exe -DNAME=name -DCORPUS=dir -DWORK=dir -DMODE=libfuzzer|replay
#         [-DSECONDS=60] [-DMAX_LEN=4096] -P run_fuzzer.cmake
#
# replay: runs the target once on each input of the committed corpus (a build without
# libFuzzer). libfuzzer: fuzzes for SECONDS, starting from the committed corpus (read, never
# written: new inputs go to WORK/corpus) and saving what fails in WORK/artifacts; fails,
# naming the reproducer and the command that replays it, if anything was found.
if(MODE STREQUAL "replay")
  execute_process(COMMAND ${FUZZER} ${CORPUS} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "kiln: ${NAME} failed on an input of ${CORPUS} (exit ${rc}); the "
                        "input it ran last is named above")
  endif()
  return()
endif()

if(NOT SECONDS)
  set(SECONDS 60)
endif()
if(NOT MAX_LEN)
  set(MAX_LEN 4096)
endif()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -max_len=${MAX_LEN} -timeout=30
          -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/
          ${WORK}/corpus ${CORPUS}
  RESULT_VARIABLE rc)
file(GLOB found ${WORK}/artifacts/*)
# libFuzzer also saves inputs that merely ran slowly (over 10 s: a loaded machine under the
# sanitizers can take that long on an ordinary input). They are reported, not failed; an
# input that hangs still fails, as a timeout (-timeout=30).
file(GLOB slow ${WORK}/artifacts/slow-unit-*)
if(slow)
  list(REMOVE_ITEM found ${slow})
  foreach(input IN LISTS slow)
    message(STATUS "kiln: ${NAME}: an input ran slowly (not a failure): ${input}")
  endforeach()
endif()
if(NOT rc EQUAL 0 OR found)
  set(how "")
  foreach(input IN LISTS found)
    string(APPEND how "\n  reproducer: ${input}\n  replay it:  ${FUZZER} ${input}")
  endforeach()
  message(FATAL_ERROR
    "kiln: ${NAME} found an input that breaks a property or crashes (exit ${rc}).${how}\n"
    "Fix the bug, then add the input to ${CORPUS}/ as a regression input.")
endif()
