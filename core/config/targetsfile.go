package config

import (
	"bufio"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/probe-dev/probe/core/engine"
	"github.com/zclconf/go-cty/cty"
)

// targetsFileSchema is a target block's whose targets come from a file.
var targetsFileSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "targets_file", Required: true},
		{Name: "port"},
		{Name: "pipeline", Required: true},
		{Name: "attempts"},
		{Name: "timeout"},
	},
}

// maxTargetsFileErrors is how many bad lines of a targets file a load
// reports, each a diagnostic; the rest are counted in the last.
const maxTargetsFileErrors = 10

// maxTargetsLine is the longest line of a targets file, in bytes.
const maxTargetsLine = 4096

// TargetsFile is a target block whose targets are the lines of a file
// (targets_file), one target per line: `host`, `host:port` or
// `[IPv6]:port`, the port of the block's port attribute where the line has
// none; blank lines and lines starting with # are skipped. Each target is
// named NAME[host:port] and probed with the block's pipeline, attempts and
// timeout. The file is checked whole when loaded, and read again as a run
// goes (All), so that it costs no memory per target: the way to probe
// millions of targets.
type TargetsFile struct {
	// Name is the block's name.
	Name string
	// Path is the file's path: as given when absolute, else joined to the
	// pipeline file's directory.
	Path string
	// Port is the port of lines that give none; 0 when the block has none.
	Port uint16
	// Pipeline probes every target of the file.
	Pipeline *engine.Pipeline
	// Attempts and Timeout are the block's, 0 when it has none.
	Attempts int
	Timeout  time.Duration
	// Count is how many targets the file held when it was loaded.
	Count int
}

// All yields the file's targets, read from it anew, and stops at the first
// error: the file cannot be read, or a line no longer reads as a target
// (the file changed since it was loaded), with its line number.
func (tf *TargetsFile) All() iter.Seq2[*engine.Target, error] {
	return func(yield func(*engine.Target, error) bool) {
		err := tf.scan(func(_ int, t *engine.Target) bool { return yield(t, nil) }, func(line int, err error) bool {
			yield(nil, fmt.Errorf("%s:%d: %w", tf.Path, line, err))
			return false
		})
		if err != nil {
			yield(nil, err)
		}
	}
}

// scan reads the file and calls target with each target and its line
// number, bad with each line that is not one and why; either returning
// false stops the scan. The error is the file's: it could not be opened or
// read, or a line is longer than maxTargetsLine.
func (tf *TargetsFile) scan(target func(line int, t *engine.Target) bool, bad func(line int, err error) bool) error {
	f, err := os.Open(tf.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, maxTargetsLine+1), maxTargetsLine+1) // the line and its newline
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		t, err := tf.target(text)
		if err != nil {
			if !bad(line, err) {
				return nil
			}
			continue
		}
		if !target(line, t) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: a line longer than %d bytes", tf.Path, line+1, maxTargetsLine)
		}
		return fmt.Errorf("read %s: %w", tf.Path, err)
	}
	return nil
}

// target reads one line of the file, trimmed, as a target.
func (tf *TargetsFile) target(text string) (*engine.Target, error) {
	host, port := text, tf.Port
	if _, err := netip.ParseAddr(text); err != nil && strings.Contains(text, ":") {
		h, p, err := net.SplitHostPort(text)
		if err != nil {
			return nil, fmt.Errorf("%q is not host, host:port or [IPv6]:port", text)
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q: the port must be a whole number from 1 to 65535", text)
		}
		host, port = h, uint16(n)
	}
	if err := engine.CheckHost(host); err != nil {
		return nil, err
	}
	if port == 0 {
		return nil, fmt.Errorf("%q has no port, and the block no port attribute to give it one", text)
	}
	if tf.Pipeline.Route(host) == nil {
		return nil, fmt.Errorf("%q: no resolver of pipeline %q matches the host", text, tf.Pipeline.Name)
	}
	name := tf.Name + "[" + net.JoinHostPort(host, strconv.Itoa(int(port))) + "]"
	return &engine.Target{Name: name, Host: host, Port: port, Pipeline: tf.Pipeline, Attempts: tf.Attempts, Timeout: tf.Timeout}, nil
}

// targetsFile decodes target block b whose targets are in a file, and
// checks every line of it: each bad line is a diagnostic on targets_file
// (the first maxTargetsFileErrors of them). Unless the loader streams
// targets files (Options.StreamTargets), their targets join the file's,
// each name once (seen holds the names of the targets so far).
func (d *decoder) targetsFile(b *hcl.Block, seen map[string]hcl.Range) {
	content, diags := b.Body.Content(targetsFileSchema)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	attr := content.Attributes["targets_file"]
	tf := &TargetsFile{Name: b.Labels[0]}
	v, ok := d.eval(attr, d.ctx, cty.String)
	if !ok {
		return
	}
	tf.Path = v.AsString()
	if !filepath.IsAbs(tf.Path) {
		tf.Path = filepath.Join(filepath.Dir(d.file.Path), tf.Path)
	}
	pipeline, ok := resolve(d, d.pipelines, content.Attributes["pipeline"].Expr, "pipeline", d.ctx)
	if a := content.Attributes["port"]; a != nil {
		p, good := d.port(a, d.ctx)
		tf.Port, ok = p, ok && good
	}
	if a := content.Attributes["attempts"]; a != nil {
		tf.Attempts = d.positiveInt(a, d.ctx)
	}
	if a := content.Attributes["timeout"]; a != nil {
		tf.Timeout = d.duration(a, d.ctx, false)
	}
	if !ok || pipeline == nil {
		return
	}
	tf.Pipeline = pipeline
	var (
		bad     []string
		targets []*engine.Target
	)
	err := tf.scan(func(line int, t *engine.Target) bool {
		tf.Count++
		if d.opts.StreamTargets {
			return true
		}
		if _, dup := seen[t.Name]; dup {
			bad = append(bad, fmt.Sprintf("line %d: the target %s again", line, t.Name))
			return true
		}
		seen[t.Name] = b.DefRange
		targets = append(targets, t)
		return true
	}, func(line int, err error) bool {
		bad = append(bad, fmt.Sprintf("line %d: %v", line, err))
		return true
	})
	if err != nil {
		d.attrError(attr, "Unreadable targets file", fmt.Sprintf("The targets file could not be read: %v.", err))
		return
	}
	for i, msg := range bad {
		if i == maxTargetsFileErrors {
			d.attrError(attr, "Invalid target in targets file", fmt.Sprintf("%s: %d more lines are not targets.", tf.Path, len(bad)-i))
			break
		}
		d.attrError(attr, "Invalid target in targets file", fmt.Sprintf("%s, %s.", tf.Path, msg))
	}
	if len(bad) > 0 {
		return
	}
	if d.opts.StreamTargets {
		d.file.TargetsFiles = append(d.file.TargetsFiles, tf)
		return
	}
	// probe serve loads the file again when the list changes, as it does
	// for file_sd's.
	d.file.Discovery.Files = append(d.file.Discovery.Files, tf.Path)
	d.file.Targets = append(d.file.Targets, targets...)
}
