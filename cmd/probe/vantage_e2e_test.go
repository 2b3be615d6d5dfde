package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// TestVantageSources: the real binary takes the vantage from --vantage,
// else PROBE_VANTAGE, else the file's vantage attribute, and puts it on
// every JSON line; a vantage that cannot be a label is a usage error.
func TestVantageSources(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	file := writeFile(t, "vantage.hcl", `vantage = "from-file"`+"\n")
	env := []string{"PROBE_TARGETS=" + ln.Addr().String()}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"file", nil, nil, "from-file"},
		{"environment over file", []string{"PROBE_VANTAGE=from-env"}, nil, "from-env"},
		{"flag over environment", []string{"PROBE_VANTAGE=from-env"}, []string{"--vantage", "from-flag"}, "from-flag"},
	}
	for _, tt := range tests {
		r := probe(t, append(tt.env, env...), append([]string{"run", file, "-o", "jsonl"}, tt.args...)...)
		wantExit(t, r, 0)
		var line struct{ Vantage string }
		if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &line); err != nil {
			t.Fatalf("%s: %v\n%s", tt.name, err, r.stdout)
		}
		if line.Vantage != tt.want {
			t.Errorf("%s: vantage %q, want %q", tt.name, line.Vantage, tt.want)
		}
	}
	r := probe(t, env, "run", "-o", "jsonl", "--vantage", "bad\x01")
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "invalid --vantage") {
		t.Errorf("a bad --vantage: stderr %q", r.stderr)
	}
}
