//go:build cgo && unix

package dnssystem

/*
#include <stdlib.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netdb.h>

#ifndef EAI_NODATA
#define EAI_NODATA EAI_NONAME
#endif
*/
import "C"

import (
	"context"
	"net"
	"net/netip"
	"unsafe"

	"github.com/probe-dev/probe/core/sdk"
)

// platformResolver names the resolver lookupPlatform uses.
const platformResolver = "getaddrinfo"

// lookupPlatform asks the C library's getaddrinfo(3), as a C program on this
// host would (nsswitch, /etc/hosts, resolv.conf, and whatever else the
// platform configures), for host's addresses of network. Canceling ctx
// returns at once; getaddrinfo, which cannot be interrupted, finishes in the
// background.
func (r *Resolver) lookupPlatform(ctx context.Context, host string) ([]netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, &net.DNSError{Name: host, Err: err.Error(), IsTimeout: true}
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	done := make(chan result, 1)
	go func() {
		addrs, err := getaddrinfo(host, r.network)
		done <- result{addrs, err}
	}()
	select {
	case res := <-done:
		return res.addrs, res.err
	case <-ctx.Done():
		return nil, &net.DNSError{Name: host, Err: ctx.Err().Error(), IsTimeout: true}
	}
}

// getaddrinfo calls getaddrinfo(3) for host's stream-socket addresses of
// network ("ip", "ip4" or "ip6"), in the order it returns them.
func getaddrinfo(host, network string) ([]netip.Addr, error) {
	hints := C.struct_addrinfo{ai_family: C.AF_UNSPEC, ai_socktype: C.SOCK_STREAM}
	switch network {
	case "ip4":
		hints.ai_family = C.AF_INET
	case "ip6":
		hints.ai_family = C.AF_INET6
	}
	chost := C.CString(host)
	defer C.free(unsafe.Pointer(chost))
	var res *C.struct_addrinfo
	rc, errno := C.getaddrinfo(chost, nil, &hints, &res)
	if rc != 0 {
		de := &net.DNSError{Name: host, Err: C.GoString(C.gai_strerror(rc))}
		switch {
		case sdk.FDLimit(errno):
			// A file or socket getaddrinfo could not open for want of a
			// descriptor: glibc then says "Name or service not known", but
			// the answer says nothing of the name. (cgo clears errno before
			// the call.)
			de.Err, de.UnwrapErr = errno.Error(), errno
		case rc == C.EAI_SYSTEM && errno != nil:
			de.Err = errno.Error()
		case rc == C.EAI_NONAME || rc == C.EAI_NODATA:
			de.IsNotFound = true
		case rc == C.EAI_AGAIN:
			de.IsTemporary = true
		}
		return nil, de
	}
	defer C.freeaddrinfo(res)
	var addrs []netip.Addr
	for ai := res; ai != nil; ai = ai.ai_next {
		switch ai.ai_family {
		case C.AF_INET:
			sa := (*C.struct_sockaddr_in)(unsafe.Pointer(ai.ai_addr))
			addrs = append(addrs, netip.AddrFrom4(*(*[4]byte)(unsafe.Pointer(&sa.sin_addr))))
		case C.AF_INET6:
			sa := (*C.struct_sockaddr_in6)(unsafe.Pointer(ai.ai_addr))
			addrs = append(addrs, netip.AddrFrom16(*(*[16]byte)(unsafe.Pointer(&sa.sin6_addr))))
		}
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Name: host, Err: "no such host", IsNotFound: true}
	}
	return addrs, nil
}
