# The whole model against the PyTorch reference (tests/reference/): the C side dumps a case,
# /usr/bin/python3 (Debian's torch + h5py) recomputes it in float64 and compares.
add_executable(tj_dump_case ${CMAKE_CURRENT_SOURCE_DIR}/reference/dump_case.c)
target_include_directories(tj_dump_case PRIVATE ${HDF5_C_INCLUDE_DIRS})
target_link_libraries(tj_dump_case PRIVATE tj_model ${HDF5_C_LIBRARIES})

function(tj_reference_case name)
  set(case ${CMAKE_CURRENT_BINARY_DIR}/reference_${name}.h5)
  string(JOIN " " options ${ARGN})
  add_test(NAME reference_${name}
           COMMAND bash -c "$<TARGET_FILE:tj_dump_case> ${case} ${options} && ${TIJEPA_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_model.py ${case}")
  set_tests_properties(reference_${name} PROPERTIES TIMEOUT 300 LABELS "reference")
endfunction()

tj_reference_case(paper_jepa --mode paper --nce 0)
tj_reference_case(paper_nce --mode paper --nce 0.5 --negatives 3)
tj_reference_case(scratch_jepa --mode scratch --nce 0)
tj_reference_case(scratch_nce --mode scratch --nce 0.5 --negatives 3)
tj_reference_case(paper_nce_positive_target --mode paper --nce 0.5 --negatives 3 --negative-target positive)
tj_reference_case(paper_nce_target_no_text --mode paper --nce 0.5 --negatives 3 --target-text none)
tj_reference_case(scratch_nce_target_no_text --mode scratch --nce 0.5 --negatives 2 --target-text none)
tj_reference_case(paper_txtproj_clip --mode paper --nce 0.5 --negatives 2 --txt-dim 64 --clip 0.5)
tj_reference_case(ijepa --mode ijepa --nce 0)
