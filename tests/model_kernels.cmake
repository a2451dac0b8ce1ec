# Kernel tests (model/ section 1): finite-difference gradients, double-precision forwards,
# hand-made layouts and thread-count determinism.
tj_add_unit_test(test_kernels_dense SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_kernels_dense.c
                 LIBS tj_model TIMEOUT 60 LABELS model)
tj_add_unit_test(test_kernels_attention SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_kernels_attention.c
                 LIBS tj_model TIMEOUT 60 LABELS model)
tj_add_unit_test(test_kernels_tokens SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_kernels_tokens.c
                 LIBS tj_model TIMEOUT 60 LABELS model)
tj_add_unit_test(test_kernels_determinism
                 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_kernels_determinism.c LIBS tj_model
                 TIMEOUT 60 LABELS model)
