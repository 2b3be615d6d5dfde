package dnssystem

import (
	"context"
	"testing"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"
)

// TestResolveOutOfDescriptors lowers this process's descriptor limit to 0
// for one resolution: Go's resolver cannot open its socket to the lab's DNS
// server, getaddrinfo cannot open /etc/hosts (glibc then says "Name or
// service not known"), and either way the failure is local.fd_limit, not a
// failure of the name. With the limit restored, Go's resolver answers. No
// query can leave the process while no descriptor can be opened.
func TestResolveOutOfDescriptors(t *testing.T) {
	s := startDNS(t)
	for _, tc := range []struct {
		preferGo bool
		host     string
	}{{true, "both.invalid"}, {false, "localhost"}} {
		lab := s
		if !tc.preferGo {
			lab = nil // getaddrinfo asks the system's resolver
		}
		r, _ := newResolver(t, lab, map[string]cty.Value{"prefer_go": cty.BoolVal(tc.preferGo)})
		var old unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Fatal(err)
		}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 0, Max: old.Max}); err != nil {
			t.Fatal(err)
		}
		resp, err := r.Resolve(context.Background(), &sdk.ResolveRequest{Host: tc.host, Port: 443})
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Fatalf("restore RLIMIT_NOFILE: %v", err)
		}
		if err != nil || resp.Failure == nil || resp.Failure.Class != sdk.ClassFDLimit {
			t.Errorf("prefer_go %v: Resolve(%s) = %+v, %v; want a local.fd_limit failure", tc.preferGo, tc.host, resp.Failure, err)
		}
		if tc.preferGo {
			if _, ph := resolve(t, context.Background(), r, tc.host); !ph.OK {
				t.Errorf("Resolve after the limit was restored failed: %+v", ph)
			}
		}
	}
}
