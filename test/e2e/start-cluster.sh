#!/usr/bin/env bash
# Start a throwaway control plane (etcd + kube-apiserver, no controller-manager,
# no scheduler, no nodes) on 127.0.0.1, in the spirit of controller-runtime's envtest.
#
#   test/e2e/start-cluster.sh WORKDIR
#   EXTRA_APISERVER_FLAGS="--audit-policy-file=/p.yaml --audit-log-path=/a.log" test/e2e/start-cluster.sh WORKDIR
#   AUDIT_POLICY=docs/audit-policy.yaml test/e2e/start-cluster.sh WORKDIR   # audit log in WORKDIR/audit.log
#
# Writes WORKDIR/kubeconfig (token auth, system:masters), WORKDIR/{etcd,kube-apiserver}.pid,
# WORKDIR/{etcd,kube-apiserver}.log, WORKDIR/admin.token, WORKDIR/apiserver.url; prints
# KUBECONFIG=... as the last stdout line. Stop with test/e2e/stop-cluster.sh WORKDIR.
# Re-running restarts the cluster from an empty etcd. Binaries come from
# build-binaries.sh (cached; a cold cache builds them first) unless KUBE_APISERVER_BIN
# and ETCD_BIN are set. START_TIMEOUT (seconds, default 90) bounds the wait for /readyz.
# AUDIT_POLICY=FILE turns on the API server's audit log backend with that policy, writing
# WORKDIR/audit.log (JSON lines, no rotation); without it there is no audit log, as before.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORKDIR="${1:?usage: start-cluster.sh WORKDIR}"
mkdir -p "$WORKDIR"; WORKDIR="$(cd "$WORKDIR" && pwd)"

if [[ -z ${KUBE_APISERVER_BIN:-} || -z ${ETCD_BIN:-} ]]; then
  eval "$("$HERE/build-binaries.sh")"
fi

# Idempotent: stop whatever a previous run left here, start from clean state.
# Only our own subdirs are wiped: the caller may keep e.g. an audit policy in WORKDIR.
"$HERE/stop-cluster.sh" "$WORKDIR" >/dev/null
rm -rf "$WORKDIR/etcd-data" "$WORKDIR/certs"
mkdir -p "$WORKDIR/certs"

# A free port: nothing accepts a connection on it. Racy in theory, fine on a test box;
# fixed ports would collide between parallel runs (and with a real etcd's 2379).
# free_port runs in $(...), so the caller records each pick in used_ports.
used_ports=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    [[ $used_ports == *" $p "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    echo "$p"; return
  done
}
ETCD_PORT=$(free_port); used_ports+="$ETCD_PORT "
PEER_PORT=$(free_port); used_ports+="$PEER_PORT "
API_PORT=$(free_port)
ETCD_URL="http://127.0.0.1:$ETCD_PORT"
API_URL="https://127.0.0.1:$API_PORT"

# Service-account token signing key: required flags since 1.20, even though no
# controller-manager runs to mint tokens.
openssl genrsa -out "$WORKDIR/certs/sa.key" 2048 2>/dev/null
TOKEN=$(openssl rand -hex 16)
echo "$TOKEN" > "$WORKDIR/admin.token"
# token,user,uid,"groups": system:masters bypasses RBAC entirely.
echo "$TOKEN,portcullis-admin,portcullis-admin,\"system:masters\"" > "$WORKDIR/certs/tokens.csv"

fail() {
  echo "start-cluster: $*" >&2
  for f in etcd kube-apiserver; do echo "--- tail $WORKDIR/$f.log" >&2; tail -n 30 "$WORKDIR/$f.log" >&2 || true; done
  "$HERE/stop-cluster.sh" "$WORKDIR" >&2 || true
  exit 1
}

# etcd: explicit peer/cluster URLs so the random peer port is consistent with
# --initial-cluster; --unsafe-no-fsync because the data is throwaway (envtest does too).
# stdio goes to files so a caller capturing our output (execSync) does not hang.
"$ETCD_BIN" --name=portcullis-e2e --data-dir="$WORKDIR/etcd-data" \
  --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
  --listen-peer-urls="http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
  --initial-cluster="portcullis-e2e=http://127.0.0.1:$PEER_PORT" \
  --unsafe-no-fsync --log-level=warn \
  </dev/null >"$WORKDIR/etcd.log" 2>&1 &
echo $! > "$WORKDIR/etcd.pid"

# kube-apiserver. Notes on the less obvious flags:
# - the serving cert is self-signed into --cert-dir (apiserver.crt holds cert + its CA);
#   --advertise-address=127.0.0.1 puts 127.0.0.1 in its SANs, so the kubeconfig can
#   verify TLS with that file instead of skipping verification.
# - ServiceAccount admission is off: no controller-manager creates the "default"
#   ServiceAccount, so every pod create would be rejected.
# - --allow-privileged=true: otherwise the apiserver itself rejects privileged pods in
#   validation, before a validating webhook ever sees them.
# - --endpoint-reconciler-type=none: the "kubernetes" Endpoints may not hold a loopback
#   IP, so the default reconciler logs a validation error every 10 s.
# - EXTRA_APISERVER_FLAGS is word-split on purpose (flags must not contain spaces).
AUDIT_FLAGS=()
if [[ -n ${AUDIT_POLICY:-} ]]; then
  [[ -r $AUDIT_POLICY ]] || { echo "start-cluster: AUDIT_POLICY $AUDIT_POLICY is not readable" >&2; exit 1; }
  rm -f "$WORKDIR/audit.log"
  AUDIT_FLAGS=(--audit-policy-file="$(cd "$(dirname "$AUDIT_POLICY")" && pwd)/$(basename "$AUDIT_POLICY")"
    --audit-log-path="$WORKDIR/audit.log" --audit-log-format=json)
fi
# shellcheck disable=SC2086
"$KUBE_APISERVER_BIN" \
  --etcd-servers="$ETCD_URL" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
  --cert-dir="$WORKDIR/certs" \
  --token-auth-file="$WORKDIR/certs/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$WORKDIR/certs/sa.key" \
  --service-account-signing-key-file="$WORKDIR/certs/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  --endpoint-reconciler-type=none \
  "${AUDIT_FLAGS[@]}" \
  ${EXTRA_APISERVER_FLAGS:-} \
  </dev/null >"$WORKDIR/kube-apiserver.log" 2>&1 &
echo $! > "$WORKDIR/kube-apiserver.pid"
echo "$API_URL" > "$WORKDIR/apiserver.url"

# Poll /readyz (it only turns ok once etcd is reachable, RBAC bootstrap policy is
# written and the default namespaces exist).
start=$(date +%s.%N)
deadline=$((SECONDS + ${START_TIMEOUT:-90}))
until curl -ksf -H "Authorization: Bearer $TOKEN" "$API_URL/readyz" >/dev/null 2>&1; do
  kill -0 "$(cat "$WORKDIR/etcd.pid")" 2>/dev/null || fail "etcd exited"
  kill -0 "$(cat "$WORKDIR/kube-apiserver.pid")" 2>/dev/null || fail "kube-apiserver exited"
  ((SECONDS < deadline)) || fail "kube-apiserver not ready after ${START_TIMEOUT:-90}s"
  sleep 0.2
done
awk -v s="$start" -v e="$(date +%s.%N)" -v u="$API_URL" \
  'BEGIN { printf "kube-apiserver ready at %s after %.1fs\n", u, e - s }' >&2

cat > "$WORKDIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: portcullis-e2e
  cluster:
    server: $API_URL
    certificate-authority: $WORKDIR/certs/apiserver.crt
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: portcullis-e2e
  context: {cluster: portcullis-e2e, user: admin}
current-context: portcullis-e2e
EOF
echo "KUBECONFIG=$WORKDIR/kubeconfig"
