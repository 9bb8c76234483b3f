#!/usr/bin/env bash
# Build a real kube-apiserver and etcd from Go modules (no Docker, no release
# tarballs: only the Go module proxy is reachable) and cache them OUTSIDE the repo.
#
#   test/e2e/build-binaries.sh          # prints KUBE_APISERVER_BIN=... ETCD_BIN=... on stdout
#   eval "$(test/e2e/build-binaries.sh)"
#
# Progress/timings go to stderr so stdout stays eval-able. Cold build ~15-25 min
# on 2 cores; warm (both binaries cached) it exits in well under a second.
set -euo pipefail

# v1.34.10: newest 1.34 patch whose go.mod the checksum DB knows (v1.34.12 gives a
# sumdb 404 here) and which compiles with Go 1.26.
K8S_VERSION="${K8S_VERSION:-v1.34.10}"
OUT="${PORTCULLIS_E2E_CACHE:-$HOME/.cache/portcullis-e2e}/$K8S_VERSION"
APISERVER="$OUT/kube-apiserver"
ETCD="$OUT/etcd"

done_paths() { echo "KUBE_APISERVER_BIN=$APISERVER"; echo "ETCD_BIN=$ETCD"; }
# Fast path: nothing to do (no go invocation at all, so it stays < 1 s).
if [[ -x $APISERVER && -x $ETCD ]]; then done_paths; exit 0; fi

command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
# GOTOOLCHAIN=local: never try to download another toolchain. -p=2: the machine
# has 2 cores and a kube-apiserver link needs several GiB; more jobs just thrash.
# GOWORK=off: a go.work up the tree must not leak into the throwaway modules.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-p=2" GOWORK=off

mkdir -p "$OUT"
# Serialise concurrent callers (e.g. two test runs starting at once); the second
# one waits and then takes the fast path below.
exec 9>"$OUT/.lock"
flock 9
if [[ -x $APISERVER && -x $ETCD ]]; then done_paths; exit 0; fi

TMP_BINS=()
trap 'rm -f "${TMP_BINS[@]}"' EXIT

# build NAME MODDIR PKG [extra go build args...]: go build into a temp file in
# $OUT and mv it into place, so an interrupted build never leaves a half binary.
build() {
  local name=$1 dir=$2 pkg=$3; shift 3
  local tmp="$OUT/.$name.tmp.$$" start=$SECONDS
  TMP_BINS+=("$tmp")
  echo ">> building $name ($pkg) in $dir" >&2
  # -mod=mod lets go fill in go.sum (verified against the checksum DB) itself.
  (cd "$dir" && go build -mod=mod -trimpath -ldflags "-s -w $*" -o "$tmp" "$pkg") >&2
  mv -f "$tmp" "$OUT/$name"
  echo ">> $name built in $((SECONDS - start))s, size $(du -h "$OUT/$name" | cut -f1)" >&2
}

# gomod MODULE VERSION: path of that module version's go.mod in the module cache.
gomod() {
  local f
  f=$(go mod download -json "$1@$2" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
  [[ -f $f ]] || { echo "cannot download $1@$2 (go mod download -json $1@$2)" >&2; return 1; }
  echo "$f"
}

# --- etcd ------------------------------------------------------------------
# Default: the etcd server version this Kubernetes release itself depends on
# (3.6.x for 1.34). Since etcd 3.5, package go.etcd.io/etcd/server/v3 is main.
# Separate module so Kubernetes' dependency versions can't bump etcd's.
if [[ ! -x $ETCD ]]; then
  ETCD_VERSION=${ETCD_VERSION:-$(sed -n 's#^\s*go.etcd.io/etcd/server/v3 \(v[0-9.]*\).*#\1#p' "$(gomod k8s.io/kubernetes "$K8S_VERSION")")}
  EMOD=$(gomod go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
  d="$OUT/etcd-mod"; mkdir -p "$d"
  { echo "module portcullis.local/etcd-build"; grep -E '^go ' "$EMOD"
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"; } > "$d/go.mod"
  build etcd "$d" go.etcd.io/etcd/server/v3
fi


# --- kube-apiserver --------------------------------------------------------
# k8s.io/kubernetes is not meant to be a dependency: its go.mod requires every
# staging module (k8s.io/api, client-go, ...) at v0.0.0 and points them at
# ./staging/src/... with replace directives, which are ignored for dependencies.
# So we generate a wrapper module that re-does those replaces with the published
# v0.Y.Z tags, reading the list from the release's own go.mod.
if [[ ! -x $APISERVER ]]; then
  KMOD=$(gomod k8s.io/kubernetes "$K8S_VERSION")
  STAGING_VERSION="v0.${K8S_VERSION#v1.}"
  d="$OUT/apiserver-mod"; mkdir -p "$d"
  {
    echo "module portcullis.local/kube-apiserver-build"
    # Same go/godebug lines as Kubernetes so runtime GODEBUG defaults match the
    # release build (they come from the *main* module's go.mod).
    grep -E '^(go|godebug) ' "$KMOD"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    sed -n "s#^\s*\(k8s.io/[^ ]*\) => ./staging/src/.*#\t\1 => \1 $STAGING_VERSION#p" "$KMOD"
    echo ")"
  } > "$d/go.mod"
  echo ">> $(grep -c '=> k8s.io' "$d/go.mod") staging modules replaced with $STAGING_VERSION" >&2
  # Stamp the version like a release build does, so /version and kubectl's skew
  # check see v1.Y.Z instead of v0.0.0-master.
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  V=k8s.io/component-base/version
  build kube-apiserver "$d" k8s.io/kubernetes/cmd/kube-apiserver \
    "-X $V.gitVersion=$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean"
fi

done_paths
