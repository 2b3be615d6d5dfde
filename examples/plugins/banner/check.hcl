# The check file of `probe plugins check` for banner: the handshake reads
# the greeting of the check's greeting server ("SSH-2.0-probe-check"), and
# must refuse an expression that does not compile, naming expect.
#
#   probe plugins check ./bin/probe-plugin-banner --config examples/plugins/banner/check.hcl

handshake "banner" {
  server = "greeting"
  config = { expect = "^SSH-2\\.0-" }
  reject = { expect = "(" }
}
