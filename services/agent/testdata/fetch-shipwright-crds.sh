#!/usr/bin/env bash
# Copies the Shipwright Build CRDs the agent's work-order tests install into
# the testenv (testdata/shipwright/) from the Shipwright module that the Go
# module proxy serves at an exact version. The CRDs are copied verbatim,
# never hand-written. Re-run after changing SHIPWRIGHT_VERSION:
#
#   services/agent/testdata/fetch-shipwright-crds.sh
#
# Only the two CRDs a build work order uses are kept (Build and BuildRun);
# set SHIPWRIGHT_CRDS to copy others too (e.g. "builds buildruns
# buildstrategies clusterbuildstrategies").
set -euo pipefail

SHIPWRIGHT_VERSION="${SHIPWRIGHT_VERSION:-v0.14.0}"
SHIPWRIGHT_CRDS="${SHIPWRIGHT_CRDS:-builds buildruns}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/shipwright"

# A throwaway module, so the download touches no go.mod of the repository.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export GOWORK=off GOFLAGS=-mod=mod
go mod init fetch-shipwright-crds >/dev/null 2>&1
json="$(go mod download -json "github.com/shipwright-io/build@${SHIPWRIGHT_VERSION}")"
dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
sum="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')"
if [[ -z "$dir" || ! -d "$dir/deploy/crds" ]]; then
  echo "fetch-shipwright-crds: no deploy/crds in github.com/shipwright-io/build@${SHIPWRIGHT_VERSION}:" >&2
  printf '%s\n' "$json" >&2
  exit 1
fi

rm -rf "$out"
mkdir -p "$out"
for crd in $SHIPWRIGHT_CRDS; do
  cp "$dir/deploy/crds/shipwright.io_${crd}.yaml" "$out/"
  chmod 0644 "$out/shipwright.io_${crd}.yaml"
done
cp "$dir/LICENSE" "$out/LICENSE"
chmod 0644 "$out/LICENSE"
cat > "$out/VERSION" <<INFO
github.com/shipwright-io/build ${SHIPWRIGHT_VERSION} ${sum}
copied from deploy/crds by services/agent/testdata/fetch-shipwright-crds.sh: ${SHIPWRIGHT_CRDS}
INFO
echo "Shipwright ${SHIPWRIGHT_VERSION} CRDs (${SHIPWRIGHT_CRDS}) copied to ${out#"$here/../../../"}"
