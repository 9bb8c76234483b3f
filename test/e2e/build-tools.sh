#!/usr/bin/env bash
# Build the Go tools the chart and alert tests use, from the Go module proxy (neither is packaged
# for this Debian), and cache them OUTSIDE the repo, beside build-binaries.sh's kube-apiserver:
#
#   helm      helm.sh/helm/v3/cmd/helm                          (helm lint, helm template, helm install)
#   promtool  github.com/prometheus/prometheus/cmd/promtool     (promtool test rules)
#
#   test/e2e/build-tools.sh             # prints HELM_BIN=... PROMTOOL_BIN=... on stdout
#   eval "$(test/e2e/build-tools.sh)"
#
# Progress and timings go to stderr so stdout stays eval-able. Warm (both cached) it exits at once
# without running go. The tests find the binaries the same way (test/helpers/tools.ts).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
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
if [[ ! -x $PROMTOOL ]]; then
  # remove_all_sd: none of Prometheus' service discoveries (AWS, Azure, GCE, … SDKs), which
  # `promtool test rules` never uses and which are most of a cold build.
  install promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_VERSION" "$PROMTOOL" remove_all_sd
fi

done_paths
