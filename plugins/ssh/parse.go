package sshhandshake

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// kexInit is SSH_MSG_KEXINIT (RFC 4253 §7.1), as ssh.Unmarshal reads it.
type kexInit struct {
	Cookie                  [16]byte `sshtype:"20"`
	KexAlgos                []string
	ServerHostKeyAlgos      []string
	CiphersClientServer     []string
	CiphersServerClient     []string
	MACsClientServer        []string
	MACsServerClient        []string
	CompressionClientServer []string
	CompressionServerClient []string
	LanguagesClientServer   []string
	LanguagesServerClient   []string
	FirstKexFollows         bool
	Reserved                uint32
}

// maxPacket is the largest packet every implementation must take (RFC 4253
// §6.1).
const maxPacket = 35000

// versionEnd returns the index just past the version line ("SSH-...\n") in
// b, -1 while it is incomplete. *scanned is where the search resumes, so
// that bytes arriving one at a time are searched once. (x/crypto/ssh gives
// up after 1,024 lines before the version line; the recorder's 64 KiB bound
// the search here.)
func versionEnd(b []byte, scanned *int) int {
	for {
		i := bytes.IndexByte(b[*scanned:], '\n')
		if i < 0 {
			return -1
		}
		start := lineStart(b, *scanned)
		end := *scanned + i + 1
		if bytes.HasPrefix(b[start:], []byte("SSH-")) {
			return end
		}
		*scanned = end
	}
}

// lineStart returns where the line that holds b[i] starts.
func lineStart(b []byte, i int) int {
	return bytes.LastIndexByte(b[:i], '\n') + 1
}

// parseStream reads the start of one direction of an SSH connection: lines
// before the version line (a server may send some), the version line, then
// the first binary packet, which must be a KEXINIT. It returns the version
// line without its line end, and the KEXINIT; the version alone when the
// packet is missing or malformed, with the error.
func parseStream(b []byte) (version string, init *kexInit, err error) {
	scanned := 0
	end := versionEnd(b, &scanned)
	if end < 0 {
		return "", nil, errors.New("no version line")
	}
	version = string(bytes.TrimRight(b[lineStart(b, end-1):end], "\r\n"))
	p := b[end:]
	if len(p) < 5 {
		return version, nil, errors.New("no packet after the version line")
	}
	length := binary.BigEndian.Uint32(p)
	padding := uint32(p[4])
	switch {
	case length > maxPacket:
		return version, nil, fmt.Errorf("first packet of %d bytes, more than %d", length, maxPacket)
	case uint32(len(p)-4) < length:
		return version, nil, fmt.Errorf("first packet of %d bytes, %d received", length, len(p)-4)
	case padding+1 > length:
		return version, nil, fmt.Errorf("first packet of %d bytes with %d bytes of padding", length, padding)
	}
	init = &kexInit{}
	if err := ssh.Unmarshal(p[5:4+length-padding], init); err != nil {
		return version, nil, fmt.Errorf("first packet: %w", err)
	}
	return version, init, nil
}

// agree returns the algorithm the two sides of a negotiation agree on: the
// client's first that the server has too (RFC 4253 §7.1); "" for none.
func agree(client, server []string) string {
	for _, c := range client {
		for _, s := range server {
			if c == s {
				return c
			}
		}
	}
	return ""
}
