package clusterauth

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Authority is the cluster's certificate authority, derived from the
// cluster token: every holder of the token derives the same one.
type Authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     ed25519.PrivateKey
}

// caInfo separates the CA key from any other use of the token.
const caInfo = "fleet etcd certificate authority v1"

// DeriveAuthority derives the CA of a cluster token. The CA's key comes
// from HKDF-SHA256 of the token; its certificate has fixed fields, so it is
// the same byte for byte on every machine.
func DeriveAuthority(token string) (*Authority, error) {
	if err := CheckToken(token); err != nil {
		return nil, fmt.Errorf("derive CA: %w", err)
	}
	seed, err := hkdf.Key(sha256.New, []byte(token), nil, caInfo, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("derive CA: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	skid := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"fleet"}, CommonName: "fleet cluster CA"},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2220, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          skid[:20],
	}
	// Ed25519 signatures are deterministic: rand is not read.
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("derive CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("derive CA: %w", err)
	}
	return &Authority{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
	}, nil
}

// Certificate returns the CA certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// CertPEM returns the CA certificate in PEM.
func (a *Authority) CertPEM() []byte { return slices.Clone(a.certPEM) }

// Pool returns a pool holding only the CA.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.cert)
	return p
}

// Issue makes a leaf certificate for hosts (IP addresses or DNS names),
// usable as TLS server and client certificate, valid from now for ten
// years, with a fresh key from r.
func (a *Authority) Issue(hosts []string, now time.Time, r io.Reader) (certPEM, keyPEM []byte, err error) {
	pub, key, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate: %w", err)
	}
	serial := make([]byte, 16)
	if _, err := io.ReadFull(r, serial); err != nil {
		return nil, nil, fmt.Errorf("issue certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial),
		Subject:      pkix.Name{Organization: []string{"fleet"}, CommonName: "fleet etcd member"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(r, tmpl, a.cert, pub, a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}

// Files are PEM files written by WriteFiles.
type Files struct {
	CAFile, CertFile, KeyFile string
}

// WriteFiles writes the CA certificate (ca.pem) and a leaf for hosts
// (member.pem, member-key.pem) into dir, created with mode 0700; the files
// get mode 0600.
func (a *Authority) WriteFiles(dir string, hosts []string, now time.Time, r io.Reader) (Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("certificates: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("certificates: %w", err)
	}
	cert, key, err := a.Issue(hosts, now, r)
	if err != nil {
		return Files{}, err
	}
	f := Files{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "member.pem"),
		KeyFile:  filepath.Join(dir, "member-key.pem"),
	}
	for path, data := range map[string][]byte{f.CAFile: a.certPEM, f.CertFile: cert, f.KeyFile: key} {
		if err := WriteSecret(path, data); err != nil {
			return Files{}, fmt.Errorf("certificates: %w", err)
		}
	}
	return f, nil
}

// ClientTLS is a client configuration that trusts only the CA.
func (a *Authority) ClientTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: a.Pool()}
}
