# checkpoints/: HDF5 checkpoints, safetensors, `tijepa ckpt`, and cross-checks with h5py and the
# PyPI safetensors package.
tj_add_unit_test(test_checkpoint SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint.c
                 LIBS tj_checkpoints LABELS checkpoints)
tj_add_unit_test(test_safetensors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_safetensors.c
                 LIBS tj_checkpoints m LABELS checkpoints)
