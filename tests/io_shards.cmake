# io/ section 4: tar shards, shard specs, the streaming pipeline, synth, importers, data stats,
# and the WebDataset cross-checks (PyPI webdataset in ${TIJEPA_PYENV}).
foreach(t test_tar test_stream test_shard_spec test_synth test_import test_data_stats)
  tj_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS tj_io TIMEOUT 120
                   LABELS io)
endforeach()
# WebDataset compatibility, both directions (needs `tijepa synth`, `tijepa shard`, `tijepa data`).
foreach(check wds_tarwriter_to_tijepa wds_read_tijepa)
  add_test(NAME ${check}
           COMMAND ${TIJEPA_PYENV} ${CMAKE_CURRENT_SOURCE_DIR}/reference/${check}.py ${TIJEPA_BIN}
                   ${CMAKE_CURRENT_BINARY_DIR}/${check})
  set_tests_properties(${check} PROPERTIES TIMEOUT 120 LABELS "io;python")
endforeach()
# The data commands through the binary: reports, JSON, exit codes (system python, no packages).
add_test(NAME cli_data_commands
         COMMAND ${TIJEPA_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/cli_data_commands.py
                 ${TIJEPA_BIN} ${CMAKE_CURRENT_BINARY_DIR}/cli_data_commands)
set_tests_properties(cli_data_commands PROPERTIES TIMEOUT 120 LABELS "io")
