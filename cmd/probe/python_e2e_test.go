package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/sdk"
)

// pythonEcho is the plugin written in Python, run from the repository with
// its generated code beside it (Debian's python3-grpcio, .ci/deps).
const pythonEcho = "../../examples/plugins/python-echo/probe-plugin-python-echo"

// startLineServer starts a server on 127.0.0.1 that reads a line, waits
// hold, and answers with reply, or with the line itself when reply is "".
// It returns the server's port.
func startLineServer(t *testing.T, hold time.Duration, reply string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				time.Sleep(hold)
				if reply != "" {
					line = reply + "\n"
				}
				_, _ = c.Write([]byte(line))
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// TestPythonPlugin runs a pipeline through the Python plugin: its phase,
// named after the block, measures the exchange (the server holds its answer
// 30 ms), reports its attributes with their types, and a wrong answer is
// its own failure class.
func TestPythonPlugin(t *testing.T) {
	t.Parallel()
	const hold = 30 * time.Millisecond
	source, err := filepath.Abs(pythonEcho)
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "python.hcl", `plugin "python-echo" {
  source = "`+source+`"
}

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

handshake "echo" {
  plugin = "python-echo"
  line   = "hello"
}

pipeline "echo" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.echo]
}

target "echo" {
  host     = "127.0.0.1"
  port     = `+strconv.Itoa(int(startLineServer(t, hold, "")))+`
  pipeline = pipeline.echo
}

target "other" {
  host     = "127.0.0.1"
  port     = `+strconv.Itoa(int(startLineServer(t, 0, "pong")))+`
  pipeline = pipeline.echo
}
`)
	r := probe(t, nil, "run", file, "-o", "json", "--attempts", "3")
	wantExit(t, r, exitFailed)
	doc := decodeDoc(t, r.stdout)
	if len(doc.Targets) != 2 {
		t.Fatalf("want 2 targets:\n%s", r.stdout)
	}
	for _, a := range doc.Targets[0].Attempts {
		checkAttempt(t, a, []string{"resolve", "connect", "echo"})
		if !a.OK || len(a.Phases) != 3 {
			t.Fatalf("echo: failure %+v, want ok", a.Failure)
		}
		p := a.Phases[2]
		if p.Plugin != "python-echo" {
			t.Errorf("echo phase by plugin %q, want python-echo", p.Plugin)
		}
		checkAttrs(t, p, map[string]any{"reply": "hello", "bytes": float64(6)})
		if d := msDuration(p.DurationMS); d < hold || d > msDuration(a.TotalMS) {
			t.Errorf("echo phase lasted %v; the server held its answer %v, the attempt took %v ms", d, hold, a.TotalMS)
		}
	}
	other := doc.Targets[1].Attempts[0]
	if other.Failure == nil || other.Failure.Class != sdk.Class("echo.mismatch") || other.Failure.Phase != "echo" {
		t.Fatalf("other: failure %+v, want echo.mismatch in phase echo", other.Failure)
	}
	checkAttrs(t, other.Phases[2], map[string]any{"reply": "pong"})
}

// TestPythonGeneratedCode checks that the Python plugin's generated code is
// what `make proto-python` generates from probe.proto now (Debian's
// python3-grpc-tools).
func TestPythonGeneratedCode(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	cmd := exec.Command("/usr/bin/python3", "-m", "grpc_tools.protoc", "-I.", "--python_out="+out, "--grpc_python_out="+out, "probe.proto")
	cmd.Dir = "../../core/proto/probev1"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	for _, name := range []string{"probe_pb2.py", "probe_pb2_grpc.py"} {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(filepath.Dir(pythonEcho), name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/plugins/python-echo/%s is not what probe.proto generates: run `make proto-python`", name)
		}
	}
}
