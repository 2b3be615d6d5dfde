package exporter

import "testing"

func TestBasePaths(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`on /etc/probe/serve.hcl line 3, in target "a":`, `on serve.hcl line 3, in target "a":`},
		{`no probe-plugin-x in /root/.cache/go-build/4a/4a53-d (next to probe), /root/.probe/plugins (~/.probe/plugins)`,
			`no probe-plugin-x in 4a53-d (next to probe), plugins (~/.probe/plugins)`},
		{`-var-file "/srv/secrets/prod.vars": no such file`, `-var-file "prod.vars": no such file`},
		{`missing parameter target: /probe?target=NAME, or /probe?target=HOST:PORT&pipeline=NAME`,
			`missing parameter target: /probe?target=NAME, or /probe?target=HOST:PORT&pipeline=NAME`},
		{`target "10.0.0.0/8:22" is not allowed`, `target "10.0.0.0/8:22" is not allowed`},
	} {
		if got := basePaths(tt.in); got != tt.want {
			t.Errorf("basePaths(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
