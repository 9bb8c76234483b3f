#!/usr/bin/env bash
# Stop the etcd + kube-apiserver that start-cluster.sh started in WORKDIR.
# Safe to run any number of times (missing/stale pid files are fine).
set -euo pipefail
WORKDIR="${1:?usage: stop-cluster.sh WORKDIR}"
[[ -d $WORKDIR ]] || exit 0
WORKDIR="$(cd "$WORKDIR" && pwd)"

# apiserver first, so it does not spend its shutdown retrying a dead etcd.
for name in kube-apiserver etcd; do
  pidfile="$WORKDIR/$name.pid"
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  # Only signal the pid if it is still a process we started (pids get reused):
  # both processes carry the absolute WORKDIR in their command line.
  if [[ -n $pid ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$WORKDIR/"; then
    kill -TERM "$pid" 2>/dev/null || true
    # Not our child, so no `wait`: poll up to ~10 s, then SIGKILL.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "stopped $name ($pid)"
  fi
  rm -f "$pidfile"
done
