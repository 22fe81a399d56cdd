package webhookhttp

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// Issue 10 item 7: literal addresses the dial-time guard refuses are
// refused when the subscription is created (422).
func TestCheckTarget(t *testing.T) {
	s := New(Options{})
	for _, u := range []string{"http://169.254.169.254/latest", "http://[fd00:ec2::254]/", "http://127.0.0.1:8080/",
		"https://localhost/x", "http://foo.localhost/", "http://[::1]/", "http://0.0.0.0/", "http://[::ffff:169.254.169.254]/",
		"http://100.100.100.200/", "http://[64:ff9b::7f00:1]/", "http://[fe80::1%25eth0]/"} {
		if err := s.CheckTarget(u); !errors.Is(err, domain.ErrUnprocessable) {
			t.Errorf("%s: %v, want 422", u, err)
		}
	}
	for _, u := range []string{"https://hooks.example.com/x", "http://10.0.0.5/", "http://192.168.1.1:9000/", "http://[2001:db8::1]/"} {
		if err := s.CheckTarget(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if err := New(Options{AllowPrivate: true}).CheckTarget("http://127.0.0.1/"); err != nil {
		t.Errorf("allow_private: %v", err)
	}
}

// FuzzCheckTarget: every URL CheckTarget accepts has a host the dial-time
// guard would accept too, when that host is a literal address.
func FuzzCheckTarget(f *testing.F) {
	for _, s := range []string{"http://169.254.169.254/", "http://[::1]/", "http://a.example/", "http://1.2.3.4:80/x", "http://[fe80::1%eth0]/"} {
		f.Add(s)
	}
	s := New(Options{})
	f.Fuzz(func(t *testing.T, raw string) {
		if s.CheckTarget(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		host := u.Hostname()
		if i := strings.IndexByte(host, '%'); i >= 0 {
			host = host[:i]
		}
		if ip, err := netip.ParseAddr(host); err == nil && Forbidden(ip) != "" {
			t.Fatalf("%q accepted but the guard refuses %s (%s)", raw, ip, Forbidden(ip))
		}
	})
}
