package pluginhost

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// command returns the command that runs exe, the open plugin binary at
// path, with channel as its fd 3, in a process group of its own. exe is
// passed to the process as fd 4, and the kernel executes /proc/self/fd/4:
// the very file that was opened (and pin-checked), whatever has been renamed
// to its path since. The process sees path as its argv[0].
func command(exe *os.File, path string, args []string, channel *os.File) *exec.Cmd {
	cmd := exec.Command("/proc/self/fd/4", args...)
	cmd.Args[0] = path
	cmd.ExtraFiles = []*os.File{channel, exe}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// waitExit waits until the process pid has exited (without reaping it:
// go-plugin does), done is closed, or grace has passed.
func waitExit(pid int, done <-chan struct{}, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err != nil && !errors.Is(err, unix.EINTR) || info.Signo != 0 {
			return // exited, or already reaped (ECHILD)
		}
		select {
		case <-done:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// killGroup SIGKILLs the process group pgid.
func killGroup(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
