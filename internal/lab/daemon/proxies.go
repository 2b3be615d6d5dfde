package daemon

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
)

// Proxy is a proxy server, microsocks (SOCKS5) or tinyproxy (HTTP
// CONNECT), listening on a loopback port.
type Proxy struct {
	process
	// Addr is the address the proxy listens on.
	Addr netip.AddrPort
}

// StartMicrosocks starts microsocks, a SOCKS5 proxy. With user set it
// requires that username and pass.
func StartMicrosocks(user, pass string) (_ *Proxy, err error) {
	bin, err := program("microsocks", "microsocks")
	if err != nil {
		return nil, err
	}
	p := &Proxy{process: process{name: "microsocks"}}
	defer closeOnError(&p.process, &err)
	if p.dir, err = newDir("microsocks", nil); err != nil {
		return nil, err
	}
	if p.Addr, err = FreePort(); err != nil {
		return nil, err
	}
	args := []string{"-i", p.Addr.Addr().String(), "-p", strconv.Itoa(int(p.Addr.Port()))}
	if user != "" {
		args = append(args, "-u", user, "-P", pass)
	}
	if err := p.start(bin, args, nil, listening(p.Addr)); err != nil {
		return nil, err
	}
	return p, nil
}

// StartTinyproxy starts tinyproxy, an HTTP proxy that allows CONNECT to any
// port, with the configuration lines extra added to its own.
func StartTinyproxy(extra string) (_ *Proxy, err error) {
	bin, err := program("tinyproxy", "tinyproxy")
	if err != nil {
		return nil, err
	}
	p := &Proxy{process: process{name: "tinyproxy"}}
	defer closeOnError(&p.process, &err)
	if p.dir, err = newDir("tinyproxy", nil); err != nil {
		return nil, err
	}
	if p.Addr, err = FreePort(); err != nil {
		return nil, err
	}
	conf := filepath.Join(p.dir, "tinyproxy.conf")
	data := fmt.Appendf(nil, "Port %d\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\nDisableViaHeader Yes\n%s\n", p.Addr.Port(), extra)
	if err := writeFile(conf, data, 0o600, nil); err != nil {
		return nil, err
	}
	if err := p.start(bin, []string{"-d", "-c", conf}, nil, listening(p.Addr)); err != nil {
		return nil, err
	}
	return p, nil
}

// ProxyFor returns a function that fails tb when err is set, and otherwise
// stops p when tb ends and returns its address, for a test:
//
//	addr := daemon.ProxyFor(t)(daemon.StartMicrosocks("", ""))
func ProxyFor(tb testing.TB) func(p *Proxy, err error) string {
	return func(p *Proxy, err error) string {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { p.Close() })
		return p.Addr.String()
	}
}
