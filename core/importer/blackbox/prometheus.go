package blackbox

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// PrometheusTargets reads the scrape jobs of a prometheus.yml (src, read
// from file) that ask an exporter's /probe for a module: their
// static_configs targets, each with the job's params module. A job
// that probes without a module, or finds its targets otherwise (service
// discovery), is a Note.
func PrometheusTargets(file string, src []byte) ([]Target, []Note, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("%s: expected a mapping with a scrape_configs key", file)
	}
	var targets []Target
	var notes []Note
	jobs := newObj(doc.Content[0]).get("scrape_configs")
	if jobs == nil {
		return nil, nil, nil
	}
	for _, j := range jobs.Content {
		job := newObj(j)
		name := ""
		if n := job.get("job_name"); n != nil {
			name = n.Value
		}
		if p := job.get("metrics_path"); p == nil || p.Value != "/probe" {
			continue
		}
		note := func(line int, reason string) {
			notes = append(notes, Note{File: file, Line: line, Option: "job " + name, Reason: reason})
		}
		var modules []string
		if params := job.get("params"); params != nil {
			modules = strs(newObj(params).get("module"))
		}
		if len(modules) != 1 {
			note(j.Line, fmt.Sprintf("probes /probe with %d modules in params (want one): its targets are not imported", len(modules)))
			continue
		}
		sc := job.get("static_configs")
		if sc == nil {
			note(j.Line, "finds its targets without static_configs (service discovery): add their target blocks by hand")
			continue
		}
		for _, s := range sc.Content {
			list := newObj(s).get("targets")
			if list == nil {
				continue
			}
			for _, t := range list.Content {
				targets = append(targets, Target{Job: name, Module: modules[0], Target: t.Value, File: file, Line: t.Line})
			}
		}
		for _, k := range []string{"file_sd_configs", "dns_sd_configs", "consul_sd_configs", "kubernetes_sd_configs", "http_sd_configs"} {
			if v := job.get(k); v != nil {
				note(v.Line, k+": service discovery is not imported: add those targets by hand")
			}
		}
	}
	return targets, notes, nil
}
