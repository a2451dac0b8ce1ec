# Pretrained encoders (docs/encoders.md): the bert text encoder and the ViT / BERT loaders
# (launch/pretrained.c), their errors, parity with plain PyTorch (Debian torch, random weights),
# and the real all-MiniLM-L6-v2 weights against PyPI transformers.
add_executable(encoders_cli ${CMAKE_CURRENT_SOURCE_DIR}/encoders_cli.c)
target_link_libraries(encoders_cli PRIVATE tj_launch)

add_test(NAME encoders_minilm_vs_transformers
         COMMAND ${TIJEPA_PYENV} ${CMAKE_CURRENT_SOURCE_DIR}/encoders_minilm.py
                 --cli $<TARGET_FILE:encoders_cli>
                 --workdir ${CMAKE_CURRENT_BINARY_DIR}/encoders_minilm)
set_tests_properties(encoders_minilm_vs_transformers PROPERTIES TIMEOUT 180
                     LABELS "encoders;python")

tj_add_unit_test(test_pretrained SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pretrained.c
                 LIBS tj_launch TIMEOUT 60 LABELS encoders)
set_tests_properties(test_pretrained PROPERTIES ENVIRONMENT
                     "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan_hdf5.supp")

add_test(NAME encoders_vs_torch
         COMMAND ${TIJEPA_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/encoders_ref.py
                 --cli $<TARGET_FILE:encoders_cli>
                 --workdir ${CMAKE_CURRENT_BINARY_DIR}/encoders_vs_torch)
set_tests_properties(encoders_vs_torch PROPERTIES TIMEOUT 120 LABELS "encoders;reference")
