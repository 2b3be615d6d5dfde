// Command spawnplugin is a test plugin binary for core/pluginhost that
// starts a helper process (sleep) sharing its stdout and stderr before it
// serves, as a plugin that runs a daemon of its own would. Its handshake
// "spawn" reports the helper's pid as the attribute "helper". It serves the
// resolver "static" and dial-tcp too (testplugin).
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/probe-dev/probe/core/pluginhost/testdata/testplugin"
	"github.com/probe-dev/probe/core/sdk"
)

func main() {
	helper := exec.Command("sleep", "300")
	helper.Stdout, helper.Stderr = os.Stdout, os.Stderr
	if err := helper.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start the helper:", err)
		os.Exit(1)
	}
	testplugin.Serve("spawn", "Starts a helper that shares its output.", spawner{helper.Process.Pid})
}

type spawner struct{ helper int }

func (s spawner) Handshake(context.Context, *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	resp := testplugin.Done(span)
	resp.Phases[0].Attrs["helper"] = s.helper
	return resp, nil
}

var _ sdk.Handshaker = spawner{}
