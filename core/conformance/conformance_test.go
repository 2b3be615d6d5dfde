package conformance_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/probe-dev/probe/core/conformance"
	"github.com/probe-dev/probe/core/pluginhost"
)

// brokenBin is testdata/broken, built once by TestMain.
var brokenBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "conformance-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	brokenBin = filepath.Join(dir, "broken")
	if out, err := exec.Command("go", "build", "-o", brokenBin, "./testdata/broken").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./testdata/broken: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// check runs the checks against the broken binary in mode, with the check
// file src, and returns the problems of the failed checks by their name
// ("echo handshake: cancel", "start"), and the names of those that passed.
func check(t *testing.T, mode, src string) (failed map[string]string, passed []string) {
	t.Helper()
	results, err := conformance.Run(t.Context(), conformance.Options{
		Binary:    pluginhost.Binary{Name: "echo", Path: brokenBin, Args: []string{mode}},
		CheckFile: []byte(src), CheckFileName: "check.hcl",
	})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if _, err := conformance.Write(&table, results); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", mode, table.String())
	failed = map[string]string{}
	for _, r := range results {
		name := r.Check
		if r.Plugin != "" {
			name = strings.TrimSpace(r.Plugin+" "+string(r.Kind)) + ": " + name
		}
		switch {
		case r.Failed():
			failed[name] = r.Problem
		case r.Skipped == "":
			passed = append(passed, name)
		}
	}
	return failed, passed
}

const echoCheck = `
handshake "echo" {
  reject = { line = "" }
}
`

// TestBroken checks each broken plugin: the check made for its fault
// fails with the line that names it; the healthy one passes every check,
// the whole attempt of its three components included.
func TestBroken(t *testing.T) {
	tests := []struct {
		mode string
		// want are the failed checks and a piece of each's explanation;
		// other checks may fail too where the fault reaches them
		// (others).
		want   map[string]string
		others []string
	}{
		{mode: "ok"},
		{mode: "liar", want: map[string]string{
			"echo handshake: timing": "the handshake's phases last 1µs, but the server held its answer"}},
		{mode: "leaky", want: map[string]string{
			"echo handshake: no socket kept": "3 of 3 connections still open 1s after their attempts ended: the plugin keeps the socket",
			"echo dialer: dial":              "the server saw no close 1s after probe closed the connection: the plugin kept a copy of the socket"},
			others: []string{"echo handshake: cancel"}},
		{mode: "deaf", want: map[string]string{
			"echo resolver: deadline":  "after the call's 300ms deadline: it ignores its context's deadline",
			"echo handshake: deadline": "after the call's 300ms deadline: it ignores its context's deadline",
			"echo handshake: cancel":   "the handshake does not stop when its context is canceled"}},
		{mode: "panic", want: map[string]string{
			"echo handshake: handshake": "failed as plugin.crashed in echo: plugin echo: panic: the echo handshake broke"},
			others: []string{"echo handshake: timing", "echo handshake: failure as data", "echo handshake: deadline", "echo handshake: cancel", "crash recovery"}},
		{mode: "garbage", want: map[string]string{
			"start": `Unrecognized remote plugin message: starting the echo plugin`}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			failed, passed := check(t, tt.mode, echoCheck)
			if tt.mode == "ok" && !containsString(passed, "whole attempt") {
				t.Errorf("the whole attempt did not pass: passed %v", passed)
			}
			for name, want := range tt.want {
				if got, ok := failed[name]; !ok || !strings.Contains(got, want) {
					t.Errorf("check %q: problem %q, want one containing %q", name, got, want)
				}
			}
			for name, problem := range failed {
				if _, ok := tt.want[name]; !ok && !containsString(tt.others, name) {
					t.Errorf("check %q failed too: %s", name, problem)
				}
			}
		})
	}
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestCheckFile: a check file that does not parse, or names an unknown
// server, is an error before any check runs.
func TestCheckFile(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"syntax", `handshake "echo" {`, "check.hcl:1"},
		{"unknown server", `handshake "echo" { server = "gopher" }`, `server "gopher": want one of [echo greeting tls http grpc http3 udp ssh smtp dns]`},
		{"dialer against a handshake's server", `dialer "tcp" { server = "tls" }`, `server "tls": a dialer is checked against one of [echo udp dns]`},
		{"handshake against the DNS server", `handshake "echo" { server = "dns" }`, `server "dns": only a dialer of no connection is checked against the DNS server`},
		{"unknown attribute", `handshake "echo" { sever = "tls" }`, `Unsupported argument`},
		{"twice", "handshake \"echo\" {}\nhandshake \"echo\" {}", `two handshake blocks for plugin "echo"`},
		{"config not an object", `handshake "echo" { config = "line" }`, `config: want an object of attributes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := conformance.ParseFile("check.hcl", []byte(tt.src), conformance.LabVars{DNS: "127.0.0.1:53", CAFile: "ca.pem"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
