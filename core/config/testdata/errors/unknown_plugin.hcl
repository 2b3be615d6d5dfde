dialer "tcp" {
  plugin = "dail" # ERROR: Unknown plugin
}
