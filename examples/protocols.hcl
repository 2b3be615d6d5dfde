# Protocols beyond TCP, TLS and HTTP (issue 17), each a built-in plugin.
#
#   probe run examples/protocols.hcl
#   probe test 192.0.2.1 1 icmp

run {
  mode     = "parallel"
  attempts = 3
  interval = "1s"
  timeout  = "5s"
}

resolver "system" {
  plugin = "dns-system"
}

# icmp: ping, five echo requests per attempt. The dialer makes no
# connection: a pipeline with it has no handshakes.
dialer "ping" {
  plugin   = "icmp"
  count    = 5
  interval = "200ms"
}

pipeline "ping" {
  resolvers = [resolver.system]
  dialer    = dialer.ping
}

target "gateway" {
  host     = "192.0.2.1"
  port     = 1 # every target has a port; icmp does not use it
  pipeline = pipeline.ping
}

# grpc-health: grpc.health.v1.Health/Check over the TLS connection (ALPN
# h2, as gRPC servers expect), SERVING expected.
dialer "tcp" {
  plugin = "dial-tcp"
}

handshake "h2" {
  plugin = "tls"
  alpn   = ["h2"]
}

handshake "orders_health" {
  plugin  = "grpc-health"
  service = "orders.v1.Orders"
  timeout = "2s"
}

pipeline "grpc" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.h2, handshake.orders_health]
}

target "orders" {
  host     = "orders.example.com"
  port     = 443
  pipeline = pipeline.grpc
}

# quic and http3: the QUIC handshake (transport and TLS together) as one
# phase, then a GET over HTTP/3 on that connection. Resumes with 0-RTT
# after a target's first attempt.
dialer "quic" {
  plugin   = "quic"
  zero_rtt = true
}

handshake "h3" {
  plugin        = "http3"
  path          = "/"
  expect_status = [200]
}

pipeline "h3" {
  resolvers  = [resolver.system]
  dialer     = dialer.quic
  handshakes = [handshake.h3]
}

target "site_h3" {
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.h3
}
