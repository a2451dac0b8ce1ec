# mpi/ tests: CMocka programs run alone (singleton) and under mpirun on 1..4 ranks, the abort
# tests (a failing rank must end the whole job), and the overlap demo.
set(TJ_MPI_RUN ${MPIEXEC_EXECUTABLE} ${MPIEXEC_ROOT_FLAGS})

foreach(prog test_mpi_buckets test_mpi_comm mpi_abort_prog mpi_overlap_demo)
  add_executable(${prog} ${CMAKE_CURRENT_SOURCE_DIR}/${prog}.c)
  target_link_libraries(${prog} PRIVATE tj_mpi)
endforeach()
target_link_libraries(test_mpi_buckets PRIVATE PkgConfig::CMOCKA m)
target_link_libraries(test_mpi_comm PRIVATE PkgConfig::CMOCKA)

# Singleton mode: no mpirun.
foreach(prog test_mpi_buckets test_mpi_comm)
  add_test(NAME ${prog}_singleton COMMAND ${prog})
  set_tests_properties(${prog}_singleton PROPERTIES TIMEOUT 60 LABELS "mpi")
endforeach()

foreach(np 1 2 3 4)
  add_test(NAME test_mpi_buckets_np${np} COMMAND ${TJ_MPI_RUN} -n ${np} $<TARGET_FILE:test_mpi_buckets>)
  set_tests_properties(test_mpi_buckets_np${np} PROPERTIES PROCESSORS ${np} TIMEOUT 90 LABELS "mpi")
endforeach()
foreach(np 2 3 4)
  add_test(NAME test_mpi_comm_np${np} COMMAND ${TJ_MPI_RUN} -n ${np} $<TARGET_FILE:test_mpi_comm>)
  set_tests_properties(test_mpi_comm_np${np} PROPERTIES PROCESSORS ${np} TIMEOUT 60 LABELS "mpi")
endforeach()

# A failing rank ends the whole 3-rank job, non-zero, within 30 s, with a message naming it.
set(TJ_EXPECT_FAILURE bash ${CMAKE_CURRENT_SOURCE_DIR}/mpi_expect_failure.sh 30)
set(TJ_ABORT_JOB ${TJ_MPI_RUN} -n 3 $<TARGET_FILE:mpi_abort_prog>)
add_test(NAME test_mpi_abort_dist_abort COMMAND ${TJ_EXPECT_FAILURE}
         "tijepa: rank 1 \\([^)]+\\): deliberate failure in the abort test" ${TJ_ABORT_JOB} abort)
add_test(NAME test_mpi_abort_mpi_error COMMAND ${TJ_EXPECT_FAILURE}
         "tijepa: rank 1 \\([^)]+\\): MPI error at .*mpi_abort_prog\\.c:[0-9]+ in MPI_Send.*invalid rank"
         ${TJ_ABORT_JOB} mpi-error)
add_test(NAME test_mpi_abort_crash COMMAND ${TJ_EXPECT_FAILURE}
         "process rank 1 .*(signal 11|Segmentation fault)|Process name: \\[\\[[0-9]+,[0-9]+\\],1\\]" ${TJ_ABORT_JOB} crash)
add_test(NAME test_mpi_abort_exit COMMAND ${TJ_EXPECT_FAILURE}
         "Process name: \\[\\[[0-9]+,[0-9]+\\],1\\]" ${TJ_ABORT_JOB} exit)
add_test(NAME test_mpi_abort_layout COMMAND ${TJ_EXPECT_FAILURE}
         "tijepa: rank [0-9]+ \\([^)]+\\): .*the ranks formed different gradient buckets" ${TJ_ABORT_JOB} layout)
foreach(t dist_abort mpi_error crash exit layout)
  set_tests_properties(test_mpi_abort_${t} PROPERTIES PROCESSORS 3 TIMEOUT 45 LABELS "mpi")
endforeach()

# Overlap: bucket allreduces start while the simulated backward still computes (orderings only).
add_test(NAME test_mpi_overlap COMMAND ${TJ_MPI_RUN} -n 2 $<TARGET_FILE:mpi_overlap_demo>)
set_tests_properties(test_mpi_overlap PROPERTIES PROCESSORS 2 TIMEOUT 60 LABELS "mpi")

# Open MPI leaks by design (plugins, global state), which LeakSanitizer would report as failures
# of every MPI test in a TIJEPA_SANITIZE build; address and UB checks stay on.
set_property(TEST test_mpi_buckets_singleton test_mpi_comm_singleton test_mpi_buckets_np1
             test_mpi_buckets_np2 test_mpi_buckets_np3 test_mpi_buckets_np4 test_mpi_comm_np2
             test_mpi_comm_np3 test_mpi_comm_np4 test_mpi_abort_dist_abort test_mpi_abort_mpi_error
             test_mpi_abort_crash test_mpi_abort_exit test_mpi_abort_layout test_mpi_overlap
             APPEND PROPERTY ENVIRONMENT ASAN_OPTIONS=detect_leaks=0)
