resolver "corp" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
  match   = ["*.corp.example"]
}
resolver "any" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" { plugin = "tcp" }

pipeline "p" {
  resolvers = [resolver.corp, resolver.any]
  dialer    = dialer.tcp
}

target "nul" {
  host     = "localhost\u0000.corp.example" # ERROR: Invalid host
  port     = 443
  pipeline = pipeline.p
}

target "escape" {
  host     = "\u001b]0;owned\u0007api.corp.example" # ERROR: Invalid host
  port     = 443
  pipeline = pipeline.p
}

target "fleet" {
  for_each = ["db.corp.example", "db\n.corp.example"]
  host     = each.value # ERROR: Invalid host
  port     = 5432
  pipeline = pipeline.p
}

target "fine" {
  host     = "api.corp.example"
  port     = 443
  pipeline = pipeline.p
}
