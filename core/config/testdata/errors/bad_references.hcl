resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" {
  plugin = "tcp"
}
pipeline "p" {
  resolvers = [resolver.lba] # ERROR: Reference to undeclared resolver
  dialer    = resolver.lab # ERROR: Invalid reference
}
target "t" {
  host     = "example.com"
  port     = 443
  pipeline = pipeline.q # ERROR: Reference to undeclared pipeline
}
