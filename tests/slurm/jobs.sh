#!/usr/bin/env bash
# SLURM end to end on a real single-node cluster started here (launch/slurm/cluster), shared by
# every scenario to keep start-up cost once:
#   a) launch/submit --eval: pretrain.sbatch, tiny, 2 tasks, 30 steps, uninterrupted, finishes with
#      checkpoints, metrics and provenance; the eval.sbatch --watch job evaluates its checkpoints.
#   b) the same run, sent SIGUSR1 mid-run (scancel --signal=USR1 --batch, as --signal=B:USR1@120
#      does before a time limit): it checkpoints, exits 3, requeues itself, resumes and finishes
#      with parameters bit-identical to (a) and every step in metrics.jsonl exactly once, with the
#      same losses as (a). Once with mpirun and once with srun --mpi=pmix as the launcher.
# Needs TIJEPA (the binary), WORK (scratch folder), CONFIG (tiny.ini), REPO (source tree).
# Exit 77 (ctest: skipped) when Slurm cannot run here: not root, or slurm-wlm/munge missing.
set -euo pipefail
PY=/usr/bin/python3
start_time=$(date +%s)
say() { echo "[$(($(date +%s) - start_time))s] $*"; }

# Inherited SLURM_* variables (ctest itself run inside a SLURM job) would leak into our jobs.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^SLURM_' || true)
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
cluster="$WORK/cluster"
# Unix socket paths are short; fall back to /tmp when the build tree is deep.
own_tmp=0
if [ ${#cluster} -gt 80 ]; then
    cluster=$(mktemp -d /tmp/tijepa-slurm.XXXXXX)
    own_tmp=1
fi

failed=1
cleanup() {
    if [ "$failed" -ne 0 ] && [ -d "$cluster/log" ]; then
        for f in "$cluster"/log/slurmctld.log "$cluster"/log/slurmd.log; do
            echo "---- last lines of $f"
            tail -n 25 "$f" || true
        done
    fi
    "$REPO/launch/slurm/cluster" stop "$cluster" || true
    [ "$own_tmp" -eq 0 ] || rm -rf "$cluster"
}
trap cleanup EXIT

# A cluster left behind by a killed earlier run of this test is stopped (by its PID files) first.
"$REPO/launch/slurm/cluster" stop "$cluster" >/dev/null 2>&1 || true
rc=0
"$REPO/launch/slurm/cluster" start "$cluster" || rc=$?
if [ "$rc" -eq 77 ]; then
    failed=0
    echo "SKIPPED: Slurm cannot run on this machine"
    exit 77
fi
[ "$rc" -eq 0 ] || exit "$rc"
export SLURM_CONF="$cluster/slurm.conf"
say "cluster up"

DATA="$WORK/data"
[ -f "$DATA/vocab.txt" ] || "$TIJEPA" synth --out "$DATA" --train 640 --val 64 --per-shard 160 >/dev/null
STEPS=30
common=(--config "$CONFIG" --tijepa "$TIJEPA" --nodes 1 --tasks 2 --cpus 1 --time 10:00
    --set "data.train=$DATA/train-{000000..000003}.tar" --set "data.val=$DATA/val-000000.tar"
    --set "data.vocab=$DATA/vocab.txt" --set train.global_batch=16 --set train.log_every=1
    --set "train.steps=$STEPS" --set train.ckpt_every=10 --set train.keep_last=3
    --set train.check_every=5 --set train.eval_every=0 --set loss.negatives=3
    --set data.shuffle_buffer=64)

job_field() { # job_field JOB FIELD: one field of `scontrol show job`
    scontrol show job -o "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

wait_state() { # wait_state JOB STATE SECONDS: until the job is in STATE; fails on a final state
    local job=$1 want=$2 limit=$3 s _
    for _ in $(seq 1 $((limit * 2))); do
        s=$(job_field "$job" JobState)
        [ "$s" = "$want" ] && return 0
        case "$s" in
        FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | COMPLETED)
            echo "job $job ended in state $s, expected $want" >&2
            return 1
            ;;
        esac
        sleep 0.5
    done
    echo "job $job still $s after ${limit}s, expected $want" >&2
    return 1
}

show_log() {
    echo "---- $1"
    cat "$1" 2>/dev/null || true
}

submit() { # submit OUT_PREFIX ARGS...: launch/submit, key=value lines into OUT_PREFIX.vars
    local prefix=$1
    shift
    "$REPO/launch/submit" "$@" >"$prefix.vars"
    cat "$prefix.vars"
}
var() { sed -n "s/^$2=//p" "$1.vars"; }

check_metrics() { # check_metrics RUN_DIR: steps 1..STEPS, each exactly once, in order
    $PY - "$1/metrics.jsonl" "$STEPS" <<'PY'
import json, sys
steps = [json.loads(line)["step"] for line in open(sys.argv[1])]
want = list(range(1, int(sys.argv[2]) + 1))
if steps != want:
    sys.exit(f"{sys.argv[1]}: steps {steps} != 1..{sys.argv[2]} each once")
print(f"metrics: steps 1..{sys.argv[2]} each exactly once")
PY
}

losses() { $PY -c "import json,sys; [print(d['step'], repr(d['loss'])) for d in map(json.loads, open(sys.argv[1]))]" "$1/metrics.jsonl"; }

# ---- (a) uninterrupted run + evaluation job watching its checkpoints
rm -rf "$WORK/straight"
submit "$WORK/a" "${common[@]}" --run-dir "$WORK/straight" --eval --eval-arg --pairs --eval-arg 16
job=$(var "$WORK/a" job_id)
ejob=$(var "$WORK/a" eval_job_id)
log=$(var "$WORK/a" log)
[ "$(var "$WORK/a" run_dir)" = "$WORK/straight" ]
wait_state "$job" COMPLETED 150 || {
    show_log "$log"
    exit 1
}
say "(a) job $job completed"
[ "$(job_field "$job" ExitCode)" = "0:0" ]
[ -f "$WORK/straight/ckpt/step-000000$STEPS.h5" ]
check_metrics "$WORK/straight"
grep -q "2 rank(s) × 1 thread(s)" "$log"
grep -q "^slurm_job_id *$job\$" <("$TIJEPA" ckpt inspect "$WORK/straight/ckpt/step-000000$STEPS.h5")
grep -q "^slurm_job_id = $job\$" "$WORK/straight/config.ini"
wait_state "$ejob" COMPLETED 90 || {
    show_log "$(var "$WORK/a" eval_log)"
    exit 1
}
say "(a) evaluation job $ejob completed"
for s in 10 20 30; do
    $PY -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['step']==$s and r['retrieval']['pairs']==16, r" \
        "$WORK/straight/eval-jobs/step-000000$s.json"
done
grep -q "last checkpoint (step $STEPS) is evaluated" "$(var "$WORK/a" eval_log)"

# ---- (b) the same run interrupted by SIGUSR1, requeued, resumed; once per launcher
for launcher in mpirun srun; do
    run="$WORK/signal-$launcher"
    rm -rf "$run"
    submit "$run" "${common[@]}" --run-dir "$run" --launcher "$launcher"
    job=$(var "$run" job_id)
    log=$(var "$run" log)
    # signal once step 8 is logged: the ranks are training, their handlers are installed
    for _ in $(seq 1 240); do
        last=$(tail -n 1 "$run/metrics.jsonl" 2>/dev/null | sed -n 's/.*"step": *\([0-9]*\).*/\1/p' || true)
        [ -n "$last" ] && [ "$last" -ge 8 ] && break
        sleep 0.5
    done
    if [ -z "$last" ] || [ "$last" -lt 8 ]; then
        show_log "$log"
        exit 1
    fi
    scancel --signal=USR1 --batch "$job"
    say "($launcher) USR1 sent to job $job at step $last"
    # requeued: pending again, restart count 1
    for _ in $(seq 1 120); do
        [ "$(job_field "$job" Restarts)" = 1 ] && [ "$(job_field "$job" JobState)" = PENDING ] && break
        sleep 0.5
    done
    [ "$(job_field "$job" Restarts)" = 1 ] || {
        show_log "$log"
        exit 1
    }
    say "($launcher) job $job requeued ($(job_field "$job" Reason))"
    # SLURM holds a requeued job for AuthInfo cred_expire seconds (15 on the test cluster) before
    # it starts again
    wait_state "$job" COMPLETED 150 || {
        show_log "$log"
        exit 1
    }
    say "($launcher) job $job completed after the requeue"
    [ "$(job_field "$job" ExitCode)" = "0:0" ]
    stop=$(sed -n 's/^tijepa train: stopped by a signal at step \([0-9]*\) .*/\1/p' "$log")
    if [ -z "$stop" ] || [ "$stop" -lt 8 ] || [ "$stop" -ge "$STEPS" ]; then
        show_log "$log"
        exit 1
    fi
    grep -q "SIGUSR1 received" "$log"
    grep -q "requeueing job $job" "$log"
    grep -q "^resume: .*step-$(printf %08d "$stop").h5 (step $stop)\$" "$log"
    grep -q "restart 1" "$log"
    grep -q "^slurm_restart_count 1\$" <("$TIJEPA" ckpt inspect "$run/ckpt/step-000000$STEPS.h5")
    check_metrics "$run"
    cmp <(losses "$run") <(losses "$WORK/straight")
    $PY "$REPO/tests/train/compare_ckpt.py" "$run/ckpt/step-000000$STEPS.h5" \
        "$WORK/straight/ckpt/step-000000$STEPS.h5" --rtol 0
    say "($launcher) stopped at step $stop, resumed, final checkpoint bit-identical to (a)"
done

# ---- a start whose tasks cannot be launched: srun reports success (exit 0) anyway, the script
# must see that the run did not finish and fail the job. A stale PMIx socket of step 0 (what a
# too-early restart meets) makes the launch fail.
run="$WORK/launch-fails"
rm -rf "$run"
submit "$run" "${common[@]}" --run-dir "$run" --launcher srun --sbatch --hold
job=$(var "$run" job_id)
touch "$cluster/spool/stepd.slurm.pmix.$job.0"
scontrol release "$job"
wait_state "$job" FAILED 60 || {
    show_log "$(var "$run" log)"
    exit 1
}
rm -f "$cluster/spool/stepd.slurm.pmix.$job.0"
[ "$(job_field "$job" ExitCode)" = "1:0" ]
grep -q "the launcher returned 0 but the run in $run is not finished" "$(var "$run" log)"
say "(srun) failed launch reported as a failed job"

# ---- eval.sbatch on one run directory (its newest checkpoint): the report of the resumed run
# equals the uninterrupted run's, since their parameters are identical
run="$WORK/signal-mpirun"
job=$(TIJEPA="$TIJEPA" sbatch --parsable --cpus-per-task=1 --output="$run/slurm-eval-%j.out" \
    "$REPO/launch/slurm/eval.sbatch" --ckpt "$run" --pairs 16)
wait_state "$job" COMPLETED 60 || {
    show_log "$run/slurm-eval-$job.out"
    exit 1
}
$PY - "$run/eval-jobs/step-000000$STEPS.json" "$WORK/straight/eval-jobs/step-000000$STEPS.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["retrieval"] for p in sys.argv[1:])
assert a == b, (a, b)
print("eval.sbatch --ckpt RUN_DIR: same retrieval report as the uninterrupted run")
PY
say "eval job $job completed"
failed=0
say "slurm jobs: ok"
