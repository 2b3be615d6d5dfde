package tailscale

import "testing"

func TestSmoke(t *testing.T) {
	t.Logf("web %s %s gone %s daemon %s port %d", tn.web, tn.web6, tn.gone, tn.daemon, tn.daemonPort)
}
