//go:build !cgo || !unix

package dnssystem

import (
	"context"
	"net/netip"
)

// platformResolver names the resolver lookupPlatform uses: without cgo on a
// Unix system there is no getaddrinfo(3) to call, and Go's resolver answers.
const platformResolver = "go"

// lookupPlatform looks host up with Go's resolver.
func (r *Resolver) lookupPlatform(ctx context.Context, host string) ([]netip.Addr, error) {
	return r.lookupGo(ctx, host)
}
