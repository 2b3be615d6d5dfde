//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/probe-dev/probe/internal/lab/netlab"
)

// farLabCmd is the hidden first argument under which this command serves
// the far lab (farLabMain), started in a link's far namespace, so that the
// servers do not share a process (nor a test binary's race detector) with
// the link and the measurements.
const farLabCmd = "far-lab"

// farLabMain serves the far lab in this process's network namespace,
// prints the path of its CA file, and stops when its standard input closes.
func farLabMain() int {
	f, err := netlab.StartFarLab()
	if err != nil {
		fmt.Fprintln(os.Stderr, farLabCmd+":", err)
		return 1
	}
	fmt.Println(f.CAFile)
	io.Copy(io.Discard, os.Stdin)
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, farLabCmd+":", err)
		return 1
	}
	return 0
}

// farLab is a running server process of this command's: the far lab, or
// the loopback lab of the concurrency runs (labCmd).
type farLab struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	caFile string
	stderr strings.Builder
}

// startFarLab starts self's far-lab in link's far namespace and returns
// once it serves.
func startFarLab(link *netlab.Link, self string) (*farLab, error) {
	f, line, err := startServing(exec.Command(self, farLabCmd), link.Far.StartRealTime)
	if err != nil {
		return nil, err
	}
	f.caFile = line
	return f, nil
}

// startServing starts cmd, a server of this command's (its hidden first
// argument), with start, and returns it with the first line it prints once
// it serves, trimmed.
func startServing(cmd *exec.Cmd, start func(*exec.Cmd) error) (*farLab, string, error) {
	f := &farLab{cmd: cmd}
	f.cmd.Stderr = &f.stderr
	var err error
	if f.stdin, err = f.cmd.StdinPipe(); err != nil {
		return nil, "", err
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := start(f.cmd); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", cmd.Args[1], err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, "", errors.Join(fmt.Errorf("%s: %w; stderr: %s", cmd.Args[1], err, &f.stderr), f.close())
	}
	return f, strings.TrimSpace(line), nil
}

// close stops the far lab and waits for it.
func (f *farLab) close() error {
	f.stdin.Close()
	if err := f.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w; stderr: %s", f.cmd.Args[1], err, &f.stderr)
	}
	return nil
}
