package sshhandshake

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/probe-dev/probe/core/sdk"
)

// warmOnce runs warm once per process, from New, before any attempt.
var warmOnce sync.Once

// warm runs one handshake in memory, the plugin's own against a
// golang.org/x/crypto/ssh server in this process with an Ed25519 key, away
// from any target. The first handshake of a process pays for what Go does
// once (the key exchange's and the signature's lazy set-up, first
// allocations): against an in-process server on loopback it took 2.5-4.0
// ms where the next ones took 1.2-2.2 ms. probe's default is one attempt
// per target, so that cost would be in the ssh phase of every target of a
// run. Its error is for the tests: a warm-up that fails only leaves the
// first handshake cold.
func warm() error {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return err
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	// A socketpair, not net.Pipe: both sides write their version line
	// before they read, which an unbuffered pipe would deadlock.
	client, server, err := socketPair()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _, _ = ssh.NewServerConn(server, cfg)
		_ = server.Close()
	}()
	h := &Handshaker{pin: ssh.FingerprintSHA256(signer.PublicKey())}
	resp, err := h.Handshake(context.Background(), &sdk.HandshakeRequest{Conn: client, Host: "warm.invalid",
		Address: netip.AddrPortFrom(netip.IPv6Loopback(), 22)})
	_ = client.Close()
	<-done
	switch {
	case err != nil:
		return err
	case resp.Failure != nil:
		return fmt.Errorf("%s: %s", resp.Failure.Class, resp.Failure.Message)
	}
	return nil
}

// socketPair returns both ends of a connected AF_UNIX stream socketpair: in
// memory, as no network is to be touched while a pipeline is loaded.
func socketPair() (net.Conn, net.Conn, error) {
	syscall.ForkLock.RLock() // no child inherits the pair before close-on-exec is set
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "warm")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			if i == 0 {
				syscall.Close(fds[1])
			}
			return nil, nil, fmt.Errorf("socketpair: %w", err)
		}
	}
	return conns[0], conns[1], nil
}
