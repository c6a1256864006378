# gpu.cmake: the CUDA backend's tests (issue 3), included by tests/CMakeLists.txt when
# TMS_HAVE_CUDA. Each compares the GPU against the CPU backend; with no usable GPU each
# exits 77, which CTest reports as skipped (never as passed). Run only these with
# `ctest -L gpu`.
set(TMS_GPU_TESTS
  gpu_batch    # the batch drawn on the GPU equals the CPU's, bit for bit
  gpu_step     # gradients and one step, every model combination, 1e-5 relative
  gpu_train    # 600-step runs: early loss curve, final evaluation and geometry; table windows vs the CPU
  gpu_nanfill  # outputs NaN-filled before each kernel are all overwritten (evaluation too)
  gpu_memory   # a problem too big fails at once, saying how many instances fit
  gpu_eval     # the final evaluation (loss, standard error) against a per-sample CPU reference
  gpu_chunks   # 65,537 instances: the launchers' chunks over gridDim.y, one step and the evaluation
  gpu_diverge  # divergence freezing as on the CPU, inside the graph; frozen instances stay frozen on resume
  gpu_runs     # whole runs: feature sets and the abs task against the CPU, TF32, shards bit-identical
  gpu_fused    # the fused path (--cuda-path fused): every variant, block sizes, chunks, divergence, whole runs
)
foreach(t ${TMS_GPU_TESTS})
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/gpu/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE tmscore)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES SKIP_RETURN_CODE 77 LABELS gpu)
endforeach()
set_tests_properties(gpu_train gpu_fused PROPERTIES TIMEOUT 600)
