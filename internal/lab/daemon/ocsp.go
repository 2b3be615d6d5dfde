package daemon

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// OCSPResponder is openssl's OCSP responder.
type OCSPResponder struct {
	process
	// Addr is the responder's address.
	Addr netip.AddrPort
}

// StartOCSPResponder starts openssl's OCSP responder on addr's port,
// answering for the certificates of index (openssl ca's index.txt format)
// with responses signed by the CA in caFile and caKey. It listens on every
// address of the port: openssl ocsp binds no other way. It is ready when it
// says so: a connection closed without a request stalls it (openssl 3.0),
// so none is made to see whether it listens.
func StartOCSPResponder(addr netip.AddrPort, index, caFile, caKey string) (_ *OCSPResponder, err error) {
	bin, err := program("openssl", "openssl")
	if err != nil {
		return nil, err
	}
	o := &OCSPResponder{process: process{name: "openssl ocsp"}, Addr: addr}
	defer closeOnError(&o.process, &err)
	if o.dir, err = newDir("ocsp", nil); err != nil {
		return nil, err
	}
	args := []string{"ocsp", "-index", index, "-port", strconv.Itoa(int(addr.Port())),
		"-rsigner", caFile, "-rkey", caKey, "-CA", caFile, "-ignore_err", "-nmin", "60"}
	err = o.start(bin, args, nil, func() error {
		if !strings.Contains(o.Output(), "waiting for OCSP client connections") {
			return errors.New("not waiting for OCSP requests yet")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}
