package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab/daemon"
)

// nginxModified is when startNginx's / was last modified.
var nginxModified = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// startNginx runs nginx (Debian's package) on a free loopback port with
// HTTPS and HTTP/2, a certificate of the lab's CA for api.probe.test and
// 127.0.0.1, and three locations: / answers 200 "ok\n" (a file, sent with
// Last-Modified nginxModified), /missing 404, and /redirect a 301 to /. It
// is stopped at the end of the test. It returns the port.
func startNginx(t *testing.T) int {
	t.Helper()
	dir := t.TempDir()
	cert, err := testLab.CA.Issue([]string{"api.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for name, src := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
	} {
		if err := os.WriteFile(name, src, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// / is a file modified at nginxModified, which nginx sends as
	// Last-Modified.
	index := filepath.Join(dir, "index.txt")
	if err := os.WriteFile(index, []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(index, nginxModified, nginxModified); err != nil {
		t.Fatal(err)
	}
	addr, err := daemon.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	n, err := daemon.StartNginx(addr, fmt.Sprintf(`	server {
		listen %s ssl http2;
		ssl_certificate %q;
		ssl_certificate_key %q;
		location = / { root %q; default_type text/plain; try_files /index.txt =404; }
		location = /redirect { return 301 /; }
	}
`, addr, certFile, keyFile, dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return int(addr.Port())
}
