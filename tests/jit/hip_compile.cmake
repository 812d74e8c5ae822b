# cmake -P script: compiles SOURCE for gfx942 with clang's HIP mode and checks that the
# result is an AMDGPU code object for gfx942 holding every kernel named in KERNELS.
# Variables: CLANG, READELF, SOURCE, INCLUDE, STD, OUT, KERNELS (;-list).
execute_process(
  COMMAND ${CLANG} -x hip --offload-arch=gfx942 -nogpulib -nogpuinc --cuda-device-only
          --no-gpu-bundle-output -O2 -std=c++${STD} -Wall -Wextra -Werror -I${INCLUDE}
          -c ${SOURCE} -o ${OUT}
  RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "HIP compile of ${SOURCE} for gfx942 failed:\n${out}${err}")
endif()
execute_process(COMMAND ${READELF} -h -s ${OUT} RESULT_VARIABLE rc OUTPUT_VARIABLE elf ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "readelf failed on ${OUT}: ${err}")
endif()
if(NOT elf MATCHES "EM_AMDGPU" OR NOT elf MATCHES "gfx942")
  message(FATAL_ERROR "${OUT} is not a gfx942 AMDGPU code object:\n${elf}")
endif()
foreach(k IN LISTS KERNELS)
  if(NOT elf MATCHES " ${k}\\.kd\n")
    message(FATAL_ERROR "kernel ${k} is missing from ${OUT}:\n${elf}")
  endif()
endforeach()
message(STATUS "gfx942 code object with kernels: ${KERNELS}")
