#!/usr/bin/env bash
# Builds the deployment tools that the chart and image tests use, from the Go
# module proxy, and caches them OUTSIDE the repository:
#
#   helm     ${BROKKR_TOOLS_CACHE:-$HOME/.cache/brokkr}/helm/<version>/bin/helm
#   helm3    ${BROKKR_TOOLS_CACHE:-$HOME/.cache/brokkr}/helm3/<version>/bin/helm
#            (helm 3, for skaffold: skaffold v2.16.1 cannot drive helm 4)
#   skaffold ${BROKKR_TOOLS_CACHE:-$HOME/.cache/brokkr}/skaffold/<version>/bin/skaffold
#
# Idempotent: exits at once when the binary and its stamp exist. One build per
# tool at a time (flock), so concurrent `make test` runs wait instead of racing.
#
# Usage: tools/deploytools/build.sh helm|helm3|skaffold [--force]
#        tools/deploytools/build.sh --print-path helm|helm3|skaffold
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
HELM3_VERSION="${HELM3_VERSION:-v3.21.4}"
SKAFFOLD_VERSION="${SKAFFOLD_VERSION:-v2.16.1}"
CACHE_ROOT="${BROKKR_TOOLS_CACHE:-$HOME/.cache/brokkr}"

log() { printf '[deploytools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=tools/devenv/gomodbuild.sh
source "$(dirname "${BASH_SOURCE[0]}")/../devenv/gomodbuild.sh"

PRINT=0
if [[ "${1:-}" == "--print-path" ]]; then PRINT=1; shift; fi
TOOL="${1:?usage: build.sh helm|helm3|skaffold [--force]}"
FORCE=0
[[ "${2:-}" == "--force" ]] && FORCE=1

case "$TOOL" in
helm)
	VERSION="$HELM_VERSION"
	MODULE="helm.sh/helm/v4"
	PKG="helm.sh/helm/v4/cmd/helm"
	# helm prints this in `helm version`; without it it says v4.x-dev.
	LDFLAGS="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
	;;
helm3)
	VERSION="$HELM3_VERSION"
	MODULE="helm.sh/helm/v3"
	PKG="helm.sh/helm/v3/cmd/helm"
	LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION"
	# helm's own Makefile stamps the Kubernetes version of its client-go into
	# these; without them `helm template` assumes v1.20 and refuses our
	# charts' kubeVersion (>=1.29), so `skaffold render` would fail.
	KUBE_VERSION_PKGS="helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules"
	;;
skaffold)
	VERSION="$SKAFFOLD_VERSION"
	MODULE="github.com/GoogleContainerTools/skaffold/v2"
	PKG="github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
	LDFLAGS="-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$SKAFFOLD_VERSION"
	;;
*)
	log "unknown tool $TOOL (helm|helm3|skaffold)"
	exit 2
	;;
esac

DEST="$CACHE_ROOT/$TOOL/$VERSION"
# skaffold runs `helm` from PATH, so helm 3 keeps the name helm.
BINARY="$DEST/bin/${TOOL%3}"
STAMP="$DEST/bin/.stamp"
STAMP_WANT="$MODULE@$VERSION layout=1"

if [[ $PRINT == 1 ]]; then
	echo "$BINARY"
	exit 0
fi

up_to_date() { [[ -x "$BINARY" && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_WANT" ]]; }

if [[ $FORCE == 0 ]] && up_to_date; then
	log "up to date: $BINARY"
	exit 0
fi

command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }
mkdir -p "$DEST/bin" "$DEST/src"
build_lock "$DEST/.build.lock"

START=$(date +%s)
rm -f "$STAMP"
(
	export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local GO111MODULE=on
	GOVER="$(go env GOVERSION)"
	GOVER="${GOVER#go}"
	cd "$DEST/src"
	log "downloading $MODULE@$VERSION go.mod"
	GOMOD="$(gomod_of "$MODULE@$VERSION")"
	# `go install pkg@version` refuses modules with replace directives (skaffold
	# pins docker, viper, ...). Build through a throwaway module that repeats
	# every versioned replace of the upstream go.mod instead.
	{
		echo "module brokkr.local/deploytools-$TOOL"
		echo
		echo "go $GOVER"
		echo
		echo "require $MODULE $VERSION"
		echo
		sed -n 's#^replace[[:space:]]\+\([^[:space:]]\+\)[[:space:]]*=>[[:space:]]*\([^.][^[:space:]]*[[:space:]]\+v[^[:space:]]*\)$#replace \1 => \2#p' "$GOMOD"
		# replace ( ... ) blocks
		awk '/^replace \($/{b=1;next} b&&/^\)/{b=0} b&&/=>/&&$0!~/=>[[:space:]]*\./{sub(/^[[:space:]]+/,"");print "replace " $0}' "$GOMOD"
	} | write_gomod
	write_tools_go "$PKG"
	log "resolving $MODULE@$VERSION dependencies"
	go mod tidy -e >/dev/null 2>&1 || go mod download
	if [[ -n "${KUBE_VERSION_PKGS:-}" ]]; then
		KMINOR="$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)"
		for p in $KUBE_VERSION_PKGS; do
			LDFLAGS="$LDFLAGS -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$KMINOR"
		done
	fi
	log "building $TOOL $VERSION"
	go build -trimpath -ldflags "$LDFLAGS" -o "$BINARY" "$PKG"
)
"$BINARY" version >/dev/null 2>&1 || { log "$BINARY does not run"; exit 1; }
echo "$STAMP_WANT" >"$STAMP"
log "built $TOOL $VERSION in $(($(date +%s) - START)) s: $BINARY"
