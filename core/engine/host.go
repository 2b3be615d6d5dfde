package engine

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// CheckHost returns an error when host cannot be a target's host: when it is
// empty, is not UTF-8, or holds a control character (NUL, ESC, a newline,
// DEL, C1). A resolver sees no such name: a NUL ends it early for the C
// library ("localhost\x00.corp.example" resolves localhost, though the whole
// string matches "*.corp.example"), and the others reach terminals and logs.
// Every place a host enters probe (a pipeline file, PROBE_TARGETS, probe
// test, the exporter's /probe) checks it before routing; no route matches
// such a host (Pipeline.Route), and an attempt of a target that has one
// fails in its resolve phase without calling a resolver, as plugin.error,
// as a host that no resolver matches does.
func CheckHost(host string) error {
	if host == "" {
		return fmt.Errorf("host is empty")
	}
	if !utf8.ValidString(host) {
		return fmt.Errorf("host %q is not UTF-8 text", host)
	}
	for i, r := range host {
		if unicode.IsControl(r) {
			return fmt.Errorf("host %q holds a control character (%U at byte %d); a host is a DNS name or an IP address", host, r, i)
		}
	}
	return nil
}
