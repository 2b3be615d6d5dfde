// Package deptest checks the import rules of DESIGN §2 in the tailscale
// plugin's module, which the repository's own test (internal/deptest) does
// not reach: `go test ./...` stops at a module's edge.
package deptest
