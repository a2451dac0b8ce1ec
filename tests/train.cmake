# Training integration tests over MPI (tests/train/): rank-count equivalence, bit-exact and
# elastic resume. They start up to 4 ranks (--oversubscribe) on the build's tijepa.
foreach(t rank_equivalence resume)
  add_test(NAME train_${t}
           COMMAND env TIJEPA=${TIJEPA_BIN} WORK=${CMAKE_CURRENT_BINARY_DIR}/train_${t}
                   CONFIG=${CMAKE_SOURCE_DIR}/launch/configs/tiny.ini
                   bash ${CMAKE_CURRENT_SOURCE_DIR}/train/${t}.sh)
  set_tests_properties(train_${t} PROPERTIES TIMEOUT 600 LABELS "mpi;integration" PROCESSORS 2)
endforeach()
