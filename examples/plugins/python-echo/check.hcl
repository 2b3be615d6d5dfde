# The check file of `probe plugins check` for python-echo: its handshake runs
# against the check's echo server, and must refuse an empty line, naming it.
#
#   probe plugins check examples/plugins/python-echo/probe-plugin-python-echo --config examples/plugins/python-echo/check.hcl

handshake "python-echo" {
  server = "echo"
  reject = { line = "" }
}
