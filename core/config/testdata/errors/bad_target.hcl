resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" {
  plugin = "tcp"
}
pipeline "p" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
target "t" {
  host     = "" # ERROR: Invalid host
  port     = 70000 # ERROR: Invalid port
  pipeline = pipeline.p
}
target "u" {
  host     = "example.com"
  port     = "https" # ERROR: Incorrect attribute value type
  pipeline = pipeline.p
}
target "t" { # ERROR: Duplicate target
  host     = "example.com"
  port     = 443
  pipeline = pipeline.p
}
