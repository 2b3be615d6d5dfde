package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/probe-dev/probe/core/fdpass"
	"github.com/probe-dev/probe/core/pluginrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

const (
	// shutdownGrace is how long a plugin asked to exit has to do so before
	// it is killed (go-plugin's own wait).
	shutdownGrace = 2 * time.Second
	// connectTimeout bounds the gRPC connection to a started plugin, up to
	// its server's first HTTP/2 frame: a plugin server on a Unix socket
	// sends it within a millisecond. gRPC's own default (20 s) kept
	// `probe validate` waiting that long on a plugin whose handshake line
	// names a socket that accepts and never answers.
	connectTimeout = 5 * time.Second
	// The restart backoff doubles from minBackoff to maxBackoff.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// process is one plugin binary's process, restarted when it dies.
type process struct {
	host *Host
	bin  Binary
	log  hclog.Logger

	mu sync.Mutex
	// gen counts starts, for the log.
	gen    int
	client *plugin.Client
	// conn speaks probe.v1 to the running process; a new start has a new
	// one, and a component configured in an older one configures itself
	// again.
	conn    *pluginrpc.Client
	backoff time.Duration
	// notBefore is when the next start may happen after a crash.
	notBefore time.Time
	// startErr is why the process is down until notBefore: the last
	// start's error, or the crash's cause.
	startErr error
	// startFailed says the last start failed: calls fail at once with
	// startErr until notBefore, rather than wait for a start that failed.
	startFailed bool
	// started is when the running process started.
	started time.Time
	// pgid is the running process's process group: its pid.
	pgid int
	// closed is set by kill: the process is never started again.
	closed bool
}

// Client returns the client of the running process, starting it if it is
// not running. After
// a crash it waits for the restart backoff to pass, within ctx: an attempt
// that starts while the plugin restarts waits for it rather than fail, so
// that a crash fails only the attempts in flight. After a failed start it
// fails at once until the backoff has passed.
func (p *process) Client(ctx context.Context) (*pluginrpc.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.client != nil && !p.client.Exited() {
			return p.conn, nil
		}
		if p.client != nil { // it died since the last call
			p.stopLocked(false)
		}
		if p.closed {
			return nil, fmt.Errorf("plugin %s: the plugin host is closed", p.bin.Name)
		}
		wait := time.Until(p.notBefore)
		if wait <= 0 {
			break
		}
		if p.startFailed {
			return nil, fmt.Errorf("plugin %s is restarting: %w", p.bin.Name, p.startErr)
		}
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.mu.Lock()
			return nil, fmt.Errorf("plugin %s is restarting after a crash (%v), and the attempt's deadline came first: %w",
				p.bin.Name, p.startErr, ctx.Err())
		}
		p.mu.Lock()
	}
	if err := p.startLocked(); err != nil {
		p.startErr, p.startFailed = err, true
		p.notBefore = time.Now().Add(p.nextBackoffLocked())
		return nil, err
	}
	p.startFailed = false
	return p.conn, nil
}

// nextBackoffLocked returns the time to wait before the next start: double
// the last, or minBackoff again after a process that ran for maxBackoff.
func (p *process) nextBackoffLocked() time.Duration {
	if p.client != nil && time.Since(p.started) > maxBackoff {
		p.backoff = 0
	}
	p.backoff = min(max(2*p.backoff, minBackoff), maxBackoff)
	return p.backoff
}

// startLocked launches the binary and opens its channels. The binary is
// opened once: its pin is checked on that open file, and the same file is
// executed (command), so that renaming another file into its place after
// the check changes nothing. The process runs in a process group of its
// own, so that stopLocked ends whatever it started too.
func (p *process) startLocked() error {
	exe, err := os.Open(p.bin.Path)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", p.bin.Name, err)
	}
	defer exe.Close() // the child has its own copy once started
	if err := p.checkPin(exe); err != nil {
		return err
	}
	local, remote, err := fdpass.Pair()
	if err != nil {
		return fmt.Errorf("plugin %s: socket-passing channel: %w", p.bin.Name, err)
	}
	defer remote.Close()                                // the child has its own copy once started
	cmd := command(exe, p.bin.Path, p.bin.Args, remote) // remote is fd 3 in the plugin: pluginrpc.FDPassFD
	// go-plugin ignores UnixSocketConfig.TempDir when Cmd is set; the
	// environment variable puts the plugin's socket in the host's directory.
	// SkipHostEnv keeps go-plugin from adding all of probe's environment.
	cmd.Env = append(p.bin.environ(), "PLUGIN_UNIX_SOCKET_DIR="+p.host.dir)
	cfg := &plugin.ClientConfig{
		SkipHostEnv:      true,
		HandshakeConfig:  pluginrpc.Handshake,
		Plugins:          pluginrpc.PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           namedAs{p.log},
		StartTimeout:     pluginrpc.CallTimeout,
		GRPCDialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.DefaultConfig, MinConnectTimeout: connectTimeout})},
	}
	client := plugin.NewClient(cfg)
	// A failed Start has killed the process already; Kill would only log
	// that it did not exit gracefully.
	if _, err := client.Start(); err != nil {
		_ = local.Close()
		if cmd.Process != nil {
			killGroup(cmd.Process.Pid) // what it started before it failed
		}
		return fmt.Errorf("plugin %s: start %s: %w", p.bin.Name, p.bin.Path, firstLine{err})
	}
	p.client, p.pgid = client, cmd.Process.Pid
	rpcClient, err := client.Client()
	if err != nil {
		p.stopLocked(false)
		_ = local.Close()
		return fmt.Errorf("plugin %s: connect to %s: %w", p.bin.Name, p.bin.Path, err)
	}
	ch, err := fdpass.New(local)
	if err != nil {
		p.stopLocked(false)
		return fmt.Errorf("plugin %s: socket-passing channel: %w", p.bin.Name, err)
	}
	ctx, cancel := withTimeout()
	defer cancel()
	conn, err := pluginrpc.Connect(ctx, rpcClient, ch)
	if err != nil {
		p.stopLocked(false)
		return fmt.Errorf("plugin %s: %s: %w", p.bin.Name, p.bin.Path, err)
	}
	p.conn = conn
	p.gen++
	p.started = time.Now()
	p.log.Debug("plugin started", "path", p.bin.Path, "pid", p.pidLocked(), "generation", p.gen)
	return nil
}

// Running returns the client of the process if it runs, without starting
// it.
func (p *process) Running() (*pluginrpc.Client, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil || p.client.Exited() {
		return nil, false
	}
	return p.conn, true
}

// checkPin checks exe, the open binary, against its sha256 pin, if it has
// one, and leaves exe at its start.
func (p *process) checkPin(exe *os.File) error {
	if p.bin.SHA256 == "" {
		return nil
	}
	want, err := hex.DecodeString(p.bin.SHA256)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("plugin %s: sha256 %q is not a hex SHA-256 digest", p.bin.Name, p.bin.SHA256)
	}
	h := sha256.New()
	if _, err := io.Copy(h, exe); err != nil {
		return fmt.Errorf("plugin %s: hash %s: %w", p.bin.Name, p.bin.Path, err)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("plugin %s: %s does not match its sha256 pin %s; refusing to run it", p.bin.Name, p.bin.Path, p.bin.SHA256)
	}
	if _, err := exe.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("plugin %s: %w", p.bin.Name, err)
	}
	return nil
}

// Crashed records that a call through c found the process dead or hung:
// the process is killed at once, without asking it to exit (a hung or
// stopped process would never answer), to be restarted after the backoff.
func (p *process) Crashed(c *pluginrpc.Client, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c != p.conn || p.client == nil {
		return // already handled
	}
	p.log.Warn("plugin crashed; restarting it after backoff", "error", cause)
	p.notBefore = time.Now().Add(p.nextBackoffLocked())
	p.stopLocked(false)
	p.startErr, p.startFailed = cause, false
}

// stopLocked ends the process and its process group. Gracefully, it first
// asks the plugin to exit (go-plugin's Kill) and gives it shutdownGrace to
// do so; then, or at once when not graceful, it SIGKILLs the group: the
// plugin if it still runs, and any helper it started. go-plugin's Kill
// returns only once every holder of the plugin's stdout and stderr has let
// go of them, so a helper left running would hold probe up for as long as
// it lives.
func (p *process) stopLocked(graceful bool) {
	if p.client != nil {
		client, pgid := p.client, p.pgid
		done := make(chan struct{})
		kill := func() { client.Kill(); close(done) }
		if graceful {
			go kill()
			waitExit(pgid, done, shutdownGrace)
			killGroup(pgid)
		} else {
			killGroup(pgid)
			go kill()
		}
		select {
		case <-done:
		case <-time.After(shutdownGrace):
			// A helper that left the group still holds the plugin's output.
			p.log.Warn("plugin output still held by a process outside its group; going on without it", "pgid", pgid)
		}
		p.client, p.pgid = nil, 0
	}
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// kill ends the process for good, gracefully.
func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked(true)
	p.closed = true
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pidLocked()
}

func (p *process) pidLocked() int { return p.pgid }

// firstLine is an error cut to its first line: go-plugin follows a failed
// start with a paragraph of advice that would break probe's one-line
// reports (`probe plugins`, diagnostics).
type firstLine struct{ err error }

func (e firstLine) Error() string {
	line, _, _ := strings.Cut(e.err.Error(), "\n")
	return line
}

func (e firstLine) Unwrap() error { return e.err }

// namedAs makes go-plugin log under the host's "plugin.NAME" logger instead
// of one named after the binary's file.
type namedAs struct{ hclog.Logger }

func (n namedAs) Named(string) hclog.Logger { return n.Logger }
