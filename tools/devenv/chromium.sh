#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is installed for the console's
# browser test (tools/consoletest): uses one on PATH (chromium,
# chromium-browser, google-chrome) or $BROKKR_CHROMIUM, and otherwise
# installs Debian's `chromium` package with apt-get (root or sudo). Prints
# the browser's path. `make test` runs it before the tests, so a fresh
# machine needs nothing else; without apt-get it fails loudly instead of
# letting the test be skipped.
set -euo pipefail

say() { printf '[chromium] %s\n' "$*" >&2; }

find_browser() {
	if [[ -n "${BROKKR_CHROMIUM:-}" && -x "${BROKKR_CHROMIUM}" ]]; then
		echo "$BROKKR_CHROMIUM"
		return 0
	fi
	local name
	for name in chromium chromium-browser google-chrome; do
		if command -v "$name" >/dev/null 2>&1; then
			command -v "$name"
			return 0
		fi
	done
	return 1
}

if path=$(find_browser); then
	echo "$path"
	exit 0
fi

command -v apt-get >/dev/null 2>&1 || { say "no chromium on PATH and no apt-get to install it: install Chromium or set BROKKR_CHROMIUM"; exit 1; }
sudo=()
if [[ $(id -u) != 0 ]]; then
	command -v sudo >/dev/null 2>&1 || { say "need root (or sudo) to install chromium"; exit 1; }
	sudo=(sudo)
fi
logf=${TMPDIR:-/tmp}/brokkr-chromium-apt.log
say "installing Debian's chromium via apt (log: $logf)"
# One apt run at a time on this machine (dpkg holds its own lock too).
(
	flock -w 900 9 || { say "another apt run holds the lock"; exit 1; }
	"${sudo[@]}" apt-get update >>"$logf" 2>&1
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >>"$logf" 2>&1
) 9>"${TMPDIR:-/tmp}/brokkr-chromium-apt.lock" || { tail -n 20 "$logf" >&2; say "apt-get install chromium failed"; exit 1; }

path=$(find_browser) || { say "chromium installed but not found on PATH"; exit 1; }
echo "$path"
