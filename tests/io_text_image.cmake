# io/ sections 1-3: configs, image decoding/resizing/encoding, the WordPiece tokenizer and the
# vocabulary builder (with `tijepa vocab`), and a cross-check of the tokenizer against an
# independent Python implementation (tests/reference/wordpiece_ref.py).
tj_add_unit_test(test_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_config.c
                 LIBS tj_io TIMEOUT 60 LABELS io)
tj_add_unit_test(test_image SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_image.c
                 LIBS tj_io TIMEOUT 120 LABELS io)
tj_add_unit_test(test_tokenizer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer.c
                 ${CMAKE_SOURCE_DIR}/launch/cmd_vocab.c LIBS tj_io TIMEOUT 60 LABELS io)
# cmd_vocab.c is compiled in (not tj_launch, which would pull in every library); launch.h
# includes the model and checkpoint headers.
target_include_directories(test_tokenizer PRIVATE ${CMAKE_SOURCE_DIR}/launch ${CMAKE_SOURCE_DIR}/model
                           ${CMAKE_SOURCE_DIR}/checkpoints)

add_executable(tokenize_cli ${CMAKE_CURRENT_SOURCE_DIR}/tokenize_cli.c)
target_link_libraries(tokenize_cli PRIVATE tj_io)
add_test(NAME tokenizer_vs_reference
         COMMAND ${TIJEPA_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/wordpiece_ref.py
                 --cli $<TARGET_FILE:tokenize_cli>
                 --workdir ${CMAKE_CURRENT_BINARY_DIR}/tokenizer_vs_reference)
set_tests_properties(tokenizer_vs_reference PROPERTIES TIMEOUT 120 LABELS "io;reference")
