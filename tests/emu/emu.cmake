# emu.cmake: the emulated CUDA of tests/emu (issue 9), included by tests/CMakeLists.txt.
# The real kernels/ sources, rewritten at build time by rewrite_launches.py (each <<<...>>>
# launch becomes a call of the emulator) and compiled for the host by g++ against NVIDIA's
# headers, with emu_runtime.cpp implementing the CUDA runtime and cuBLAS calls. No GPU and
# no libcudart/libcublas involved; nothing here is linked into the product `tms`.
#
# Targets: tmsemu (host/ + the emulated backend, AddressSanitizer + UBSan where the
# compiler has them), the GPU tests tests/gpu/test_gpu_*.c again as emu_gpu_* (label emu),
# tms_emu (host/main.c on the emulated backend) with cli_cuda and faults_cuda, and the
# mutation check emu_mutations (label emu_mutations). Needs python3, the CUDA headers
# (cuda_runtime_api.h, cublas_v2.h, curand_kernel.h) and Boost.Context (libboost-context-dev);
# without them it says why and adds nothing.

# the Python the other end-to-end tests use (tests/CMakeLists.txt): the one with numpy
find_program(TMS_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
set(TMS_EMU_PYTHON ${TMS_PYTHON})
find_path(TMS_EMU_CUDA_INCLUDE NAMES cuda_runtime_api.h cublas_v2.h curand_kernel.h
          HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
find_path(TMS_EMU_BOOST_INCLUDE NAMES boost/context/detail/fcontext.hpp)
find_library(TMS_EMU_BOOST_CONTEXT NAMES boost_context)
set(emu_missing "")
foreach(v TMS_EMU_PYTHON TMS_EMU_CUDA_INCLUDE TMS_EMU_BOOST_INCLUDE TMS_EMU_BOOST_CONTEXT)
  if(NOT ${v})
    list(APPEND emu_missing ${v})
  endif()
endforeach()
if(NOT EXISTS "${TMS_EMU_CUDA_INCLUDE}/cublas_v2.h" OR NOT EXISTS "${TMS_EMU_CUDA_INCLUDE}/curand_kernel.h")
  list(APPEND emu_missing "cublas_v2.h/curand_kernel.h")
endif()
if(emu_missing)
  message(STATUS "tms: emulated CUDA tests off (missing: ${emu_missing})")
  return()
endif()
enable_language(CXX)

set(emu_dir ${CMAKE_CURRENT_LIST_DIR})
set(emu_gen ${CMAKE_CURRENT_BINARY_DIR}/emu_gen)

# ---- the rewritten kernel sources
file(GLOB emu_kernel_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.cu
     ${PROJECT_SOURCE_DIR}/kernels/*.cuh
     ${PROJECT_SOURCE_DIR}/kernels/*.h)
set(emu_outputs "")
foreach(f ${emu_kernel_sources})
  get_filename_component(name ${f} NAME)
  list(APPEND emu_outputs ${emu_gen}/${name})
endforeach()
add_custom_command(OUTPUT ${emu_outputs}
  COMMAND ${TMS_EMU_PYTHON} ${emu_dir}/rewrite_launches.py ${emu_gen} ${emu_kernel_sources}
  DEPENDS ${emu_kernel_sources} ${emu_dir}/rewrite_launches.py
  COMMENT "tests/emu: rewriting the kernel launches of kernels/ for the emulator")
set_source_files_properties(${emu_gen}/cuda_backend.cu PROPERTIES LANGUAGE CXX GENERATED TRUE)

# ---- sanitizers, when the compiler can build and link them
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=address,undefined")
set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=address,undefined")
check_cxx_source_compiles("int main(void) { return 0; }" TMS_EMU_HAVE_SANITIZERS)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
set(emu_sanitize "")
if(TMS_EMU_HAVE_SANITIZERS AND NOT TMS_EMU_NO_SANITIZERS)
  set(emu_sanitize -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
else()
  message(STATUS "tms: emulated CUDA tests without AddressSanitizer/UBSan (not available)")
endif()

# ---- the library: the core sources (as tmscore has them) + the emulated backend + runtime
get_target_property(emu_core_sources tmscore SOURCES)
list(TRANSFORM emu_core_sources PREPEND ${PROJECT_SOURCE_DIR}/)
add_library(tmsemu STATIC ${emu_core_sources} ${emu_gen}/cuda_backend.cu ${emu_dir}/emu_runtime.cpp)
target_include_directories(tmsemu PUBLIC ${PROJECT_SOURCE_DIR}/host ${PROJECT_SOURCE_DIR}/kernels)
target_include_directories(tmsemu PRIVATE ${emu_gen} ${emu_dir})
target_include_directories(tmsemu SYSTEM PRIVATE ${TMS_EMU_CUDA_INCLUDE} ${TMS_EMU_BOOST_INCLUDE})
target_compile_definitions(tmsemu PUBLIC TMS_GIT_COMMIT="${TMS_GIT_COMMIT}" TMS_HAVE_CUDA)
target_compile_features(tmsemu PRIVATE cxx_std_17)
target_compile_options(tmsemu PUBLIC ${emu_sanitize})
target_link_options(tmsemu PUBLIC ${emu_sanitize})
set_source_files_properties(${emu_gen}/cuda_backend.cu PROPERTIES
  COMPILE_OPTIONS "-include;${emu_dir}/emu_prelude.h;-fno-strict-aliasing;-Wno-attributes;-Wno-unknown-pragmas;\
-Wno-unused-function")
# the emulator itself runs uninstrumented (it is not the code under test, and runs at every
# switch between CUDA threads); it tells AddressSanitizer about
# every switch of stacks (TMS_EMU_ASAN)
if(emu_sanitize)
  set_source_files_properties(${emu_dir}/emu_runtime.cpp PROPERTIES
    COMPILE_OPTIONS "-Wno-unused-function;-fno-sanitize=all" COMPILE_DEFINITIONS TMS_EMU_ASAN)
else()
  set_source_files_properties(${emu_dir}/emu_runtime.cpp PROPERTIES COMPILE_OPTIONS "-Wno-unused-function")
endif()
# the libraries tmscore links (whatever they become), less the real CUDA backend
get_target_property(emu_core_libs tmscore LINK_LIBRARIES)
list(REMOVE_ITEM emu_core_libs tmscuda)
target_link_libraries(tmsemu PUBLIC ${emu_core_libs} ${TMS_EMU_BOOST_CONTEXT})
set_target_properties(tmsemu PROPERTIES LINKER_LANGUAGE CXX)

# sanitizer settings of every emulated test; TMS_EMU_ORDER is left to the caller
set(emu_env "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1"
            "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" "TMS_EMU_STATS=1")

# ---- the GPU tests again, on the emulator
file(GLOB emu_gpu_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/gpu/test_gpu_*.c)
foreach(src ${emu_gpu_tests})
  get_filename_component(name ${src} NAME_WE)   # test_gpu_step
  string(REGEX REPLACE "^test_" "" t ${name})  # gpu_step
  add_executable(test_emu_${t} ${src})
  target_link_libraries(test_emu_${t} PRIVATE tmsemu)
  set_target_properties(test_emu_${t} PROPERTIES LINKER_LANGUAGE CXX)
  if(t STREQUAL "gpu_fused")
    # the fused kernel's reductions and barriers, in every thread order (issue 12)
    foreach(order forward reverse shuffle)
      add_test(NAME emu_${t}_${order} COMMAND test_emu_${t})
      set_tests_properties(emu_${t}_${order} PROPERTIES LABELS emu
                           ENVIRONMENT "${emu_env};TMS_EMU=1;TMS_EMU_ORDER=${order}" TIMEOUT 600)
    endforeach()
  else()
    add_test(NAME emu_${t} COMMAND test_emu_${t})
    set_tests_properties(emu_${t} PROPERTIES LABELS emu ENVIRONMENT "${emu_env};TMS_EMU=1" TIMEOUT 600)
  endif()
endforeach()

# ---- the emulator itself against what CUDA and cuBLAS document (test_emu.cu), in each order
add_custom_command(OUTPUT ${emu_gen}/self/test_emu.cu
  COMMAND ${TMS_EMU_PYTHON} ${emu_dir}/rewrite_launches.py ${emu_gen}/self ${emu_dir}/test_emu.cu
  DEPENDS ${emu_dir}/test_emu.cu ${emu_dir}/rewrite_launches.py
  COMMENT "tests/emu: rewriting the launches of test_emu.cu")
set_source_files_properties(${emu_gen}/self/test_emu.cu PROPERTIES LANGUAGE CXX GENERATED TRUE
  COMPILE_OPTIONS "-include;${emu_dir}/emu_prelude.h;-Wno-attributes;-Wno-unused-function")
add_executable(test_emu ${emu_gen}/self/test_emu.cu)
target_include_directories(test_emu SYSTEM PRIVATE ${TMS_EMU_CUDA_INCLUDE})
target_compile_features(test_emu PRIVATE cxx_std_17)
target_link_libraries(test_emu PRIVATE tmsemu)
foreach(order forward reverse shuffle)
  add_test(NAME emu_runtime_${order} COMMAND test_emu)
  set_tests_properties(emu_runtime_${order} PROPERTIES LABELS emu
                       ENVIRONMENT "${emu_env};TMS_EMU_ORDER=${order}")
endforeach()

# ---- tms on the emulated backend: the CLI and fault tests with --backend cuda
add_executable(tms_emu ${PROJECT_SOURCE_DIR}/host/main.c)
target_link_libraries(tms_emu PRIVATE tmsemu)
set_target_properties(tms_emu PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME cli_cuda COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:tms_emu>
         ${TMS_TEST_SCRATCH}/cli_cuda ${TMS_EMU_PYTHON} cuda)
add_test(NAME faults_cuda COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_faults.sh $<TARGET_FILE:tms_emu>
         ${TMS_TEST_SCRATCH}/faults_cuda ${TMS_EMU_PYTHON} cuda)
add_test(NAME cuda_path_emu COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_path.sh $<TARGET_FILE:tms_emu>
         ${TMS_TEST_SCRATCH}/cuda_path_emu ${TMS_EMU_PYTHON} emu)
add_test(NAME snapshots_cuda COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_snapshots.sh $<TARGET_FILE:tms_emu>
         ${TMS_TEST_SCRATCH}/snapshots_cuda ${TMS_EMU_PYTHON} cuda)
add_test(NAME snapshots_fused COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_snapshots.sh $<TARGET_FILE:tms_emu>
         ${TMS_TEST_SCRATCH}/snapshots_fused ${TMS_EMU_PYTHON} fused)
set_tests_properties(cli_cuda faults_cuda cuda_path_emu snapshots_cuda snapshots_fused PROPERTIES LABELS emu ENVIRONMENT "${emu_env};TMS_EMU=1"
                     TIMEOUT 600)

# ---- the mutation check: each planted defect must fail a test (tests/emu/mutation_check.sh)
add_test(NAME emu_mutations COMMAND ${emu_dir}/mutation_check.sh ${PROJECT_SOURCE_DIR}
         ${TMS_TEST_SCRATCH}/emu_mutations ${TMS_EMU_PYTHON})
set_tests_properties(emu_mutations PROPERTIES LABELS "emu;emu_mutations" TIMEOUT 900)
