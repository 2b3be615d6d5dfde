// Command probe-plugin-banner is a third-party probe plugin: a handshake
// that reads the greeting a server sends first (SSH, SMTP, FTP, POP3, IMAP)
// and checks it against a regular expression. It imports only core/sdk, as
// any plugin outside the probe repository would; README.md walks through it.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/sdk/serve"
	"github.com/zclconf/go-cty/cty"
)

// Failure classes of this plugin, named after it.
const (
	classMismatch sdk.Class = "banner.mismatch" // the greeting does not match expect
	classTimeout  sdk.Class = "banner.timeout"  // no full line in time
	classClosed   sdk.Class = "banner.closed"   // the server closed or reset first
)

// maxBanner bounds how much of a greeting is read.
const maxBanner = 1024

func main() {
	serve.Serve(&sdk.Plugin{
		Info: sdk.Info{
			Name:        "banner",
			Version:     "1.0.0",
			Description: "Reads a server's greeting line (SSH, SMTP, FTP) and checks it against a regular expression.",
		},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "expect", Type: cty.String, Required: true,
				Description: "Regular expression (RE2) the greeting line must match, e.g. \"^SSH-2\\\\.0-\"."},
			{Name: "timeout", Type: cty.String, Default: cty.StringVal("5s"),
				Description: "How long to wait for the greeting, within the attempt's deadline."},
		}},
		NewHandshaker: newBanner,
	})
}

// banner is the handshake component.
type banner struct {
	expect  *regexp.Regexp
	timeout time.Duration
}

// newBanner validates the configuration. Errors name the attribute, so probe
// points at its line in the pipeline file.
func newBanner(cfg cty.Value) (sdk.Handshaker, error) {
	re, err := regexp.Compile(sdk.String(cfg, "expect"))
	if err != nil {
		return nil, sdk.AttrErrorf("expect", "Invalid regular expression", "expect does not compile: %s.", err)
	}
	timeout, err := sdk.Duration(cfg, "timeout")
	if err != nil {
		return nil, err
	}
	return &banner{expect: re, timeout: timeout}, nil
}

// Handshake reads one line and matches it. The phase is named after the
// handshake's block in the pipeline ("ssh" for handshake "ssh").
func (b *banner) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	if d, ok := ctx.Deadline(); ok {
		_ = req.Conn.SetReadDeadline(d)
		defer req.Conn.SetReadDeadline(time.Time{})
	}
	// A canceled attempt (Ctrl-C) ends the read at once.
	stop := context.AfterFunc(ctx, func() { _ = req.Conn.SetReadDeadline(time.Now()) })
	defer stop()
	span := sdk.StartSpan("", callAt)
	line, err := readLine(req.Conn)
	attrs := map[string]any{"banner": line}
	if err != nil {
		class := classClosed
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			class = classTimeout
		}
		if c := sdk.ContextClass(ctx, classTimeout); c != "" {
			class = c // the attempt's deadline, its own timeout, or a cancel
		}
		return failed(span.End(false, attrs), class, fmt.Sprintf("read greeting from %s: %v", req.Address, err)), nil
	}
	if !b.expect.MatchString(line) {
		return failed(span.End(false, attrs), classMismatch,
			fmt.Sprintf("greeting %q does not match %q", line, b.expect)), nil
	}
	return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(true, attrs)}}, nil
}

// readLine reads up to the first newline, without the line ending.
func readLine(c net.Conn) (string, error) {
	r := bufio.NewReaderSize(c, maxBanner)
	line, err := r.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return string(line), err
	}
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	return string(line), nil
}

func failed(p sdk.Phase, class sdk.Class, msg string) *sdk.HandshakeResponse {
	return &sdk.HandshakeResponse{Phases: []sdk.Phase{p}, Failure: &sdk.Failure{Class: class, Message: msg}}
}

var _ sdk.Handshaker = (*banner)(nil)
