# io/ section 4: tar shards, shard specs, the streaming pipeline, synth, importers, data stats,
# and the WebDataset cross-checks (PyPI webdataset in ${TIJEPA_PYENV}).
foreach(t test_tar test_stream test_shard_spec test_synth test_import test_data_stats)
  tj_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS tj_io TIMEOUT 120
                   LABELS io)
endforeach()
