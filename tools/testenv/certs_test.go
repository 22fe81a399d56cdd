package testenv

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The control plane trusts exactly this PKI: a self-signed CA, a serving
// certificate for the apiserver's names and an admin client certificate.
func TestWritePKIChainsToTheCA(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := writePKI(dir, nil); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(dir, caCertFile))
	if !ca.IsCA || ca.CheckSignatureFrom(ca) != nil {
		t.Fatalf("CA: IsCA %v, self-signed check %v", ca.IsCA, ca.CheckSignatureFrom(ca))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	serving := readCert(t, filepath.Join(dir, servingCrtFile))
	if _, err := serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: "kubernetes.default.svc",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("serving certificate: %v", err)
	}
	admin := readCert(t, filepath.Join(dir, adminCrtFile))
	if _, err := admin.Verify(x509.VerifyOptions{Roots: roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("admin certificate: %v", err)
	}
	if len(admin.Subject.Organization) != 1 || admin.Subject.Organization[0] != "system:masters" {
		t.Fatalf("admin organization = %v", admin.Subject.Organization)
	}
	if serving.SerialNumber.Cmp(admin.SerialNumber) == 0 || serving.SerialNumber.Cmp(ca.SerialNumber) == 0 {
		t.Fatal("serial numbers repeat")
	}
}
