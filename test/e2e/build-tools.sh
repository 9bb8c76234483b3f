#!/usr/bin/env bash
# Provide the tools the chart and alert tests use, cached OUTSIDE the repo, beside build-binaries.sh's
# kube-apiserver:
#
#   helm      helm.sh/helm/v3/cmd/helm, built from its Go module (not packaged for this Debian)
#   promtool  from Debian's `prometheus` package (promtool test rules), unpacked, not installed: a
#             19 MB download instead of a 5-8 minute cold Go build, which is most of CI's time
#             budget on a fresh machine. When the package cannot be had, it is built from
#             github.com/prometheus/prometheus/cmd/promtool (the module of 2.42.0, v0.42.0, has
#             replace directives and cannot be `go install`ed, so the fallback is a later release
#             the alert tests pass on too).
#
#   test/e2e/build-tools.sh             # prints HELM_BIN=... PROMTOOL_BIN=... on stdout
#   eval "$(test/e2e/build-tools.sh)"
#
# Progress and timings go to stderr so stdout stays eval-able. Warm (both cached) it exits at once.
# The tests find the binaries the same way (test/helpers/chart.ts).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Debian bookworm's package version (Prometheus 2.42.0), and the Go module version of the fallback.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-2.42.0+ds-5+b6}"
PROMETHEUS_GO_VERSION="${PROMETHEUS_GO_VERSION:-v0.316.0}"
CACHE="${PORTCULLIS_TOOLS_CACHE:-$HOME/.cache/portcullis-tools}"
HELM="$CACHE/helm-$HELM_VERSION/helm"
PROMTOOL="$CACHE/promtool-$PROMETHEUS_VERSION/promtool"

done_paths() { echo "HELM_BIN=$HELM"; echo "PROMTOOL_BIN=$PROMTOOL"; }
if [[ -x $HELM && -x $PROMTOOL ]]; then done_paths; exit 0; fi

command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
# As build-binaries.sh: no toolchain download, 2 jobs on 2 cores, no go.work from up the tree.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-p=2" GOWORK=off

mkdir -p "$CACHE"
# Serialise concurrent callers; the second waits, then takes the fast path.
exec 9>"$CACHE/.lock"
flock 9
if [[ -x $HELM && -x $PROMTOOL ]]; then done_paths; exit 0; fi

# install NAME PKG VERSION DEST TAGS [ldflags...]: `go install PKG@VERSION` into a temporary GOBIN,
# then mv into place, so an interrupted build never leaves a half binary where the tests look.
install() {
  local name=$1 pkg=$2 version=$3 dest=$4 tags=$5 start=$SECONDS
  shift 5
  local bin
  bin=$(mktemp -d "$CACHE/.$name.XXXXXX")
  echo ">> building $name ($pkg@$version${tags:+, tags $tags})" >&2
  GOBIN="$bin" go install -trimpath -tags "$tags" -ldflags "-s -w $*" "$pkg@$version" >&2
  mkdir -p "$(dirname "$dest")"
  mv -f "$bin/$name" "$dest"
  rm -rf "$bin"
  echo ">> $name built in $((SECONDS - start))s, size $(du -h "$dest" | cut -f1)" >&2
}

if [[ ! -x $HELM ]]; then
  # Stamp the version as a release build does, so `helm version` says v3.22.0, not v3.x-dev.
  install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$HELM" "" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
fi
# debian_promtool: `apt-get download` (no install, no root needed for the download itself) and
# dpkg-deb -x of the one binary. Fails (non-zero) when the package cannot be had.
debian_promtool() {
  local dir start=$SECONDS
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
  dir=$(mktemp -d "$CACHE/.promtool.XXXXXX")
  echo ">> fetching promtool (Debian package prometheus=$PROMETHEUS_VERSION)" >&2
  # A fresh machine may have no package lists yet: refresh them once (as root) and try again.
  if ! (cd "$dir" && apt-get download -q "prometheus=$PROMETHEUS_VERSION") >&2 2>/dev/null; then
    { [[ $(id -u) -eq 0 ]] && apt-get update -q >&2 && (cd "$dir" && apt-get download -q "prometheus=$PROMETHEUS_VERSION") >&2; } ||
      { rm -rf "$dir"; return 1; }
  fi
  dpkg-deb -x "$dir"/prometheus_*.deb "$dir/root" &&
    "$dir/root/usr/bin/promtool" --version >/dev/null &&
    mkdir -p "$(dirname "$PROMTOOL")" &&
    mv -f "$dir/root/usr/bin/promtool" "$PROMTOOL" || { rm -rf "$dir"; return 1; }
  rm -rf "$dir"
  echo ">> promtool fetched in $((SECONDS - start))s" >&2
}

if [[ ! -x $PROMTOOL ]] && ! debian_promtool; then
  # remove_all_sd: none of Prometheus' service discoveries (AWS, Azure, GCE, … SDKs), which
  # `promtool test rules` never uses and which are most of a cold build.
  install promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_GO_VERSION" "$PROMTOOL" remove_all_sd
fi

done_paths
