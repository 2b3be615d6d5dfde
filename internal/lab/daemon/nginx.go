package daemon

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// Nginx is nginx in the foreground, one process, serving what its caller
// configured.
type Nginx struct {
	process
}

// StartNginx starts nginx with servers, the contents of its http block
// (server blocks listening on loopback), and waits until it accepts
// connections on addr, one of their addresses. Paths in servers are the
// caller's; nginx's own files go to its temporary directory.
func StartNginx(addr netip.AddrPort, servers string) (_ *Nginx, err error) {
	bin, err := program("nginx", "nginx")
	if err != nil {
		return nil, err
	}
	n := &Nginx{process: process{name: "nginx"}}
	defer closeOnError(&n.process, &err)
	if n.dir, err = newDir("nginx", nil); err != nil {
		return nil, err
	}
	var temps strings.Builder
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "\t%s_temp_path %q;\n", t, filepath.Join(n.dir, t))
	}
	conf := filepath.Join(n.dir, "nginx.conf")
	data := fmt.Appendf(nil, `daemon off;
master_process off;
worker_processes 1;
pid %q;
error_log stderr warn;
events { worker_connections 64; }
http {
	access_log off;
%s%s
}
`, filepath.Join(n.dir, "nginx.pid"), temps.String(), servers)
	if err := writeFile(conf, data, 0o600, nil); err != nil {
		return nil, err
	}
	if err := n.start(bin, []string{"-p", n.dir, "-c", conf, "-e", "stderr"}, nil, listening(addr)); err != nil {
		return nil, err
	}
	return n, nil
}
