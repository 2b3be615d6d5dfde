package lab

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// GRPCHealthServer is a gRPC server on loopback with grpc-go's own health
// service (google.golang.org/grpc/health, the reference implementation):
// the server as a whole ("") and "api" are SERVING, "batch" NOT_SERVING,
// any other service unknown (NotFound).
type GRPCHealthServer struct {
	Addr netip.AddrPort
	// Health is the health service, to change a status during a test.
	Health *health.Server

	srv      *grpc.Server
	accepted atomic.Int64
}

// StartGRPCHealth starts a GRPCHealthServer on 127.0.0.1, plain, or over TLS
// with cert when it is not nil (grpc-go's TLS credentials, ALPN h2).
func StartGRPCHealth(cert *tls.Certificate) (*GRPCHealthServer, error) {
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})))
	}
	s := &GRPCHealthServer{srv: grpc.NewServer(opts...), Health: health.NewServer()}
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.Health.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	s.Health.SetServingStatus("batch", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.srv, s.Health)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("grpc health server: %w", err)
	}
	s.Addr = netip.MustParseAddrPort(ln.Addr().String())
	go func() { _ = s.srv.Serve(countingListener{ln, &s.accepted}) }()
	return s, nil
}

// Accepted returns how many connections the server has accepted.
func (s *GRPCHealthServer) Accepted() int64 { return s.accepted.Load() }

// Close stops the server and closes its connections.
func (s *GRPCHealthServer) Close() error {
	s.srv.Stop()
	return nil
}

// countingListener counts the connections it accepts in n.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
