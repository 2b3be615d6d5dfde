resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" { plugin = "tcp" }

pipeline "eyeballs" {
  resolvers      = [resolver.lab]
  dialer         = dialer.tcp
  address_policy = "happy-eyeball" # ERROR: Invalid address policy
}

pipeline "typed" {
  resolvers      = [resolver.lab]
  dialer         = dialer.tcp
  address_policy = ["all"] # ERROR: Incorrect attribute value type
}

pipeline "fine" {
  resolvers      = [resolver.lab]
  dialer         = dialer.tcp
  address_policy = "all"
}

target "ok" {
  host     = "api.example"
  port     = 443
  pipeline = pipeline.fine
}
