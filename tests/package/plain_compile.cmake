# cmake -P script: builds tests/package/plain/main.cpp with one compiler command, as README's
# "Use it without CMake" gives it (plus -Werror), and runs the program.
# Variables: CXX, KILN_INCLUDE, CUDA_INCLUDE, EXTRA_INCLUDES (;-list: dependencies fetched
# rather than installed), SOURCE, OUT.
set(includes -I${KILN_INCLUDE} -I${CUDA_INCLUDE})
foreach(dir IN LISTS EXTRA_INCLUDES)
  list(APPEND includes -I${dir})
endforeach()
set(command ${CXX} -std=c++20 -O1 -Wall -Wextra -Werror ${includes} ${SOURCE} -o ${OUT} -pthread -ldl)
string(REPLACE ";" " " shown "${command}")
message(STATUS "${shown}")
execute_process(COMMAND ${command} RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building without CMake failed:\n${out}${err}")
endif()
execute_process(COMMAND ${OUT} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the program built without CMake exited with ${rc}:\n${out}${err}")
endif()
message(STATUS "${out}")
