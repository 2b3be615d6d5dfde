dialer "tcp" {
  plugin = "dns" # ERROR: Plugin is not a dialer
}
