package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// The whole suite's log scan (issue 10, secrets): every process any test
// started is kept, and after the last test TestMain scans everything they
// wrote. Nothing may carry a PAK, a registered secret (webhook URL, auth
// header, signing secret, encryption key) or an Authorization header, with
// one exception: the first-start admin PAK, printed on auth's stdout as the
// single line "Admin PAK: <pak>" (and written to the 0600 file), which is
// the documented way to hand it to the operator.

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
	authHeader     = regexp.MustCompile(`(?i)("authorization"\s*:|authorization=|bearer\s+[A-Za-z0-9_.-]{8,})`)
	adminPAKBanner = regexp.MustCompile(`^Admin PAK: \S+$`)
)

// scanAllLogs returns one problem per offending line (never the secret).
func scanAllLogs() (problems []string, lines int) {
	scanMu.Lock()
	defer scanMu.Unlock()
	for _, sp := range scanProcs {
		for i, line := range strings.Split(sp.p.output(), "\n") {
			if line == "" {
				continue
			}
			lines++
			if sp.name == "auth" && adminPAKBanner.MatchString(line) {
				continue
			}
			what := ""
			switch {
			case pakShape.MatchString(line):
				what = "a PAK"
			case authHeader.MatchString(line):
				what = "an Authorization header"
			default:
				for _, s := range scanSecret {
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
