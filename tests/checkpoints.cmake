# checkpoints/: HDF5 checkpoints, safetensors, `tijepa ckpt`, and cross-checks with h5py and the
# PyPI safetensors package.
tj_add_unit_test(test_checkpoint SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint.c
                 LIBS tj_checkpoints LABELS checkpoints)
tj_add_unit_test(test_safetensors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_safetensors.c
                 LIBS tj_checkpoints m LABELS checkpoints)
add_executable(ckpt_fixture ${CMAKE_CURRENT_SOURCE_DIR}/ckpt_fixture.c)
target_link_libraries(ckpt_fixture PRIVATE tj_checkpoints m)
add_test(NAME ckpt_h5py
         COMMAND ${TIJEPA_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/check_checkpoint_h5py.py
                 $<TARGET_FILE:ckpt_fixture> ${CMAKE_CURRENT_BINARY_DIR}/ckpt_h5py)
add_test(NAME safetensors_pypi
         COMMAND ${TIJEPA_PYENV} ${CMAKE_CURRENT_SOURCE_DIR}/check_safetensors_pypi.py
                 $<TARGET_FILE:ckpt_fixture> ${CMAKE_CURRENT_BINARY_DIR}/safetensors_pypi)
set_tests_properties(ckpt_h5py safetensors_pypi PROPERTIES TIMEOUT 120 LABELS "checkpoints;python")
tj_add_unit_test(test_cmd_ckpt SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cmd_ckpt.c
                 LIBS tj_launch LABELS checkpoints)
set_tests_properties(test_checkpoint PROPERTIES ENVIRONMENT
                     "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan_hdf5.supp")
