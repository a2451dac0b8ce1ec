# Feature shards (docs/encoders.md, "Feature shards"): the feature stream against the pixel stream
# (unit), and end to end: `tijepa encode`, then 10 training steps from features vs from pixels
# (losses within 1e-5 at every step), bad feature members, refusals.
tj_add_unit_test(test_features SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_features.c LIBS tj_io
                 TIMEOUT 60 LABELS "encoders;features")

add_test(NAME features_train_equals_pixels
         COMMAND env TIJEPA=${TIJEPA_BIN} WORK=${CMAKE_CURRENT_BINARY_DIR}/features_train
                 PY=${TIJEPA_SYSTEM_PYTHON}
                 bash ${CMAKE_CURRENT_SOURCE_DIR}/features/train_equals_pixels.sh)
set_tests_properties(features_train_equals_pixels PROPERTIES TIMEOUT 300
                     LABELS "encoders;features;integration" PROCESSORS 2)
