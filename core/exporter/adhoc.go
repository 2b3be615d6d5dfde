package exporter

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/probe-dev/probe/core/engine"
)

// refusal is a /probe that the file does not allow, answered 403 and
// counted in probe_exporter_adhoc_refused_total by reason.
type refusal struct {
	reason string // the counter's label: not_allowed or sensitive
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// errSensitive refuses an ad-hoc probe with a pipeline that would carry a
// secret to a host the file does not name.
var errSensitive = errors.New("holds a sensitive value")

// adhoc returns the target for host:port probed with pipeline, checked
// before anything is probed: one of the file's own targets with that host,
// port and pipeline, or else an ad-hoc target, which the file's
// serve { adhoc { allow } } list must allow and whose pipeline must hold no
// sensitive value. Anything else is a *refusal.
func (s *state) adhoc(name, pipeline, host string, port uint16) (*engine.Target, error) {
	p := s.file.Pipelines[pipeline]
	for _, t := range s.file.Targets {
		if t.Pipeline == p && t.Host == host && t.Port == port {
			return t, nil
		}
	}
	allow := &s.file.Serve.Adhoc
	switch {
	case len(allow.Allow) == 0:
		return nil, &refusal{"not_allowed", fmt.Errorf("target %q is not one of the file's targets, and the file allows "+
			"no ad-hoc target (serve { adhoc { allow = [...] } })", name)}
	case !allow.Allows(host, port):
		return nil, &refusal{"not_allowed", fmt.Errorf("target %q is not in the file's ad-hoc allow list (%s)",
			name, strings.Join(allow.Allow, ", "))}
	}
	if secret := s.file.Sensitive(pipeline); len(secret) > 0 {
		return nil, &refusal{"sensitive", fmt.Errorf("pipeline %q %w (%s), which probe sends only to the file's own targets; "+
			"probe one of them with /probe?target=NAME, or other hosts with a pipeline that holds none",
			pipeline, errSensitive, strings.Join(secret, ", "))}
	}
	return &engine.Target{Name: name, Host: host, Port: port, Pipeline: p}, nil
}

// splitTarget reads an ad-hoc target, HOST:PORT, refusing a host with a
// control character: none reaches a resolver, nor raw the answer (the
// error of a name that does not split quotes it as it is).
func splitTarget(name string) (string, uint16, error) {
	host, portStr, err := net.SplitHostPort(name)
	switch {
	case err == nil:
		err = engine.CheckHost(host)
	case engine.CheckHost(name) != nil:
		err = engine.CheckHost(name)
	default:
		err = fmt.Errorf("expected HOST:PORT: %w", err)
	}
	if err != nil {
		return "", 0, fmt.Errorf("target %q with a pipeline: %w", name, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("target %q: expected HOST:PORT with a port from 1 to 65535", name)
	}
	return host, uint16(port), nil
}
