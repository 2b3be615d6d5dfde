package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"

	"github.com/probe-dev/probe/core/sdk"
)

// The rules a component's phases must keep, which the engine enforces where
// it records them (call and record, for every component, in process or
// not): a start and a duration of zero or more, or the attempt fails as
// plugin.error; a name of its own within the attempt; attribute values that
// every output can write.

// checkPhases returns why the phases a component reported cannot be
// recorded, nil when they can: a negative start or duration is no
// measurement.
func checkPhases(phases []sdk.Phase) error {
	for _, p := range phases {
		if p.Start < 0 || p.Duration < 0 {
			return fmt.Errorf("phase %q reported a negative start or duration (start %v, duration %v)", p.Name, p.Start, p.Duration)
		}
	}
	return nil
}

// phaseNames hands out the names of an attempt's phases. A name the
// attempt has already (or TotalPhase, the key of attempt totals in
// statistics) takes the suffix "#2", then "#3" and so on: the second http
// handshake of a pipeline is the phase "http#2", in every output, and two
// phases of one name a plugin reported stay two.
type phaseNames struct {
	taken map[string]bool
	next  map[string]int // the next suffix to try, by name
}

// newPhaseNames returns the names left after phases.
func newPhaseNames(phases []Phase) *phaseNames {
	n := &phaseNames{taken: map[string]bool{TotalPhase: true}, next: map[string]int{}}
	for _, p := range phases {
		n.taken[p.Name] = true
	}
	return n
}

// unique returns name, or name with the first free suffix, and takes it.
func (n *phaseNames) unique(name string) string {
	out := name
	for n.taken[out] {
		k := max(n.next[name], 2)
		n.next[name] = k + 1
		out = name + "#" + strconv.Itoa(k)
	}
	n.taken[out] = true
	return out
}

// maxAttrDepth bounds how deeply jsonSafe follows nested attribute values,
// as the plugin protocol bounds them, so that a cyclic map from a plugin in
// process is cut instead of followed for ever.
const maxAttrDepth = 64

// jsonSafe returns attrs with every value that JSON cannot carry replaced
// by a string: a NaN or infinite number by "NaN", "+Inf" or "-Inf", at any
// depth; a value of another type that does not marshal by why; nesting
// beyond maxAttrDepth by a note. One bad value must not lose a whole
// document. attrs is not changed: the result is a copy when anything was
// replaced, else attrs itself.
func jsonSafe(attrs map[string]any) map[string]any {
	out, _ := safeMap(attrs, 0)
	return out
}

// safeMap is jsonSafe at depth, and reports whether it replaced anything.
func safeMap(m map[string]any, depth int) (map[string]any, bool) {
	var out map[string]any
	for k, v := range m {
		if s, changed := safeValue(v, depth+1); changed {
			if out == nil {
				out = maps.Clone(m)
			}
			out[k] = s
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// safeValue returns v as JSON can carry it, and whether that is not v.
func safeValue(v any, depth int) (any, bool) {
	if depth > maxAttrDepth {
		return fmt.Sprintf("(nested deeper than %d levels)", maxAttrDepth), true
	}
	switch v := v.(type) {
	case nil, string, bool, int, int64, []string:
		return v, false
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64), true
		}
		return v, false
	case float32:
		return safeValue(float64(v), depth)
	case map[string]any:
		return safeMap(v, depth)
	case []any:
		var out []any
		for i, e := range v {
			if s, changed := safeValue(e, depth+1); changed {
				if out == nil {
					out = append([]any(nil), v...)
				}
				out[i] = s
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []map[string]any:
		var out []map[string]any
		for i, e := range v {
			if s, changed := safeMap(e, depth+1); changed {
				if out == nil {
					out = append([]map[string]any(nil), v...)
				}
				out[i] = s
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	default:
		if _, err := json.Marshal(v); err != nil {
			return fmt.Sprintf("(%T: %v)", v, err), true
		}
		return v, false
	}
}
