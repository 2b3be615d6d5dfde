package sdk_test

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/probe-dev/probe/core/sdk"
)

func TestFDLimit(t *testing.T) {
	dialErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", errno)}
	}
	tests := []struct {
		err  error
		want bool
	}{
		{dialErr(syscall.EMFILE), true},
		{dialErr(syscall.ENFILE), true},
		{fmt.Errorf("query: %w", dialErr(syscall.EMFILE)), true},
		{dialErr(syscall.ECONNREFUSED), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := sdk.FDLimit(tt.err); got != tt.want {
			t.Errorf("FDLimit(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
