// Package webhookhttp sends webhook deliveries over HTTP: one POST with the
// documented headers and an optional HMAC signature, the subscription's
// timeout, no redirects, no proxy, and an SSRF guard that checks the
// address actually dialled (after DNS resolution), so a hostname that
// resolves to a loopback, link-local or cloud-metadata address is refused
// as surely as the literal address. Error texts are generic: they never
// contain the URL, the host or the auth header, which are secrets.
package webhookhttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// Options configures a Sender.
type Options struct {
	// AllowPrivate turns the SSRF guard off
	// (BROKKR__BROKER__WEBHOOK_ALLOW_PRIVATE): for local development, where
	// receivers listen on 127.0.0.1.
	AllowPrivate bool
	// MaxIdleConnsPerHost bounds kept-alive connections per receiver.
	MaxIdleConnsPerHost int
	// UserAgent is sent with every request.
	UserAgent string
}

// Request and Result are the domain's attempt types.
type (
	Request = webhook.Request
	Result  = webhook.Result
)

// Sender posts deliveries. It is safe for concurrent use and keeps
// connections alive across deliveries.
type Sender struct {
	client       *http.Client
	userAgent    string
	allowPrivate bool
}

// New returns a Sender.
func New(opts Options) *Sender {
	g := guard{allowPrivate: opts.AllowPrivate}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	perHost := opts.MaxIdleConnsPerHost
	if perHost <= 0 {
		perHost = 16
	}
	tr := &http.Transport{
		// A proxy would dial on our behalf and bypass the guard.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: perHost,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "Brokkr-Webhook/1.0"
	}
	return &Sender{
		client: &http.Client{
			Transport: tr,
			// Redirects are not followed: the 3xx is the answer, and a
			// redirect cannot steer a delivery somewhere the guard would
			// have refused.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		userAgent:    ua,
		allowPrivate: opts.AllowPrivate,
	}
}

// Close drops idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Send performs one POST.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	u, err := url.Parse(r.URL.Reveal())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Result{Error: "invalid URL", Duration: time.Since(start), Refused: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return Result{Error: "invalid URL", Duration: time.Since(start), Refused: true}
	}
	req.Header.Set("Content-Type", webhook.ContentType)
	req.Header.Set("User-Agent", s.userAgent)
	if r.EventType != "" {
		req.Header.Set(webhook.HeaderEventType, r.EventType)
	}
	if r.DeliveryID != "" {
		req.Header.Set(webhook.HeaderDeliveryID, r.DeliveryID)
	}
	if !r.AuthHeader.IsZero() {
		req.Header.Set("Authorization", r.AuthHeader.Reveal())
	}
	if !r.SigningSecret.IsZero() {
		req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(r.SigningSecret.Reveal()), r.Body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var blocked *BlockedError
		return Result{Error: Describe(err), Duration: time.Since(start), Refused: errors.As(err, &blocked)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return Result{StatusCode: resp.StatusCode, Body: body, Duration: time.Since(start)}
}

// BlockedError is the SSRF guard's refusal.
type BlockedError struct{ Reason string }

func (e *BlockedError) Error() string { return "destination address not allowed (" + e.Reason + ")" }

// Describe turns a transport error into a fixed phrase. It never returns
// the error's own text, which would name the URL or the address.
func Describe(err error) string {
	var blocked *BlockedError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.As(err, &blocked):
		return blocked.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "request timed out"
	case errors.Is(err, context.Canceled):
		return "request cancelled"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "host not found"
		}
		return "DNS lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalidCert):
		return "TLS certificate verification failed"
	case errors.As(err, &recordErr):
		return "TLS handshake failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the receiver"
	}
	return "request failed"
}

// CheckTarget refuses, when the SSRF guard is on, a URL whose host is a
// literal address (or localhost) that the dial-time guard would refuse
// anyway, so the mistake is a clear 422 at creation instead of failed
// deliveries later. Host names are resolved only when dialling.
func (s *Sender) CheckTarget(raw string) error {
	if s.allowPrivate {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil // ValidateURL reports unparsable URLs
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	reason := ""
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		reason = "loopback"
	} else if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // an IPv6 zone
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		reason = Forbidden(ip)
	}
	if reason == "" {
		return nil
	}
	return domain.Unprocessable("URL targets a " + reason + " address, which webhook deliveries may not reach" +
		" (broker.webhook_allow_private allows it for development)")
}

// guard is the dial-time SSRF check.
type guard struct{ allowPrivate bool }

func (g guard) control(_, address string, _ syscall.RawConn) error {
	if g.allowPrivate {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &BlockedError{Reason: "unparsable address"}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &BlockedError{Reason: "unparsable address"}
	}
	if reason := Forbidden(ip); reason != "" {
		return &BlockedError{Reason: reason}
	}
	return nil
}

// metadata holds cloud instance-metadata addresses outside the link-local
// ranges (169.254.169.254 is link-local already).
var metadata = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("192.0.0.192"),     // Oracle Cloud
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
)

// Forbidden reports why broker-mode deliveries may not reach ip, or "" when
// they may: loopback, link-local (which holds 169.254.169.254),
// unspecified/"this network", cloud metadata, and the same addresses
// behind IPv4-mapped or NAT64 IPv6 forms. Private (RFC 1918/ULA) ranges are
// allowed: receivers on an internal network are legitimate, and in-cluster
// services should use agent delivery anyway.
func Forbidden(ip netip.Addr) string {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, m := range metadata {
		if ip == m {
			return "metadata"
		}
	}
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		if ip == netip.MustParseAddr("169.254.169.254") {
			return "metadata"
		}
		return "link-local"
	case ip.IsUnspecified(), ip.Is4() && thisNetwork.Contains(ip):
		return "unspecified"
	case ip.IsInterfaceLocalMulticast():
		return "link-local"
	}
	return ""
}
