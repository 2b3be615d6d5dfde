# The check file of `probe plugins check` for probe-plugin-tailscale, where no
# tailnet is at hand (CI): both components speak to a tailscaled that is not
# there, so each call must fail as tailscale.unavailable, as data. What this
# leaves unchecked (a resolve that answers, a dial that hands back a socket)
# the tests of this module check against a tailnet of their own.

resolver "tailscale" {
  config       = { socket = "/nonexistent/tailscaled.sock" }
  reject       = { backend = "carrier-pigeon" }
  host         = "peer.tailnet.example"
  want_failure = "tailscale.unavailable"
  fail_host    = "100.64.0.99"
}

dialer "tailscale" {
  config       = { socket = "/nonexistent/tailscaled.sock" }
  reject       = { backend = "carrier-pigeon" }
  want_failure = "tailscale.unavailable"
}
