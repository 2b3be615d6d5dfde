package sshhandshake

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseStream feeds the start of a hostile server's side of an SSH
// connection to parseStream and to the recorder's incremental search for the
// version line, byte by byte as x/crypto/ssh reads it: neither may panic,
// and both must find the same version line.
func FuzzParseStream(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n\x00\x00\x00\x2c\x04\x14" +
		"0123456789abcdef\x00\x00\x00\x11curve25519-sha256\x00\x00\x00\x0bssh-ed25519" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("hello\nSSH-2.0-x\n\x00\x00\x00\x05\x04\x14\x00\x00\x00\x00"))
	f.Add([]byte("SSH-2.0-liar\r\n\xff\xff\xff\xff\x00"))
	f.Add([]byte(strings.Repeat("not yet\n", 1100) + "SSH-2.0-late\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		version, init, err := parseStream(data)
		if init != nil && (err != nil || version == "") {
			t.Fatalf("parseStream = %q, %+v, %v: a KEXINIT without its version, or with an error", version, init, err)
		}
		scanned, end := 0, -1
		for i := 1; i <= len(data) && end < 0; i++ {
			end = versionEnd(data[:i], &scanned)
		}
		if (end >= 0) != (version != "") {
			t.Fatalf("versionEnd found the end at %d, parseStream the version %q", end, version)
		}
		if end >= 0 && !bytes.HasSuffix(bytes.TrimRight(data[:end], "\r\n"), []byte(version)) {
			t.Fatalf("version %q does not end at %d", version, end)
		}
	})
}
