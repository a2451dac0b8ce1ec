# SLURM end to end (tests/slurm/): a single-node Slurm cluster started on this machine
# (launch/slurm/cluster: munged, slurmctld, slurmd; needs root and slurm-wlm + munge, installed
# by launch/setup), the batch scripts and launch/submit. Skipped (exit 77) where Slurm cannot run.
add_test(NAME slurm_jobs
         COMMAND env TIJEPA=${TIJEPA_BIN} WORK=${CMAKE_CURRENT_BINARY_DIR}/slurm_jobs
                 CONFIG=${CMAKE_SOURCE_DIR}/launch/configs/tiny.ini REPO=${CMAKE_SOURCE_DIR}
                 bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/jobs.sh)
set_tests_properties(slurm_jobs PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 PROCESSORS 2
                     LABELS "slurm;integration")
