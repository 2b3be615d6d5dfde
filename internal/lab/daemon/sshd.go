package daemon

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net/netip"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// SSHD is OpenSSH's sshd (Debian's openssh-server) on a loopback port with
// an Ed25519 host key of its own. As root it runs as nobody: sshd then
// needs no privilege separation directory (/run/sshd), and no test here
// authenticates.
type SSHD struct {
	process
	// Addr is the address sshd listens on, 127.0.0.1.
	Addr netip.AddrPort
	// HostKeyType is the host key's type, "ssh-ed25519".
	HostKeyType string
	// HostKeyFingerprint is the host key's SHA256 fingerprint as OpenSSH
	// prints it, "SHA256:" and unpadded base64.
	HostKeyFingerprint string
}

// StartSSHD starts sshd (-D -e -f config) with a host key generated here.
func StartSSHD() (_ *SSHD, err error) {
	bin, err := program("sshd", "openssh-server")
	if err != nil {
		return nil, err
	}
	as, err := unprivileged("nobody")
	if err != nil {
		return nil, err
	}
	s := &SSHD{process: process{name: "sshd"}}
	defer closeOnError(&s.process, &err)
	if s.dir, err = newDir("sshd", as); err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("marshal the host key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	s.HostKeyType, s.HostKeyFingerprint = sshPub.Type(), ssh.FingerprintSHA256(sshPub)
	keyFile := filepath.Join(s.dir, "ssh_host_ed25519_key")
	if err := writeFile(keyFile, pem.EncodeToMemory(block), 0o600, as); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.Addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	conf := filepath.Join(s.dir, "sshd_config")
	err = writeFile(conf, fmt.Appendf(nil, `Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
`, port, keyFile, filepath.Join(s.dir, "sshd.pid")), 0o644, as)
	if err != nil {
		return nil, err
	}
	err = s.start(bin, []string{"-D", "-e", "-f", conf}, as, dialReady(s.Addr.String(), func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("SSH-")) && bytes.Contains(b, []byte("\n"))
	}))
	if err != nil {
		return nil, err
	}
	return s, nil
}
