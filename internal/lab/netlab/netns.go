//go:build linux

package netlab

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Namespace is a network namespace of the link. It has no name in /run/netns
// and lives as long as its Link holds it open (or a process started in it
// runs), so a killed run leaves nothing behind.
//
// A namespace belongs to an OS thread, not to a goroutine: Do runs a function
// on a thread switched into the namespace. Sockets and listeners created
// there stay in the namespace wherever they are used later; processes
// started there inherit it; goroutines started there do not.
type Namespace struct {
	fd int // an open /proc/thread-self/ns/net of the namespace
}

// newNamespace creates a network namespace holding only a loopback
// interface, which it brings up.
func newNamespace() (*Namespace, error) {
	fd := -1
	err := onLockedThread(func() error {
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open network namespace: %w", err)
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("create network namespace: %w", err)
		}
		fd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = setUp("lo", nil)
		}
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			return errThreadLost{fmt.Errorf("return to the original network namespace: %w", rerr)}
		}
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	return &Namespace{fd: fd}, nil
}

// Do runs fn on an OS thread switched into the namespace and returns its
// error. fn runs on a goroutine of its own: it must not call t.FailNow, and
// the goroutines it starts run outside the namespace.
func (n *Namespace) Do(fn func() error) error {
	return onLockedThread(func() error {
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open network namespace: %w", err)
		}
		defer unix.Close(orig)
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		err = fn()
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			return errThreadLost{fmt.Errorf("return to the original network namespace: %w", rerr)}
		}
		return err
	})
}

// DialContext connects to address from inside the namespace, as
// net.Dialer.DialContext does; it fits http.Transport.DialContext.
func (n *Namespace) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Start starts cmd inside the namespace. It is killed if the process that
// started it dies first.
func (n *Namespace) Start(cmd *exec.Cmd) error {
	dieWithParent(cmd)
	return n.Do(cmd.Start)
}

// StartRealTime is Start at a real-time priority (SCHED_RR, below the
// forwarder's), which every thread of the process inherits: like the
// forwarder, it then runs the moment it wakes, and a busy machine delays
// what it measures far less. Use it for what measures, and briefly.
func (n *Namespace) StartRealTime(cmd *exec.Cmd) error {
	dieWithParent(cmd)
	return n.Do(func() error {
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_RR, Priority: rtPriority - 10}, 0); err != nil {
			return fmt.Errorf("set a real-time priority: %w", err)
		}
		err := cmd.Start()
		if rerr := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0); rerr != nil {
			return errThreadLost{fmt.Errorf("reset the thread's priority: %w", rerr)}
		}
		return err
	})
}

// dieWithParent has cmd killed when the thread that starts it ends, which
// only happens when its whole process does (Do leaves threads running).
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// close releases the namespace; it disappears once no process runs in it.
func (n *Namespace) close() error {
	if err := unix.Close(n.fd); err != nil {
		return fmt.Errorf("close network namespace: %w", err)
	}
	return nil
}

// WithResolvConf makes cmd's system resolver read path as /etc/resolv.conf:
// cmd runs in a mount namespace of its own (as `ip netns exec` does with
// /etc/netns/NAME/resolv.conf) where path is bind-mounted over the file, so
// the machine's own resolv.conf is untouched. Call it before Start.
func WithResolvConf(cmd *exec.Cmd, path string) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Unshareflags |= syscall.CLONE_NEWNS // Go makes the new namespace's mounts private
	const script = `mount --bind "$0" /etc/resolv.conf && exec "$@"`
	cmd.Args = append([]string{"sh", "-c", script, path, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
}

// errThreadLost wraps an error after which the thread that saw it is no
// longer fit for other goroutines.
type errThreadLost struct{ error }

func (e errThreadLost) Unwrap() error { return e.error }

// onLockedThread runs fn on a new goroutine locked to its OS thread. The
// thread goes back to the runtime when fn returns, unless fn's error is an
// errThreadLost: then the thread exits with the goroutine.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := fn()
		if _, lost := err.(errThreadLost); !lost {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Available returns nil when this process can build a link: it runs as root
// and /dev/net/tun exists. Otherwise it says what is missing.
func Available() error {
	var missing []string
	if unix.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if err := unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK); err != nil {
		missing = append(missing, "/dev/net/tun ("+err.Error()+")")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the delay link needs %s", strings.Join(missing, " and "))
	}
	return nil
}
