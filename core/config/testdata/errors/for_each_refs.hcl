resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" {
  plugin = "tcp"
}
handshake "page" {
  for_each = toset(["/", "/api", "/healthz"])
  plugin   = "http"
  path     = each.value
}
handshake "tls" {
  server_name = each.key # ERROR: Reference to "each" in context without for_each
  plugin      = "tls"
}
handshake "bad" {
  for_each = "/healthz" # ERROR: Invalid for_each argument
  plugin   = "http"
}
handshake "twice" {
  for_each = ["/a", "/b", "/a"] # ERROR: Duplicate for_each key
  plugin   = "http"
  path     = each.value
}
pipeline "whole" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.page] # ERROR: Missing instance key
}
pipeline "typo" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.page["/helthz"]] # ERROR: Unknown instance key
}
pipeline "indexed" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp["x"] # ERROR: Unexpected instance key
}
pipeline "page" {
  for_each   = toset(["/", "/api", "/login"])
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.page[each.key]] # ERROR: Unknown instance key
}
# A reference to a block with errors of its own draws no more errors.
pipeline "quiet" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.bad["x"], handshake.twice["/a"]]
}
target "site" {
  for_each = toset(["/", "/api", "/login"])
  host     = "example.com"
  port     = 443
  pipeline = pipeline.page[each.vlue] # ERROR: Unsupported attribute
}
target "login" {
  host     = "example.com"
  port     = 443
  pipeline = pipeline.page["/login"] # no error: that instance has its own
}
target "whole" {
  host     = "example.com"
  port     = 443
  pipeline = pipeline.page # ERROR: Missing instance key
}
target "list" {
  for_each = toset(["/"])
  host     = "example.com"
  port     = 443
  pipeline = pipeline.page[[each.key]] # ERROR: Invalid instance key
}
target "one" {
  host     = each.value # ERROR: Reference to "each" in context without for_each
  port     = 443
  pipeline = pipeline.quiet
}
