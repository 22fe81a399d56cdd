package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI file names inside <run dir>/pki.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	servingCrtFile = "apiserver.crt"
	servingKeyFile = "apiserver.key"
	adminCrtFile   = "admin.crt"
	adminKeyFile   = "admin.key"
	saKeyFile      = "sa.key"
	saPubFile      = "sa.pub"
	tokenFile      = "tokens.csv"
)

// keyPair is a PEM encoded certificate and private key.
type keyPair struct {
	cert, key []byte
	parsed    *x509.Certificate
	signer    crypto.Signer
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
}

// sign gives tmpl a fresh key and serial number and signs it with the
// parent's key; a nil parent makes it self-signed.
func sign(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	k, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, err
	}
	issuer, signer := tmpl, crypto.Signer(k)
	if parent != nil {
		issuer, signer = parent.parsed, parent.signer
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, k.Public(), signer)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:    keyPEM,
		parsed: parsed,
		signer: k,
	}, nil
}

func newCA() (*keyPair, error) {
	now := time.Now()
	return sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "brokkr-testenv-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil)
}

func (ca *keyPair) issue(tmpl *x509.Certificate) (*keyPair, error) {
	now := time.Now()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(5 * 365 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	return sign(tmpl, ca)
}

// writePKI creates a CA, the apiserver serving certificate, the admin client
// certificate (O=system:masters), the service-account key pair and a static
// token file in dir. It returns the CA and admin PEMs for the kubeconfig.
func writePKI(dir string, tokens []staticToken) (ca, admin *keyPair, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	ca, err = newCA()
	if err != nil {
		return nil, nil, fmt.Errorf("ca: %w", err)
	}
	serving, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local",
		},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, net.ParseIP(serviceIP)},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("serving cert: %w", err)
	}
	admin, err = ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "brokkr-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("admin cert: %w", err)
	}
	sa, saKeyPEM, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("service account key: %w", err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(sa.Public())
	if err != nil {
		return nil, nil, err
	}
	var csv []byte
	for _, t := range tokens {
		if t.Groups == "" {
			csv = fmt.Appendf(csv, "%s,%s,%s\n", t.Token, t.User, t.UID)
		} else {
			csv = fmt.Appendf(csv, "%s,%s,%s,%q\n", t.Token, t.User, t.UID, t.Groups)
		}
	}
	files := map[string][]byte{
		caCertFile:     ca.cert,
		caKeyFile:      ca.key,
		servingCrtFile: serving.cert,
		servingKeyFile: serving.key,
		adminCrtFile:   admin.cert,
		adminKeyFile:   admin.key,
		saKeyFile:      saKeyPEM,
		saPubFile:      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
		tokenFile:      csv,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, nil, err
		}
	}
	return ca, admin, nil
}
