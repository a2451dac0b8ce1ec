# Evaluation: metrics and the linear probe (unit), metrics against a Python reference, the
# eval/score/search/explain commands end to end on a tiny checkpoint, and the plot script.
tj_add_unit_test(test_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics.c LIBS tj_model
                TIMEOUT 60 LABELS eval)

add_executable(tijepa_eval_cli ${CMAKE_CURRENT_SOURCE_DIR}/eval_cli.c)
target_link_libraries(tijepa_eval_cli PRIVATE tj_launch)

# The metrics against an independent NumPy reference (sklearn's definitions written out).
add_executable(metrics_cli ${CMAKE_CURRENT_SOURCE_DIR}/metrics_cli.c)
target_link_libraries(metrics_cli PRIVATE tj_model)
add_test(NAME eval_metrics_reference
         COMMAND ${TIJEPA_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/check_metrics.py
                 $<TARGET_FILE:metrics_cli> ${CMAKE_CURRENT_BINARY_DIR}/eval_metrics_reference)
set_tests_properties(eval_metrics_reference PROPERTIES TIMEOUT 60 LABELS "eval")

# eval / score / search / explain and the training hook on a tiny checkpoint made by the test.
add_test(NAME eval_commands
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/eval_commands.sh ${TIJEPA_BIN}
                 $<TARGET_FILE:tijepa_eval_cli> ${CMAKE_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/eval_commands ${TIJEPA_SYSTEM_PYTHON})
set_tests_properties(eval_commands PROPERTIES TIMEOUT 120 LABELS "eval")

# launch/plot: metrics.jsonl and eval/*.json → PNG curves.
add_test(NAME eval_plot COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/eval_plot.sh ${CMAKE_SOURCE_DIR}
                                ${CMAKE_CURRENT_BINARY_DIR}/eval_plot)
set_tests_properties(eval_plot PROPERTIES TIMEOUT 120 LABELS "eval" SKIP_RETURN_CODE 77)
