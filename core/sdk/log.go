package sdk

import "github.com/hashicorp/go-hclog"

// Logger returns the plugin's logger, hclog's default. In a plugin binary
// serve.Serve makes it write hclog JSON to the process's original stderr,
// which probe re-logs at the same level under "plugin.NAME"; in process it
// is the program's.
func Logger() hclog.Logger {
	return hclog.Default()
}
