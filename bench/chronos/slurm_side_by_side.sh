#!/usr/bin/env bash
# #23's side by side: 1,000 trivial jobs (`true`) submitted at once to a single-node Slurm, timed
# until all completed, and the same 1,000 jobs through Tessera's Chronos (run now, PUT
# /scheduler/job/{name}) on a `tessera local` cluster, timed from the first run-now to the
# 1,000th success, in the same run on the same machine. Installs nothing: it needs slurmctld,
# slurmd, sbatch, squeue and munged on PATH (Debian: `apt-get install slurm-wlm munge`), runs as
# root (slurmd starts the jobs as their user), and a built `tessera` (TESSERA, default
# build/bin/tessera). Everything lives in a temp dir (its own munge key and socket, slurm.conf,
# spool, state, logs, free ports); the daemons are stopped at the end.
#
# Usage: bench/chronos/slurm_side_by_side.sh [jobs=1000]
# Env: TESSERA=path/to/tessera, KEEP=1 keeps the temp dir (logs).
set -euo pipefail

JOBS="${1:-1000}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TESSERA="${TESSERA:-$ROOT/build/bin/tessera}"

for tool in slurmctld slurmd sbatch squeue scontrol munged munge; do
  if ! command -v "$tool" >/dev/null; then
    echo "slurm: not run: '$tool' is not installed (Debian: apt-get install slurm-wlm munge)" >&2
    exit 2
  fi
done
if [[ $(id -u) -ne 0 ]]; then
  echo "slurm: not run: slurmd must run as root to start jobs" >&2
  exit 2
fi

DIR="$(mktemp -d /tmp/tessera-slurm.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -f "$DIR/run/munged.pid" ]]; then kill "$(cat "$DIR/run/munged.pid")" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$DIR"; else echo "kept $DIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# ---- Slurm ---------------------------------------------------------------------------------
mkdir -p "$DIR"/{run,log,state,spool}
dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge.key"
munged --force --key-file="$DIR/munge.key" --socket="$DIR/run/munge.sock" \
  --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
  --seed-file="$DIR/run/munge.seed"

HOST="$(hostname -s)"
# Slots on the node: more than its cores (config_overrides), as Chronos's jobs ask 0.01 CPU; each
# job is `true`, so the slots bound how many wait on slurmd at once, not the CPU they use.
SLURM_CPUS="${SLURM_CPUS:-64}"
MEMORY="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"
cat >"$DIR/slurm.conf" <<CONF
ClusterName=tessera-bench
SlurmctldHost=$HOST
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/run/munge.sock
CryptoType=crypto/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MaxJobCount=100000
MaxArraySize=100001
MinJobAge=600
SlurmdParameters=config_overrides
NodeName=$HOST CPUs=$SLURM_CPUS RealMemory=$MEMORY State=UNKNOWN
PartitionName=bench Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"
slurmctld -D -i >"$DIR/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D >"$DIR/log/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  if scontrol show node "$HOST" 2>/dev/null | grep -q "State=IDLE"; then break; fi
  sleep 0.2
done
if ! scontrol show node "$HOST" 2>/dev/null | grep -q "State=IDLE"; then
  echo "slurm: not run: the node did not come up idle; logs:" >&2
  tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" "$DIR/log/"*.out >&2 || true
  exit 3
fi

# 1,000 jobs at once: one job array (one submission, 1,000 jobs each with its own id and
# its own `true`), 1 slot each, so the node runs $SLURM_CPUS at a time.
start=$(now)
sbatch --quiet --array=1-"$JOBS" --output=/dev/null --wrap=true >/dev/null
# Until none is pending, running or completing; a job whose launch failed is requeued held
# (slurmd could not confirm it to slurmctld) and would wait forever: it counts as not completed.
while true; do
  if ! states=$(squeue -h -r -t PD,R,CG,CF -o %r 2>/dev/null); then
    sleep 0.2  # slurmctld busy: ask again
    continue
  fi
  if [[ $(printf '%s\n' "$states" | grep -cv -e held -e '^$') -eq 0 ]]; then break; fi
  sleep 0.05
done
slurm_seconds=$(echo "$(now) - $start" | bc)
completed=$(scontrol show job 2>/dev/null | grep -c "JobState=COMPLETED" || true)
held=$(squeue -h -r -t PD -o %r 2>/dev/null | grep -c "held" || true)
echo "slurm: $completed of $JOBS jobs COMPLETED in $slurm_seconds s" \
  "($(echo "scale=1; $completed / $slurm_seconds" | bc) completed jobs/s; $held launch failed, held)"

# ---- Tessera: `tessera local` (a master and an agent) and a Chronos host ----------------------
if [[ ! -x "$TESSERA" ]]; then
  echo "tessera: not run: no $TESSERA (ninja -C build tessera)" >&2
  exit 0
fi
LIB="$(dirname "$TESSERA")/../lib/tessera"
MASTER_PORT=$(free_port)
CHRONOS_PORT=$(free_port)
mkdir -p "$DIR/config"
export TESSERA_CONFIG_DIR="$DIR/config"
"$TESSERA" local --port="$MASTER_PORT" --work_dir="$DIR/local" --quiet --modules="{\"libraries\": [
  {\"file\": \"$LIB/libtessera_allocator_drf.so\", \"modules\": [{\"name\": \"org_tessera_allocator_drf\",
    \"parameters\": [{\"key\": \"allocation_interval\", \"value\": \"100ms\"}]}]},
  {\"file\": \"$LIB/libtessera_containerizer_native.so\", \"modules\": [{\"name\": \"org_tessera_containerizer_native\"}]}]}" \
  >"$DIR/log/local.out" 2>&1 &
PIDS+=($!)
"$TESSERA" framework --module=chronos --master=127.0.0.1:"$MASTER_PORT" --port="$CHRONOS_PORT" \
  --work_dir="$DIR/chronos" --modules="{\"libraries\": [{\"file\": \"$LIB/libtessera_framework_chronos.so\",
  \"modules\": [{\"name\": \"org_tessera_chronos\", \"aliases\": [\"chronos\"]}]}]}" \
  >"$DIR/log/chronos.out" 2>&1 &
PIDS+=($!)

# The same jobs: created with a schedule far ahead (they only run when asked), then all run now
# at once (PUT job/{name}, one keep-alive connection), timed until each has succeeded once.
python3 - "$CHRONOS_PORT" "$JOBS" <<'PY'
import http.client, json, sys, time
port, jobs = int(sys.argv[1]), int(sys.argv[2])
def connect():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)
deadline = time.time() + 60
while True:
    try:
        c = connect(); c.request("GET", "/scheduler/jobs"); r = c.getresponse(); r.read()
        if r.status == 200: break
    except OSError:
        pass
    if time.time() > deadline: sys.exit("tessera: chronos did not answer within 60 s")
    time.sleep(0.2)
names = [f"bench-{i}" for i in range(jobs)]
c = connect()
for name in names:
    body = json.dumps({"name": name, "command": "true", "schedule": "R1/2099-01-01T00:00:00Z/PT1H",
                       "cpus": 0.01, "mem": 8, "disk": 0})
    c.request("POST", "/scheduler/iso8601", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 204: sys.exit(f"tessera: POST {name}: {r.status}")
start = time.time()
for name in names:
    c.request("PUT", f"/scheduler/job/{name}")
    r = c.getresponse(); r.read()
    if r.status != 204: sys.exit(f"tessera: PUT job/{name}: {r.status}")
done = 0
deadline = time.time() + 600
while time.time() < deadline:
    c.request("GET", "/scheduler/jobs"); r = c.getresponse(); body = r.read()
    done = sum(1 for job in json.loads(body.decode().splitlines()[0])
               if job["name"].startswith("bench-") and job["successCount"] >= 1)
    if done >= jobs: break
    time.sleep(0.1)
seconds = time.time() - start
print(f"tessera: {done} of {jobs} jobs succeeded in {seconds:.2f} s ({jobs / seconds:.1f} jobs/s)")
PY
