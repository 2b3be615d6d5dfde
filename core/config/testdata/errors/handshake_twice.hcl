resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" {
  plugin = "tcp"
}
handshake "tls" {
  plugin = "tls"
}
handshake "inner" {
  plugin = "tls"
}
pipeline "twice" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.tls] # ERROR: Handshake listed twice
}
# Two blocks of one plugin are two handshakes: valid.
pipeline "two_blocks" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.inner]
}
