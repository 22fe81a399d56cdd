#!/usr/bin/env bash
# Runs the local Brokkr stack for `make up` / `make down`: PostgreSQL and
# Redis (through devenv.sh), migrations, the templating, auth, api,
# work-order-scheduler and webhook-dispatch services, and — when its binaries
# are built — a local kube-apiserver with one registered agent applying to
# it. State lives in .brokkr/ (git-ignored): logs, pids, the admin and agent
# PAKs, the webhook encryption key and dev.env.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
state="$root/.brokkr"
bin="$state/bin"
logs="$state/logs"
pids="$state/pids"
devenv="$root/tools/devenv/devenv.sh"
api_port=${BROKKR_API_PORT:-3000}
auth_port=${BROKKR_AUTH_PORT:-3100}
templating_port=${BROKKR_TEMPLATING_PORT:-3200}
scheduler_port=${BROKKR_SCHEDULER_PORT:-3300}
webhook_port=${BROKKR_WEBHOOK_DISPATCH_PORT:-3400}
agent_port=${BROKKR_AGENT_HEALTH_PORT:-3500}
agent_name=${BROKKR_AGENT_NAME:-local-agent}
agent_cluster=${BROKKR_AGENT_CLUSTER:-local}
db_name=${BROKKR_DEV_DB:-brokkr_dev}

say() { printf '%s\n' "$*" >&2; }

alive() { [[ -f "$pids/$1" ]] && kill -0 "$(cat "$pids/$1")" 2>/dev/null; }

wait_http() { # url name
	for _ in $(seq 1 100); do
		if curl -fs -o /dev/null "$1"; then return 0; fi
		sleep 0.2
	done
	say "$2 did not become ready; see $logs/$2.log"
	tail -n 20 "$logs/$2.log" >&2 || true
	return 1
}

start() { # name args...
	local name=$1; shift
	if alive "$name"; then say "$name already running (pid $(cat "$pids/$name"))"; return 0; fi
	nohup "$bin/$name" "$@" >>"$logs/$name.log" 2>&1 &
	echo $! >"$pids/$name"
}

# start_agent registers the local agent with the broker (or gives the one an
# earlier run registered a new PAK) and runs it against the local
# kube-apiserver; it prints the agent id.
start_agent() { # kubeconfig
	local kubeconfig=$1 api="http://127.0.0.1:$api_port/api/v1" admin id reply pak
	admin=$(cat "$state/admin.pak")
	if ! command -v jq >/dev/null; then
		say "jq not found: the agent is not started (apt-get install jq)"
		return 1
	fi
	id=$(curl -fs "$api/agents/?name=$agent_name&cluster_name=$agent_cluster" \
		-H "Authorization: Bearer $admin" | jq -r '.id // empty' || true)
	if [[ -n "$id" ]] && alive agent; then
		say "agent already running (pid $(cat "$pids/agent"))"
		echo "$id"
		return 0
	fi
	if [[ -z "$id" ]]; then
		reply=$(curl -fsS -X POST "$api/agents" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
			-d "{\"name\": \"$agent_name\", \"cluster_name\": \"$agent_cluster\"}")
		id=$(jq -r .agent.id <<<"$reply")
		pak=$(jq -r .initial_pak <<<"$reply")
	else
		pak=$(curl -fsS -X POST "$api/agents/$id/rotate-pak" -H "Authorization: Bearer $admin" | jq -r .pak)
	fi
	(umask 077 && echo "$pak" >"$state/agent.pak")
	export BROKKR__AGENT__BROKER_URL="http://127.0.0.1:$api_port"
	export BROKKR__AGENT__PAK="$pak"
	export BROKKR__AGENT__AGENT_NAME="$agent_name"
	export BROKKR__AGENT__CLUSTER_NAME="$agent_cluster"
	export BROKKR__AGENT__KUBECONFIG_PATH="$kubeconfig"
	export BROKKR__AGENT__HEALTH_PORT="$agent_port"
	export BROKKR__AGENT__OUTBOX_DIR="$state/agent-outbox"
	export BROKKR__AGENT__POLLING_INTERVAL=${BROKKR__AGENT__POLLING_INTERVAL:-5}
	export BROKKR__AGENT__SHUTDOWN_GRACE_SECONDS=${BROKKR__AGENT__SHUTDOWN_GRACE_SECONDS:-5}
	start agent start
	wait_http "http://127.0.0.1:$agent_port/readyz" agent || return 1
	echo "$id"
}

up() {
	mkdir -p "$logs" "$pids"
	set -a
	eval "$("$devenv" up)"
	set +a
	db_url=$("$devenv" createdb "$db_name")
	redis_url=$BROKKR_TEST_REDIS_URL

	export BROKKR__DATABASE__URL="$db_url"
	export BROKKR__REDIS__URL="$redis_url"
	export BROKKR__LOG__FORMAT=${BROKKR__LOG__FORMAT:-json}
	export BROKKR__LOG__LEVEL=${BROKKR__LOG__LEVEL:-info}
	export BROKKR__HTTP__ADDR="127.0.0.1:$api_port"
	export BROKKR__AUTH__ADDR="127.0.0.1:$auth_port"
	export BROKKR__AUTH__URL="http://127.0.0.1:$auth_port"
	export BROKKR__BROKER__ADMIN_PAK_FILE="$state/admin.pak"
	export BROKKR__TEMPLATING__ADDR="127.0.0.1:$templating_port"
	export BROKKR__TEMPLATING__URL="http://127.0.0.1:$templating_port"
	export BROKKR__SCHEDULER__ADDR="127.0.0.1:$scheduler_port"
	export BROKKR__WEBHOOK_DISPATCH__ADDR="127.0.0.1:$webhook_port"
	# A local developer stack: webhook receivers on 127.0.0.1 must work, so
	# the SSRF guard lets private addresses through here (never in production).
	export BROKKR__BROKER__WEBHOOK_ALLOW_PRIVATE=${BROKKR__BROKER__WEBHOOK_ALLOW_PRIVATE:-true}
	# One webhook encryption key per dev state, kept across `make up`s so
	# stored webhook URLs stay readable.
	if [[ -z "${BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY:-}" ]]; then
		if [[ ! -s "$state/webhook.key" ]]; then
			(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$state/webhook.key")
		fi
		BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY=$(cat "$state/webhook.key")
		export BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY
	fi

	say "migrating $db_name"
	"$bin/api" migrate up >>"$logs/migrate.log" 2>&1 || { tail -n 20 "$logs/migrate.log" >&2; exit 1; }

	start templating serve
	wait_http "http://127.0.0.1:$templating_port/readyz" templating
	start auth serve
	wait_http "http://127.0.0.1:$auth_port/readyz" auth
	if [[ ! -s "$state/admin.pak" ]]; then
		# The database was bootstrapped by an earlier run whose PAK file is
		# gone: rotate so this run can print a working admin PAK.
		"$bin/auth" rotate admin 2>>"$logs/auth.log" | sed -n 's/^New PAK: //p' >"$state/admin.pak"
		chmod 600 "$state/admin.pak"
	fi
	start api serve
	wait_http "http://127.0.0.1:$api_port/readyz" api
	start work-order-scheduler serve
	wait_http "http://127.0.0.1:$scheduler_port/readyz" work-order-scheduler
	start webhook-dispatch serve
	wait_http "http://127.0.0.1:$webhook_port/readyz" webhook-dispatch

	local pak
	pak=$(cat "$state/admin.pak")
	{
		echo "BROKKR_URL=http://127.0.0.1:$api_port"
		echo "BROKKR_CONSOLE_URL=http://127.0.0.1:$api_port/ui/"
		echo "BROKKR_ADMIN_PAK=$pak"
	} >"$state/dev.env"
	chmod 600 "$state/dev.env"
	echo "Brokkr is up."
	echo "  broker URL: http://127.0.0.1:$api_port"
	echo "  console:    http://127.0.0.1:$api_port/ui/ (sign in with the admin PAK)"
	echo "  admin PAK:  $pak"
	echo "  webhooks:   webhook-dispatch on http://127.0.0.1:$webhook_port (receivers on 127.0.0.1 allowed)"
	echo "  env file:   .brokkr/dev.env (set -a; . .brokkr/dev.env; set +a)"
	echo "  logs:       .brokkr/logs/"

	# The local cluster and agent follow: at once when the kube-apiserver is
	# built, otherwise a background job builds it first (about 11 minutes
	# cold on two cores) so the broker is usable meanwhile.
	if testenv_built; then
		cluster || true
	elif alive cluster; then
		say "local cluster: still building in the background (pid $(cat "$pids/cluster")); progress: tools/devenv/stack.sh status"
	else
		# setsid: the job leads its own process group, so `make down` stops
		# the build with it.
		setsid nohup "$0" cluster >>"$logs/cluster.log" 2>&1 </dev/null &
		echo $! >"$pids/cluster"
		echo "  cluster:    kube-apiserver not built yet; building it in the background (~11 min cold),"
		echo "              then the local cluster and agent start by themselves and .brokkr/dev.env gets KUBECONFIG."
		echo "              progress: tools/devenv/stack.sh status (or tail -f .brokkr/logs/cluster.log)"
	fi
}

k8s_bin=${BROKKR_TESTENV_BIN:-$HOME/.cache/brokkr/testenv/v1.37.2/bin}
testenv_built() { [[ -x "$k8s_bin/kube-apiserver" && -x "$k8s_bin/etcd" && -f "$k8s_bin/.stamp" ]]; }

# cluster builds the testenv binaries if needed (cached, flock), starts the
# local kube-apiserver and the agent, and adds them to dev.env.
cluster() {
	mkdir -p "$logs" "$pids"
	if ! testenv_built; then
		say "[cluster $(date +%H:%M:%S)] building kube-apiserver, etcd and kwok (tools/testenv/build.sh)"
		"$root/tools/testenv/build.sh" 2>&1 | tee -a "$logs/testenv-build.log" >&2 || { say "[cluster] build failed; see $logs/testenv-build.log"; return 1; }
	fi
	local out kubeconfig kubectl agent_id=""
	if ! out=$(cd "$root" && go run ./tools/cmd/testenv up --dir "$state/testenv" 2>>"$logs/testenv.log"); then
		say "[cluster] testenv did not start; see $logs/testenv.log"
		return 1
	fi
	kubeconfig=$(sed -n 's/^KUBECONFIG=//p' <<<"$out")
	kubectl=$(sed -n 's/^KUBECTL=//p' <<<"$out")
	if [[ -x "$bin/agent" ]]; then
		agent_id=$(start_agent "$kubeconfig") || agent_id=""
	else
		say "agent binary missing: run 'make build'"
	fi
	sed -i '/^KUBECONFIG=/d; /^KUBECTL=/d; /^BROKKR_AGENT_ID=/d' "$state/dev.env"
	{
		echo "KUBECONFIG=$kubeconfig"
		echo "KUBECTL=$kubectl"
		[[ -n "$agent_id" ]] && echo "BROKKR_AGENT_ID=$agent_id"
		true
	} >>"$state/dev.env"
	echo "Local cluster is up."
	echo "  KUBECONFIG: $kubeconfig"
	[[ -n "$agent_id" ]] && echo "  agent:      $agent_name in cluster $agent_cluster ($agent_id), health on http://127.0.0.1:$agent_port/health"
	echo "  env file:   .brokkr/dev.env now has KUBECONFIG, KUBECTL and BROKKR_AGENT_ID"
}

status() {
	local name
	for name in templating auth api work-order-scheduler webhook-dispatch agent; do
		if alive "$name"; then echo "$name: running (pid $(cat "$pids/$name"))"; else echo "$name: stopped"; fi
	done
	if alive cluster; then
		echo "cluster: building/starting in the background (pid $(cat "$pids/cluster")); last lines:"
		tail -n 3 "$logs/cluster.log" 2>/dev/null | sed 's/^/  /'
	elif [[ -d "$state/testenv" ]]; then
		echo "cluster: started (.brokkr/testenv)"
	else
		echo "cluster: not started"
	fi
}

down() {
	if alive cluster; then
		kill -TERM -- "-$(cat "$pids/cluster")" 2>/dev/null || true
		say "stopped the background cluster build"
	fi
	rm -f "$pids/cluster"
	for name in agent webhook-dispatch work-order-scheduler api auth templating; do
		if alive "$name"; then
			kill -TERM "$(cat "$pids/$name")" 2>/dev/null || true
			for _ in $(seq 1 50); do alive "$name" || break; sleep 0.1; done
			alive "$name" && kill -KILL "$(cat "$pids/$name")" 2>/dev/null || true
		fi
		rm -f "$pids/$name"
	done
	if [[ -d "$state/testenv" ]]; then
		(cd "$root" && go run ./tools/cmd/testenv down --dir "$state/testenv") >/dev/null 2>&1 || true
	fi
	"$devenv" down
	say "Brokkr is down."
}

case "${1:-}" in
up) up ;;
down) down ;;
cluster) cluster ;;
status) status ;;
*) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
