# shellcheck shell=bash
# Functions shared by the scripts that build Go tools from the module proxy
# into a cache outside the repository (tools/testenv/build.sh,
# tools/deploytools/build.sh). Source it after defining log().

# build_lock LOCKFILE: one build at a time (tests, make up and CI may race
# for it). Waits for another holder, then exits 0 when up_to_date (which the
# caller defines) says that build already produced what we need.
build_lock() {
	exec 9>"$1"
	if ! flock -n 9; then
		log "another build holds $1; waiting"
		flock 9
		if [[ ${FORCE:-0} == 0 ]] && up_to_date; then
			log "up to date after waiting"
			exit 0
		fi
	fi
}

# gomod_of MODULE@VERSION: the path of that release's go.mod in the module
# cache, downloading it first.
gomod_of() {
	local gomod
	gomod="$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
	[[ -f "$gomod" ]] || { log "cannot find go.mod of $1"; exit 1; }
	echo "$gomod"
}

# write_gomod: standard input becomes ./go.mod when it differs from it (a
# new go.mod drops go.sum, so go mod tidy resolves it afresh); an unchanged
# one keeps go.sum and the warm module graph.
write_gomod() {
	cat >go.mod.new
	if ! cmp -s go.mod.new go.mod 2>/dev/null; then
		mv go.mod.new go.mod
		rm -f go.sum
	else
		rm -f go.mod.new
	fi
}

# write_tools_go PACKAGE...: a tools.go importing the packages to build,
# so go mod tidy keeps their dependencies.
write_tools_go() {
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		printf '\t_ "%s"\n' "$@"
		printf ')\n'
	} >tools.go
}
