package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The whole suite's log scan (issue 10, secrets): every process any test
// started is kept, and after the last test TestMain scans everything they
// wrote. Nothing may carry a PAK, a registered secret (webhook URL, auth
// header, signing secret, encryption key) or an Authorization header. The
// scan reads the log stream (stderr); the first-start admin PAK is printed
// on auth's stdout alone (proc.stdoutText), apart from it, so the log
// stream has no exception.

var (
	scanMu     sync.Mutex
	scanProcs  []scannedProc
	scanSecret []string
)

type scannedProc struct {
	name string
	p    *proc
}

func trackProc(name string, p *proc) {
	scanMu.Lock()
	defer scanMu.Unlock()
	scanProcs = append(scanProcs, scannedProc{name, p})
}

// forbidSecret registers values that must appear in no log line.
func forbidSecret(secrets ...string) {
	scanMu.Lock()
	defer scanMu.Unlock()
	for _, s := range secrets {
		if len(s) >= 8 {
			scanSecret = append(scanSecret, s)
		}
	}
}

var (
	// pakShape is a whole PAK: <prefix>_<short>_<long base58>.
	pakShape = regexp.MustCompile(`[A-Za-z0-9.-]+_[A-Za-z0-9.-]+_[1-9A-HJ-NP-Za-km-z]{20,}`)
	// authHeader is an Authorization header or bearer token in a log line.
	authHeader = regexp.MustCompile(`(?i)("authorization"\s*:|authorization=|bearer\s+[A-Za-z0-9_.-]{8,})`)
)

// scanAllLogs scans every tracked process.
func scanAllLogs() (problems []string, lines int) {
	scanMu.Lock()
	defer scanMu.Unlock()
	return scanLogs(scanProcs, scanSecret)
}

// scanLogs returns one problem per offending line (never the secret).
func scanLogs(procs []scannedProc, secrets []string) (problems []string, lines int) {
	for _, sp := range procs {
		for i, line := range strings.Split(sp.p.output(), "\n") {
			if line == "" {
				continue
			}
			lines++
			what := ""
			switch {
			case pakShape.MatchString(line):
				what = "a PAK"
			case authHeader.MatchString(line):
				what = "an Authorization header"
			default:
				for _, s := range secrets {
					if strings.Contains(line, s) {
						what = fmt.Sprintf("a registered secret (%d characters)", len(s))
						break
					}
				}
			}
			if what != "" {
				problems = append(problems, fmt.Sprintf("%s line %d carries %s", sp.name, i+1, what))
			}
		}
	}
	return problems, lines
}

// TestLogScanFindsSecrets proves the scan can fail: each planted leak is
// reported, the admin PAK banner too should it ever reach a log stream,
// and ordinary log lines (request ids, UUIDs, config keys) are not.
func TestLogScanFindsSecrets(t *testing.T) {
	mk := func(name, out string) scannedProc {
		p := &proc{done: make(chan struct{})}
		p.out.WriteString(out)
		return scannedProc{name, p}
	}
	clean := `{"level":"INFO","msg":"http request","path":"/api/v1/agents/4bf92f35-77b3-4da6-a3ce-929d0e0e4736","request_id":"abc","client_ip":"127.0.0.1"}` + "\n" +
		`{"level":"INFO","msg":"config","key":"BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY","pak_file":"/tmp/admin.pak"}` + "\n"
	procs := []scannedProc{
		mk("auth", clean),
		mk("api", clean),
	}
	if problems, lines := scanLogs(procs, []string{"s3cr3t-signing-key"}); len(problems) != 0 || lines != 4 {
		t.Fatalf("clean logs: %v (%d lines)", problems, lines)
	}
	for _, leak := range []string{
		`{"msg":"x","token":"brokkr_BRabc123_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"}`,
		`{"msg":"x","header":"Bearer abcdefghijkl"}`,
		`{"msg":"x","Authorization":"whatever"}`,
		`{"msg":"delivery","sig":"s3cr3t-signing-key"}`,
	} {
		problems, _ := scanLogs([]scannedProc{mk("api", leak+"\n")}, []string{"s3cr3t-signing-key"})
		if len(problems) != 1 || strings.Contains(problems[0], "s3cr3t") || strings.Contains(problems[0], "GK3QN") {
			t.Errorf("leak %.30s…: %v", leak, problems)
		}
	}
	// The bootstrap banner belongs on auth's stdout, never in a log stream.
	if problems, _ := scanLogs([]scannedProc{mk("auth", "Admin PAK: brokkr_BRabc123_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8\n")}, nil); len(problems) != 1 {
		t.Errorf("banner in auth's log: %v", problems)
	}
}
