//go:build linux

package netlab

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func startLink(t *testing.T, delay time.Duration) (*Link, *FarLab) {
	t.Helper()
	Require(t)
	l, err := Start(delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	f, err := l.StartLab()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return l, f
}

// roundTrips times n exchanges of each kind across the link, from the near
// side: a TCP connect, a UDP DNS query, and a TLS handshake after a connect.
func roundTrips(l *Link, f *FarLab, n int) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	tlsAddr := f.TLS.Addr.String()
	err := l.Near.Do(func() error {
		for range n {
			start := time.Now()
			c, err := net.Dial("tcp", tlsAddr)
			if err != nil {
				return err
			}
			out["connect"] = append(out["connect"], time.Since(start))
			tc := tls.Client(c, &tls.Config{ServerName: Host, RootCAs: f.CA.Pool()})
			start = time.Now()
			err = tc.Handshake()
			out["tls"] = append(out["tls"], time.Since(start))
			c.Close()
			if err != nil {
				return err
			}

			m := new(dns.Msg).SetQuestion(Host+".", dns.TypeA)
			start = time.Now()
			r, err := dns.Exchange(m, f.DNS.Addr)
			out["dns"] = append(out["dns"], time.Since(start))
			if err != nil {
				return err
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != FarAddr.String() {
				return &unexpectedAnswer{r}
			}
		}
		return nil
	})
	return out, err
}

type unexpectedAnswer struct{ r *dns.Msg }

func (e *unexpectedAnswer) Error() string { return "unexpected DNS answer: " + e.r.String() }

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2]
}

// TestRoundTrip checks the ground truth: a connect and a DNS query across
// the link take one round trip, 2·Delay plus the link's own small cost; a
// TLS 1.3 handshake one more round trip plus its computation (client and
// server both in this process, slow under the race detector). A run the
// machine disturbed is repeated, up to six times in all.
func TestRoundTrip(t *testing.T) {
	const delay, tries = 20 * time.Millisecond, 6
	l, f := startLink(t, delay)
	bounds := map[string][2]time.Duration{
		"connect": {2 * delay, 2*delay + 1500*time.Microsecond},
		"dns":     {2 * delay, 2*delay + 2500*time.Microsecond},
		"tls":     {2 * delay, 2*delay + 15*time.Millisecond},
	}
	for try := 1; ; try++ {
		l.ResetLateness()
		got, err := roundTrips(l, f, 10)
		if err != nil {
			t.Fatal(err)
		}
		late := l.Lateness()
		var problems []string
		for _, kind := range []string{"connect", "dns", "tls"} {
			b := bounds[kind]
			if m := median(got[kind]); m < b[0] || m > b[1] {
				problems = append(problems, kind+" median "+m.String()+" not in ["+b[0].String()+", "+b[1].String()+"]")
			}
			if lo := slices.Min(got[kind]); lo < b[0] {
				t.Errorf("%s took %v, less than 2·delay: the link is not holding packets", kind, lo)
			}
		}
		t.Logf("try %d: connect %v dns %v tls %v; lateness %+v", try, median(got["connect"]), median(got["dns"]), median(got["tls"]), late)
		if late.Packets < 10*(3+3+4) {
			t.Errorf("lateness counted %d packets, want at least %d", late.Packets, 10*(3+3+4))
		}
		if len(problems) == 0 {
			return
		}
		if try == tries {
			t.Fatalf("%s (lateness %+v)", strings.Join(problems, "; "), late)
		}
		t.Logf("disturbed run, repeating: %s", strings.Join(problems, "; "))
	}
}

// TestIsolated checks that the namespaces hold only their loopback and the
// link, so nothing can route out, and that a process started in one
// inherits it.
func TestIsolated(t *testing.T) {
	l, _ := startLink(t, 0)
	for _, side := range []struct {
		name string
		ns   *Namespace
		addr netip.Addr
	}{{"near", l.Near, NearAddr}, {"far", l.Far, FarAddr}} {
		t.Run(side.name, func(t *testing.T) {
			var names, addrs []string
			err := side.ns.Do(func() error {
				ifs, err := net.Interfaces()
				if err != nil {
					return err
				}
				for _, i := range ifs {
					names = append(names, i.Name)
					as, err := i.Addrs()
					if err != nil {
						return err
					}
					for _, a := range as {
						addrs = append(addrs, a.String())
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(names)
			slices.Sort(addrs)
			if diff := cmp.Diff([]string{"delay0", "lo"}, names); diff != "" {
				t.Errorf("interfaces (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{side.addr.String() + "/30", "127.0.0.1/8"}, addrs); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}

			cmd := exec.Command("cat", "/proc/net/dev")
			var out strings.Builder
			cmd.Stdout = &out
			if err := side.ns.Start(cmd); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "delay0:") || strings.Count(out.String(), ":") != 2 {
				t.Errorf("a child process sees other interfaces than lo and delay0:\n%s", &out)
			}
		})
	}
}

// TestWithResolvConf checks that a child sees the resolv.conf it is given
// while the machine's stays as it was.
func TestWithResolvConf(t *testing.T) {
	l, f := startLink(t, 0)
	before, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	want := "nameserver " + FarAddr.String() + "\n"
	if err := os.WriteFile(conf, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("getent", "ahostsv4", Host)
	WithResolvConf(cmd, conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := l.Near.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("getent: %v\n%s", err, &out)
	}
	if !strings.HasPrefix(out.String(), FarAddr.String()+" ") {
		t.Errorf("getent ahostsv4 %s in the near namespace:\n%s\nwant %s, from the far lab's DNS server", Host, &out, FarAddr)
	}
	if f.DNS.Queries() == 0 {
		t.Error("the far lab's DNS server saw no query")
	}
	after, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("/etc/resolv.conf changed:\n%s\nwas:\n%s", after, before)
	}
}

// TestDialContext checks that a dial from the near namespace reaches the
// far lab from the near address.
func TestDialContext(t *testing.T) {
	l, f := startLink(t, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := l.Near.DialContext(ctx, "tcp", f.TLS.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != NearAddr {
		t.Errorf("local address %s, want %s", got, NearAddr)
	}
}

// TestStar: from each near namespace of a star, the far lab's one TLS
// server at FarAddr is a connect of at least twice the spoke's delay away,
// and a cut spoke reaches nothing until it is put back, while the others
// still do.
func TestStar(t *testing.T) {
	Require(t)
	delays := []time.Duration{2 * time.Millisecond, 5 * time.Millisecond}
	s, err := StartStar(delays...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	f, err := s.StartLab()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	connect := func(i int) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		c, err := s.Nears[i].DialContext(ctx, "tcp", f.TLS.Addr.String())
		if err != nil {
			return 0, err
		}
		d := time.Since(start)
		if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != SpokeAddr(i) {
			t.Errorf("spoke %d connects from %s, want %s", i, got, SpokeAddr(i))
		}
		return d, c.Close()
	}
	for i, delay := range delays {
		d, err := connect(i)
		if err != nil {
			t.Fatalf("spoke %d: %v", i, err)
		}
		if d < 2*delay {
			t.Errorf("spoke %d of delay %s: connect in %s, less than a round trip", i, delay, d)
		}
		t.Logf("spoke %d, delay %s: connect %s", i, delay, d)
	}
	s.Cut(0, true)
	if _, err := connect(0); err == nil {
		t.Error("spoke 0 cut: the connect succeeded")
	}
	if _, err := connect(1); err != nil {
		t.Errorf("spoke 0 cut, spoke 1: %v", err)
	}
	s.Cut(0, false)
	if _, err := connect(0); err != nil {
		t.Errorf("spoke 0 put back: %v", err)
	}
}
