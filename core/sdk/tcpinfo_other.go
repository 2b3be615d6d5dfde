//go:build !linux

package sdk

import "net"

// addKernelRTT adds nothing: TCP_INFO is read on Linux only.
func addKernelRTT(*net.TCPConn, map[string]any) {}
