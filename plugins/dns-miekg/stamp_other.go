//go:build !linux

package dnsmiekg

import (
	"net"
	"time"
)

// stampOn does nothing where the kernel's stamps are not read: the
// resolve phase keeps the process's clock.
func stampOn(*net.UDPConn) error { return nil }

// holdStamps holds nothing.
func holdStamps() (func() error, error) { return func() error { return nil }, nil }

// stampSpace is no room: there is no stamp to read.
const stampSpace = 0

// stampOf finds no stamp.
func stampOf([]byte) (time.Time, bool) { return time.Time{}, false }
