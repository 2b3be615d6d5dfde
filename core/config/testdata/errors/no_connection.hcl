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
  address_policy = "happy-eyeballs" # ERROR: No race without connections
}
# An empty list, and every other policy, are valid.
pipeline "ping" {
  resolvers      = [resolver.lab]
  dialer         = dialer.ping
  handshakes     = []
  address_policy = "all"
}
