resolver "tailnet" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
  match   = ["100.64.0.0/10", "*.ts.net"]
}
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

pipeline "private" {
  resolvers = [resolver.tailnet, resolver.corp]
  dialer    = dialer.tcp
}

pipeline "public" {
  resolvers = [resolver.tailnet, resolver.any]
  dialer    = dialer.tcp
}

target "peer" {
  host     = "box.tail1234.ts.net"
  port     = 22
  pipeline = pipeline.private
}

target "web" {
  host     = "www.example.com" # ERROR: No resolver matches the host
  port     = 443
  pipeline = pipeline.private
}

target "fleet" {
  for_each = ["10.0.0.1", "100.64.0.7", "db.corp.example"]
  host     = each.value # ERROR: No resolver matches the host
  port     = 5432
  pipeline = pipeline.private
}

target "anything" {
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.public
}
