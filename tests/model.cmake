# The network: presets, parameter table, masks, negatives, schedules, determinism.
tj_add_unit_test(test_model SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model.c LIBS tj_model
                 TIMEOUT 120 LABELS model)
