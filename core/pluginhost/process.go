package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/probe-dev/probe/core/fdpass"
	"github.com/probe-dev/probe/core/proto/probev1"
	"github.com/probe-dev/probe/core/sdk"
	"google.golang.org/grpc"
)

const (
	// callTimeout bounds the host's own calls: describe, configure, release.
	callTimeout = 10 * time.Second
	// hangGrace is how long past an attempt's deadline a plugin may take to
	// answer before it counts as hung and is restarted.
	hangGrace = 500 * time.Millisecond
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
	// gen counts starts; a component configured under an older generation
	// configures itself again.
	gen    int
	client *plugin.Client
	rpc    probev1.PluginClient
	ch     *fdpass.Channel
	infos  []*probev1.PluginInfo
	// sequence says the binary serves Sequences.
	sequence bool
	// streams are the running process's idle Sequences streams.
	streams *streams
	backoff time.Duration
	// notBefore is when the next start may happen after a crash.
	notBefore time.Time
	// startErr is the last start's error, repeated until notBefore.
	startErr error
	// started is when the running process started.
	started time.Time
	// closed is set by kill: the process is never started again.
	closed bool
}

// live is a snapshot of a running process for one call.
type live struct {
	gen     int
	rpc     probev1.PluginClient
	ch      *fdpass.Channel
	streams *streams
}

// liveLocked returns the snapshot of the running process.
func (p *process) liveLocked() live { return live{p.gen, p.rpc, p.ch, p.streams} }

// get returns the running process, starting it if it is not running and
// its backoff has passed.
func (p *process) get() (live, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && !p.client.Exited() {
		return p.liveLocked(), nil
	}
	if p.client != nil { // it died since the last call
		p.stopLocked(fmt.Errorf("plugin %s exited", p.bin.Name))
	}
	if p.closed {
		return live{}, fmt.Errorf("plugin %s: the plugin host is closed", p.bin.Name)
	}
	if time.Now().Before(p.notBefore) {
		return live{}, fmt.Errorf("plugin %s is restarting: %w", p.bin.Name, p.startErr)
	}
	if err := p.startLocked(); err != nil {
		p.startErr = err
		p.notBefore = time.Now().Add(p.nextBackoffLocked())
		return live{}, err
	}
	return p.liveLocked(), nil
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

// startLocked launches the binary and opens its channels.
func (p *process) startLocked() error {
	local, remote, err := fdpass.Pair()
	if err != nil {
		return fmt.Errorf("plugin %s: socket-passing channel: %w", p.bin.Name, err)
	}
	defer remote.Close() // the child has its own copy once started
	cmd := exec.Command(p.bin.Path, p.bin.Args...)
	cmd.ExtraFiles = []*os.File{remote} // fd 3 in the plugin: sdk.FDPassFD
	// go-plugin ignores UnixSocketConfig.TempDir when Cmd is set; the
	// environment variable puts the plugin's socket in the host's directory.
	// SkipHostEnv keeps go-plugin from adding all of probe's environment.
	cmd.Env = append(p.bin.environ(), "PLUGIN_UNIX_SOCKET_DIR="+p.host.dir)
	cfg := &plugin.ClientConfig{
		SkipHostEnv:      true,
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginSetKey: &clientPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           namedAs{p.log},
		StartTimeout:     callTimeout,
	}
	if p.bin.SHA256 != "" {
		sum, err := hex.DecodeString(p.bin.SHA256)
		if err != nil || len(sum) != sha256.Size {
			_ = local.Close()
			return fmt.Errorf("plugin %s: sha256 %q is not a hex SHA-256 digest", p.bin.Name, p.bin.SHA256)
		}
		// A fresh hash per client: SecureConfig never resets it.
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := plugin.NewClient(cfg)
	// A failed Start has killed the process already; Kill would only log
	// that it did not exit gracefully.
	if _, err := client.Start(); err != nil {
		_ = local.Close()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return fmt.Errorf("plugin %s: %s does not match its sha256 pin %s; refusing to run it", p.bin.Name, p.bin.Path, p.bin.SHA256)
		}
		return fmt.Errorf("plugin %s: start %s: %w", p.bin.Name, p.bin.Path, firstLine{err})
	}
	var raw any
	rpcClient, err := client.Client()
	if err == nil {
		raw, err = rpcClient.Dispense(sdk.PluginSetKey)
	}
	if err != nil {
		client.Kill()
		_ = local.Close()
		return fmt.Errorf("plugin %s: connect to %s: %w", p.bin.Name, p.bin.Path, err)
	}
	ch, err := fdpass.New(local)
	if err != nil {
		client.Kill()
		return fmt.Errorf("plugin %s: socket-passing channel: %w", p.bin.Name, err)
	}
	p.client, p.rpc, p.ch = client, raw.(probev1.PluginClient), ch
	p.streams = &streams{}
	p.gen++
	p.started = time.Now()
	ctx, cancel := withTimeout()
	defer cancel()
	resp, err := p.rpc.Describe(ctx, &probev1.DescribeRequest{})
	if err != nil {
		p.stopLocked(err)
		return fmt.Errorf("plugin %s: describe: %w", p.bin.Name, err)
	}
	p.infos, p.sequence = resp.Plugins, resp.Sequences
	p.log.Debug("plugin started", "path", p.bin.Path, "pid", p.pidLocked(), "generation", p.gen)
	return nil
}

// running returns the process if it runs, without starting it.
func (p *process) running() (live, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil || p.client.Exited() {
		return live{}, false
	}
	return p.liveLocked(), true
}

// describe returns what the binary serves, starting it if needed.
func (p *process) describe() ([]*probev1.PluginInfo, error) {
	if _, err := p.get(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.infos, nil
}

// crashed records that the call under generation gen found the process dead
// or hung: the process is killed, to be restarted after the backoff.
func (p *process) crashed(gen int, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen || p.client == nil {
		return // already handled
	}
	p.log.Warn("plugin crashed; restarting it after backoff", "error", cause)
	p.notBefore = time.Now().Add(p.nextBackoffLocked())
	p.stopLocked(cause)
	p.startErr = cause
}

func (p *process) stopLocked(error) {
	if p.client != nil {
		p.client.Kill()
		p.client = nil
	}
	if p.ch != nil {
		_ = p.ch.Close()
		p.ch = nil
	}
	if p.streams != nil {
		p.streams.close()
		p.streams = nil
	}
	p.rpc = nil
}

func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked(nil)
	p.closed = true
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pidLocked()
}

func (p *process) pidLocked() int {
	if p.client == nil || p.client.ReattachConfig() == nil {
		return 0
	}
	return p.client.ReattachConfig().Pid
}

// firstLine is an error cut to its first line: go-plugin follows a failed
// start with a paragraph of advice that would break probe's one-line
// reports (`probe plugins`, diagnostics).
type firstLine struct{ err error }

func (e firstLine) Error() string {
	line, _, _ := strings.Cut(e.err.Error(), "\n")
	return line
}

func (e firstLine) Unwrap() error { return e.err }

// clientPlugin is the host's side of the go-plugin registration.
type clientPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (clientPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the host side serves nothing")
}

func (clientPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return probev1.NewPluginClient(c), nil
}

// namedAs makes go-plugin log under the host's "plugin.NAME" logger instead
// of one named after the binary's file.
type namedAs struct{ hclog.Logger }

func (n namedAs) Named(string) hclog.Logger { return n.Logger }
