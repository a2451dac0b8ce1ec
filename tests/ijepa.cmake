# model.mode = ijepa (docs/encoders.md, "Your own image encoder: I-JEPA"): gradients against the
# PyTorch reference are reference_ijepa (tests/reference.cmake); this is the run end to end:
# 1 vs 2 ranks, resume, and its checkpoint as the frozen encoder of a paper-mode run.
add_test(NAME ijepa_stage1
         COMMAND env TIJEPA=${TIJEPA_BIN} WORK=${CMAKE_CURRENT_BINARY_DIR}/ijepa_stage1
                 PY=${TIJEPA_SYSTEM_PYTHON} bash ${CMAKE_CURRENT_SOURCE_DIR}/ijepa/ijepa_stage1.sh)
set_tests_properties(ijepa_stage1 PROPERTIES TIMEOUT 300 LABELS "encoders;ijepa;integration"
                     PROCESSORS 2)
