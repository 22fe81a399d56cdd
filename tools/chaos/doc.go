// Package chaos is the chaos suite: it runs every Brokkr service as a real
// process against a private PostgreSQL and Redis and a local kube-apiserver,
// holds a steady load on them, kills and restarts each of them in turn and
// then checks that nothing acknowledged was lost or done twice. Everything
// lives in the tests; see docs/reliability.md for what it asserts and how to
// run it (`make chaos` for the full run; `go test ./tools/chaos/` runs the
// short one).
package chaos
