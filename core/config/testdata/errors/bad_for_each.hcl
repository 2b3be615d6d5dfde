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
  for_each = 3 # ERROR: Invalid for_each argument
  host     = "example.com"
  port     = 443
  pipeline = pipeline.p
}
