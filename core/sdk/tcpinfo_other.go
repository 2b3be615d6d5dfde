//go:build !linux

package sdk

import (
	"net"
	"time"
)

// addKernelRTT adds nothing: TCP_INFO is read on Linux only.
func addKernelRTT(*net.TCPConn, map[string]any) (time.Duration, bool) { return 0, false }
