//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Star is delay links of several delays sharing their far side: a near
// namespace per delay, each joined to the one Far namespace by a link of its
// own, as vantage points at different distances from the same servers. Spoke
// i's near end is SpokeAddr(i), its far end 10.203.i.2; FarAddr, spoke 0's
// far end, is the far side's address that every near namespace reaches
// through its own link (its prefix covers the others'), so the far lab
// (StartLab) serves them all at one address.
type Star struct {
	Far *Namespace
	// Nears are the near namespaces, one per delay, in the order given.
	Nears []*Namespace
	// Delays are the spokes' one-way delays.
	Delays []time.Duration

	tuns []int           // TUN file descriptors: near then far, per spoke
	fwd  [][2]*forwarder // per spoke: near to far, far to near; nil when not started
	late recorder
}

// The prefixes of a star's ends: a near end's covers every spoke's far end,
// a far end's only its own spoke.
const (
	starNearBits = 16
	starFarBits  = 24
)

// SpokeAddr is the address of spoke i's near end: 10.203.i.1.
func SpokeAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 203, byte(i), 1}) }

// spokeFarAddr is the address of spoke i's far end: 10.203.i.2.
func spokeFarAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 203, byte(i), 2}) }

// StartStar builds a star of one spoke per delay (at most 255). On failure
// it releases what it had built.
func StartStar(delays ...time.Duration) (s *Star, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if len(delays) == 0 || len(delays) > 255 {
		return nil, fmt.Errorf("start star: %d spokes, want 1 to 255", len(delays))
	}
	s = &Star{Delays: delays}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("start star: %w", err), s.Close())
			s = nil
		}
	}()
	if s.Far, err = newNamespace(); err != nil {
		return s, err
	}
	for i, delay := range delays {
		near, err := newNamespace()
		if err != nil {
			return s, err
		}
		s.Nears = append(s.Nears, near)
		var fds [2]int
		for j, end := range []struct {
			ns   *Namespace
			name string
			addr netip.Prefix
		}{
			{near, "delay0", netip.PrefixFrom(SpokeAddr(i), starNearBits)},
			{s.Far, fmt.Sprintf("delay%d", i), netip.PrefixFrom(spokeFarAddr(i), starFarBits)},
		} {
			err := end.ns.Do(func() (err error) {
				fds[j], err = openTUN(end.name, end.addr)
				return err
			})
			if err != nil {
				return s, err
			}
			s.tuns = append(s.tuns, fds[j])
		}
		s.fwd = append(s.fwd, [2]*forwarder{})
		for j, dir := range [][2]int{{fds[0], fds[1]}, {fds[1], fds[0]}} {
			if s.fwd[i][j], err = startForwarder(dir[0], dir[1], delay, &s.late); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// Cut drops every packet of spoke i's link in both directions while cut is
// true, as a cable pulled out; false puts the link back.
func (s *Star) Cut(i int, cut bool) {
	for _, f := range s.fwd[i] {
		f.cut.Store(cut)
	}
}

// StartLab starts the far lab's servers inside s.Far, on FarAddr.
func (s *Star) StartLab() (*FarLab, error) {
	var f *FarLab
	err := s.Far.Do(func() (err error) {
		f, err = StartFarLab()
		return err
	})
	return f, err
}

// Lateness says how late the forwarders delivered the packets that crossed
// any spoke.
func (s *Star) Lateness() Lateness { return s.late.summary() }

// Close stops the forwarders and releases the devices and namespaces. It
// works after a failed StartStar.
func (s *Star) Close() error {
	var errs []error
	for _, fwd := range s.fwd {
		for _, f := range fwd {
			if f != nil {
				errs = append(errs, f.close())
			}
		}
	}
	for _, fd := range s.tuns {
		if fd >= 0 {
			errs = append(errs, unix.Close(fd))
		}
	}
	for _, ns := range append([]*Namespace{s.Far}, s.Nears...) {
		if ns != nil {
			errs = append(errs, ns.close())
		}
	}
	return errors.Join(errs...)
}
