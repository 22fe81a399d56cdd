#!/usr/bin/env bash
# Builds the binaries of a local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from the Go module
# proxy and caches them OUTSIDE the repository:
#
#   ${BROKKR_TESTENV_CACHE:-$HOME/.cache/brokkr/testenv}/<k8s version>/bin
#   ${BROKKR_TESTENV_CACHE:-$HOME/.cache/brokkr/testenv}/<k8s version>/stages
#
# Idempotent: when every binary exists and the stamp file matches the pinned
# versions it exits at once. A cold build takes ~11 minutes on 2 cores; with a
# warm Go build cache it only relinks (~30 s).
#
# Usage: tools/testenv/build.sh [--force]
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"

CACHE_ROOT="${BROKKR_TESTENV_CACHE:-$HOME/.cache/brokkr/testenv}"
DEST="$CACHE_ROOT/$K8S_VERSION"
BIN="$DEST/bin"
STAGES="$DEST/stages"
SRC="$CACHE_ROOT/src"
STAMP="$BIN/.stamp"
STAMP_WANT="k8s=$K8S_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION layout=1"

BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
STAGE_FILES=(node-fast.yaml node-heartbeat.yaml pod-fast.yaml)

log() { printf '[testenv build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=tools/devenv/gomodbuild.sh
source "$(dirname "${BASH_SOURCE[0]}")/../devenv/gomodbuild.sh"

up_to_date() {
	[[ -f "$STAMP" ]] || return 1
	[[ "$(cat "$STAMP")" == "$STAMP_WANT" ]] || return 1
	local b f
	for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
	for f in "${STAGE_FILES[@]}"; do [[ -s "$STAGES/$f" ]] || return 1; done
	return 0
}

FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

if [[ $FORCE == 0 ]] && up_to_date; then
	log "up to date: $BIN ($STAMP_WANT)"
	exit 0
fi

# openssl is not needed by the Go package (it uses crypto/x509) but is handy
# for inspecting the generated certificates; install it if it is missing.
if ! command -v openssl >/dev/null 2>&1; then
	log "installing openssl"
	if [[ $(id -u) == 0 ]]; then
		apt-get install -y openssl >/dev/null || { apt-get update >/dev/null && apt-get install -y openssl >/dev/null; }
	else
		sudo apt-get install -y openssl >/dev/null
	fi
fi

command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }

mkdir -p "$CACHE_ROOT" "$SRC"
build_lock "$CACHE_ROOT/.build.lock"

START=$(date +%s)
mkdir -p "$BIN" "$STAGES"
rm -f "$STAMP"

# Everything below runs in a subshell so that the build environment
# (GOWORK, GOFLAGS, CGO_ENABLED) never leaks into the caller.
(
	export GOWORK=off
	export GOFLAGS="-mod=mod -buildvcs=false"
	export CGO_ENABLED=0
	export GOTOOLCHAIN=local
	export GO111MODULE=on

	GOVER="$(go env GOVERSION)"
	GOVER="${GOVER#go}"

	# ---------------------------------------------------------------- k8s
	K8S_MINOR_VERSION="${K8S_VERSION#v1.}"         # 37.2
	STAGING_VERSION="v0.${K8S_MINOR_VERSION}"      # v0.37.2
	GIT_MINOR="${K8S_MINOR_VERSION%%.*}"           # 37
	K8S_SRC="$SRC/k8s-$K8S_VERSION"
	mkdir -p "$K8S_SRC"
	cd "$K8S_SRC"

	log "downloading k8s.io/kubernetes@$K8S_VERSION go.mod"
	K8S_GOMOD="$(gomod_of "k8s.io/kubernetes@$K8S_VERSION")"
	# Every staging repository is required at v0.0.0 and replaced by a local
	# path (./staging/src/k8s.io/<x>); map each to its published tag instead.
	mapfile -t STAGING < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$K8S_GOMOD" | sort -u)
	[[ ${#STAGING[@]} -gt 10 ]] || { log "found only ${#STAGING[@]} staging modules in $K8S_GOMOD"; exit 1; }
	log "mapping ${#STAGING[@]} staging modules to $STAGING_VERSION"
	{
		echo "module brokkr.local/testenv-k8s"
		echo
		echo "go $GOVER"
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		echo "replace ("
		for m in "${STAGING[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
		echo ")"
	} | write_gomod
	write_tools_go k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
	BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	LDFLAGS="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION"
		LDFLAGS+=" -X $pkg.gitMajor=1"
		LDFLAGS+=" -X $pkg.gitMinor=$GIT_MINOR"
		LDFLAGS+=" -X $pkg.gitTreeState=clean"
		LDFLAGS+=" -X $pkg.buildDate=$BUILD_DATE"
	done
	log "resolving k8s.io/kubernetes@$K8S_VERSION dependencies"
	go mod tidy -e >/dev/null 2>&1 || go mod download
	log "building kube-apiserver kube-controller-manager kube-scheduler kubectl (cold: ~9 min)"
	go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/" \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler \
		k8s.io/kubernetes/cmd/kubectl
	log "built kubernetes binaries"

	# --------------------------------------------------------------- etcd
	ETCD_SRC="$SRC/etcd-$ETCD_VERSION"
	mkdir -p "$ETCD_SRC"
	cd "$ETCD_SRC"
	log "downloading go.etcd.io/etcd/server/v3@$ETCD_VERSION go.mod"
	ETCD_GOMOD="$(gomod_of "go.etcd.io/etcd/server/v3@$ETCD_VERSION")"
	# The server module replaces its sibling modules by ../<dir>; pin them to
	# the same release instead.
	mapfile -t ETCD_MODS < <(sed -n 's#^[[:space:]]*\(go\.etcd\.io/etcd/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\.\./.*#\1#p' "$ETCD_GOMOD" | sort -u)
	{
		echo "module brokkr.local/testenv-etcd"
		echo
		echo "go $GOVER"
		echo
		echo "require ("
		echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
		for m in "${ETCD_MODS[@]}"; do echo "	$m $ETCD_VERSION"; done
		echo ")"
	} | write_gomod
	write_tools_go go.etcd.io/etcd/server/v3
	go mod tidy -e >/dev/null 2>&1 || go mod download
	log "building etcd $ETCD_VERSION"
	go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
	log "built etcd"

	# --------------------------------------------------------------- kwok
	KWOK_SRC="$SRC/kwok-$KWOK_VERSION"
	mkdir -p "$KWOK_SRC"
	cd "$KWOK_SRC"
	log "building kwok $KWOK_VERSION"
	GOFLAGS="-buildvcs=false" GOBIN="$BIN" go install -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
		"sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
	KWOK_DIR="$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	for st in node/fast node/heartbeat pod/fast; do
		d="$KWOK_DIR/kustomize/stage/$st"
		[[ -d "$d" ]] || { log "missing kwok stage directory $d"; exit 1; }
		out="$STAGES/${st/\//-}.yaml"
		: >"$out.tmp"
		for f in "$d"/*.yaml; do
			[[ "$(basename "$f")" == kustomization.yaml ]] && continue
			{ echo "---"; cat "$f"; echo; } >>"$out.tmp"
		done
		mv "$out.tmp" "$out"
	done
	chmod -R u+w "$STAGES"
	log "built kwok and copied stages to $STAGES"
)

for b in "${BINARIES[@]}"; do
	[[ -x "$BIN/$b" ]] || { log "missing $BIN/$b after build"; exit 1; }
done
echo "$STAMP_WANT" >"$STAMP"
log "done in $(($(date +%s) - START)) s: $BIN"
