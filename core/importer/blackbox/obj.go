package blackbox

import "gopkg.in/yaml.v3"

// obj is a YAML mapping whose keys are marked as read, so that what no
// code read is reported (rest) rather than dropped.
type obj struct {
	node *yaml.Node
	read map[string]bool
}

// newObj returns the mapping n; a nil n is an empty one.
func newObj(n *yaml.Node) *obj { return &obj{node: n, read: map[string]bool{}} }

// get returns the value of key, marking it read; nil when absent. Its
// Line is the key's: the line a note about the option names, also for a
// block list or mapping, which starts on the next.
func (o *obj) get(key string) *yaml.Node {
	if o.node == nil {
		return nil
	}
	for i := 0; i+1 < len(o.node.Content); i += 2 {
		if o.node.Content[i].Value == key {
			o.read[key] = true
			v := *o.node.Content[i+1]
			v.Line = o.node.Content[i].Line
			return &v
		}
	}
	return nil
}

// rest returns the key nodes not read, in file order.
func (o *obj) rest() []*yaml.Node {
	if o.node == nil {
		return nil
	}
	var keys []*yaml.Node
	for i := 0; i+1 < len(o.node.Content); i += 2 {
		if !o.read[o.node.Content[i].Value] {
			keys = append(keys, o.node.Content[i])
		}
	}
	return keys
}

// strings returns a sequence's scalar values.
func strs(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	for _, e := range n.Content {
		out = append(out, e.Value)
	}
	return out
}
