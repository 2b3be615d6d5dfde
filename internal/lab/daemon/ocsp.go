package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// OCSPResponder is openssl's OCSP responder, behind a relay of whole
// requests.
//
// openssl 3.0's responder spins for good on a connection closed before its
// request line, answering no one after it (openssl/openssl#31129; its
// -timeout does not help, #23934): a port scan, or another test's dial of
// an address it took to be refused, would stall every check after it. So
// openssl listens on a port of its own choosing, and Addr is a Go reverse
// proxy that hands it only requests it has read whole, each on a
// connection of its own. Every response is still openssl's.
type OCSPResponder struct {
	process
	// Addr is the address the certificates name: the relay's.
	Addr  netip.AddrPort
	relay *http.Server
}

// acceptLine is what openssl prints once it listens: "ACCEPT [::]:port".
var acceptLine = regexp.MustCompile(`ACCEPT \S*:(\d+) PID=`)

// StartOCSPResponder starts openssl's OCSP responder, answering for the
// certificates of index (openssl ca's index.txt format) with responses
// signed by the CA in caFile and caKey, and its relay on addr. It is ready
// when openssl says it waits for requests.
func StartOCSPResponder(addr netip.AddrPort, index, caFile, caKey string) (_ *OCSPResponder, err error) {
	bin, err := program("openssl", "openssl")
	if err != nil {
		return nil, err
	}
	o := &OCSPResponder{process: process{name: "openssl ocsp"}, Addr: addr}
	defer func() {
		if err != nil {
			err = errors.Join(err, o.Close())
		}
	}()
	if o.dir, err = newDir("ocsp", nil); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("openssl ocsp's relay: %w", err)
	}
	// -port 0: openssl binds every address of a port the kernel picks, and
	// says which.
	args := []string{"ocsp", "-index", index, "-port", "0",
		"-rsigner", caFile, "-rkey", caKey, "-CA", caFile, "-ignore_err", "-nmin", "60"}
	var port string
	err = o.start(bin, args, nil, func() error {
		m := acceptLine.FindStringSubmatch(o.Output())
		if m == nil || !strings.Contains(o.Output(), "waiting for OCSP client connections") {
			return errors.New("not waiting for OCSP requests yet")
		}
		port = m[1]
		return nil
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	target := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", port)}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// One connection a request, as openssl answers them: one at a time.
	proxy.Transport = &http.Transport{DisableKeepAlives: true}
	o.relay = &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go o.relay.Serve(ln) // returns ErrServerClosed at Close
	return o, nil
}

// Close stops the relay, then openssl.
func (o *OCSPResponder) Close() error {
	var err error
	if o.relay != nil {
		err = o.relay.Close()
	}
	return errors.Join(err, o.process.Close())
}
