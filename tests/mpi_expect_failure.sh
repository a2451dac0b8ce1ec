#!/bin/bash
# Runs a command (an MPI job) that must fail: passes if it exits non-zero within LIMIT seconds
# and its output matches the extended regular expression PATTERN.
# Usage: mpi_expect_failure.sh LIMIT PATTERN COMMAND [ARGS...]
limit=$1
pattern=$2
shift 2
start=$(date +%s%N)
output=$(timeout -k 5 "$limit" "$@" 2>&1)
status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
printf '%s\n' "$output"
echo "--- exit status $status after ${elapsed_ms} ms"
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "FAIL: the job was still running after $limit s (some rank was left waiting)"
    exit 1
fi
if [ "$status" -eq 0 ]; then
    echo "FAIL: the job exited 0 although a rank failed"
    exit 1
fi
if ! printf '%s\n' "$output" | grep -Eq -- "$pattern"; then
    echo "FAIL: no line matches: $pattern"
    exit 1
fi
echo "ok: non-zero exit within $limit s, message found"
