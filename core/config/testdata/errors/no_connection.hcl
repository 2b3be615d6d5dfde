resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "ping" {
  plugin = "ping"
}
handshake "tls" {
  plugin = "tls"
}
# A dialer that makes no connection (sdk.ConnNone) takes no handshakes.
pipeline "ping_tls" {
  resolvers  = [resolver.lab]
  dialer     = dialer.ping
  handshakes = [handshake.tls] # ERROR: Dialer takes no handshakes
}
# nor a race between connections it does not make.
pipeline "ping_race" {
  resolvers      = [resolver.lab]
  dialer         = dialer.ping
  address_policy = "happy-eyeballs" # ERROR: No race without sockets
}
# An empty list, and every other policy, are valid.
pipeline "ping" {
  resolvers      = [resolver.lab]
  dialer         = dialer.ping
  handshakes     = []
  address_policy = "all"
}
# A QUIC dialer's connection is not a socket: only a handshake that runs over
# QUIC fits it, and a QUIC handshake fits no TCP dialer.
dialer "quic" {
  plugin = "quic"
}
dialer "tcp" {
  plugin = "tcp"
}
handshake "h3" {
  plugin = "h3"
}
pipeline "quic_tls" {
  resolvers  = [resolver.lab]
  dialer     = dialer.quic
  handshakes = [handshake.tls] # ERROR: Handshake does not fit the dialer
}
pipeline "tcp_h3" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.h3] # ERROR: Handshake does not fit the dialer
}
pipeline "quic_race" {
  resolvers      = [resolver.lab]
  dialer         = dialer.quic
  address_policy = "happy-eyeballs" # ERROR: No race without sockets
}
pipeline "h3" {
  resolvers  = [resolver.lab]
  dialer     = dialer.quic
  handshakes = [handshake.h3]
}
