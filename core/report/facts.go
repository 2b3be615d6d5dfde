package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/probe-dev/probe/core/engine"
)

// A target's facts: the attributes of a phase whose JSON value is the same
// in every attempt of the target in which the phase ran, stated once in
// the target's "facts" and left out of its attempts' attrs (docs/output.md,
// "The JSON contract"). Which they are is known only once the target is
// done, so the JSON document holds each attempt encoded as it finishes,
// its phases' attributes apart, each value already encoded: the target's
// end compares their bytes and writes the attempts around what is left.
//
// The attempts are encoded here by hand, not by encoding/json, with a
// measured reason: BenchmarkJSONDocument (32 targets of 60 TLS attempts)
// took 114-152 ms, 37.6 MB and 108k allocations through MarshalIndent
// and 17-26 ms, 8.2 MB and 6.5k allocations this way, and the sink's share
// of a run's CPU fell from 5.4 % to 1.9 %. TestFacts checks the bytes
// against MarshalIndent's; values of other types than the common ones
// still go through json.Marshal.

// heldTarget is the attempts of one target, encoded as they finished.
type heldTarget struct {
	attempts []heldAttempt
	size     int // the bytes of the attempts' text and values
}

// heldAttempt is an attempt encoded as an element of its target's attempts
// array but for its phases' attrs, which go at each phase's at: buf holds
// the attempt's text, buf[:text], then its attributes' values.
type heldAttempt struct {
	buf    []byte
	text   int
	phases []heldPhase
}

// heldPhase is a phase of a held attempt: its name, the place of its attrs
// object in the attempt's text, and its attributes, by key.
type heldPhase struct {
	name  string
	at    int
	attrs []heldAttr
}

// heldAttr is an attribute of a held phase and its value's JSON, compact:
// buf[from:to] of its attempt.
type heldAttr struct {
	key      string
	from, to int
}

// Indentation within an attempt, an element of a target's attempts array
// (attemptIndent): of the attempt's members, of an element of its phases
// array, of a phase's members, and of an attribute of a phase.
const (
	attemptMemberIndent = attemptIndent + "  "
	phaseIndent         = attemptMemberIndent + "  "
	phaseMemberIndent   = phaseIndent + "  "
	attrIndent          = phaseMemberIndent + "  "
)

// Indentation of a target's facts, a member of the target: of a phase's
// facts, and of one of them.
const (
	factsPhaseIndent = memberIndent + "  "
	factIndent       = factsPhaseIndent + "  "
)

// scratch is where add encodes an attempt before it holds it in a buffer
// of its size.
type scratch struct {
	buf   []byte
	attrs []keyValue
}

type keyValue struct {
	key   string
	value any
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// add encodes a, the target's next attempt, as MarshalIndent of its
// AttemptJSON (NewAttempt) would, but for its phases' attrs, and holds it.
func (h *heldTarget) add(a *engine.Attempt) error {
	started := a.Started.UTC()
	if y := started.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("attempt %d of target %q: started_at %v: year outside of range [0,9999]", a.Seq, a.Target, started)
	}
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)
	b := append(sc.buf[:0], "{\n"+attemptMemberIndent+`"seq": `...)
	b = strconv.AppendInt(b, int64(a.Seq), 10)
	b = append(b, ",\n"+attemptMemberIndent+`"ok": `...)
	b = strconv.AppendBool(b, a.OK)
	b = append(b, ",\n"+attemptMemberIndent+`"started_at": "`...)
	b = started.AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\",\n"+attemptMemberIndent+`"address": `...)
	if a.Address.IsValid() {
		b = append(b, '"')
		b = a.Address.AppendTo(b)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, ",\n"+attemptMemberIndent+`"total_ms": `...)
	b = appendFloat(b, jsonMS(a.Total))
	b = append(b, ",\n"+attemptMemberIndent+`"overhead_ms": `...)
	b = appendFloat(b, jsonMS(a.Overhead))
	b = append(b, ",\n"+attemptMemberIndent+`"phases": [`...)
	held := heldAttempt{phases: make([]heldPhase, len(a.Phases))}
	n := 0
	for k := range a.Phases {
		p := &a.Phases[k]
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n"+phaseIndent+"{\n"+phaseMemberIndent+`"phase": `...)
		b = appendString(b, p.Name)
		b = append(b, ",\n"+phaseMemberIndent+`"plugin": `...)
		b = appendString(b, p.Plugin)
		b = append(b, ",\n"+phaseMemberIndent+`"start_ms": `...)
		b = appendFloat(b, jsonMS(p.Start))
		b = append(b, ",\n"+phaseMemberIndent+`"duration_ms": `...)
		b = appendFloat(b, jsonMS(p.Duration))
		b = append(b, ",\n"+phaseMemberIndent+`"ok": `...)
		b = strconv.AppendBool(b, p.OK)
		b = append(b, ",\n"+phaseMemberIndent+`"attrs": `...)
		// The phase's attrs object is written here once the target is
		// done.
		held.phases[k] = heldPhase{name: p.Name, at: len(b)}
		b = append(b, "\n"+phaseIndent+"}"...)
		n += len(p.Attrs)
	}
	if len(a.Phases) > 0 {
		b = append(b, "\n"+attemptMemberIndent...)
	}
	b = append(b, "],\n"+attemptMemberIndent+`"failure": `...)
	if f := a.Failure; f != nil {
		b = append(b, "{\n"+phaseIndent+`"phase": `...)
		b = appendString(b, f.Phase)
		b = append(b, ",\n"+phaseIndent+`"class": `...)
		b = appendString(b, string(f.Class))
		b = append(b, ",\n"+phaseIndent+`"message": `...)
		b = appendString(b, f.Message)
		b = append(b, "\n"+attemptMemberIndent+"}"...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, "\n"+attemptIndent+"}"...)
	held.text = len(b)
	// The attributes' values follow the text, each phase's by key.
	attrs := make([]heldAttr, 0, n)
	for k := range a.Phases {
		kv := h.byKey(sc.attrs[:0], k, &a.Phases[k])
		first := len(attrs)
		for _, x := range kv {
			from := len(b)
			var err error
			if b, err = appendValue(b, x.value); err != nil {
				return fmt.Errorf("attempt %d of target %q: phase %s: attribute %q: %w", a.Seq, a.Target, a.Phases[k].Name, x.key, err)
			}
			attrs = append(attrs, heldAttr{key: x.key, from: from, to: len(b)})
		}
		held.phases[k].attrs = attrs[first:len(attrs):len(attrs)]
		clear(kv) // the pool keeps no value
		sc.attrs = kv
	}
	held.buf = slices.Clone(b)
	sc.buf = b
	h.attempts = append(h.attempts, held)
	h.size += len(held.buf)
	return nil
}

// byKey appends the attributes of p, the k-th phase of the target's next
// attempt, to kv by key: in the order of the same phase of the previous
// attempt when p has the same keys (a phase reports the same attributes
// every time, as a rule), without sorting them; else sorted.
func (h *heldTarget) byKey(kv []keyValue, k int, p *engine.Phase) []keyValue {
	if n := len(h.attempts); n > 0 {
		if prev := h.attempts[n-1].phases; k < len(prev) && prev[k].name == p.Name && len(prev[k].attrs) == len(p.Attrs) {
			for _, x := range prev[k].attrs {
				v, ok := p.Attrs[x.key]
				if !ok {
					break
				}
				kv = append(kv, keyValue{x.key, v})
			}
			if len(kv) == len(p.Attrs) {
				return kv
			}
			kv = kv[:0]
		}
	}
	for key, v := range p.Attrs {
		kv = append(kv, keyValue{key, v})
	}
	slices.SortFunc(kv, func(x, y keyValue) int { return strings.Compare(x.key, y.key) })
	return kv
}

// phaseFacts is the facts of one phase of a target: the attributes, of
// the first attempt in which the phase ran, that are facts, and that
// attempt's buf, which holds their values.
type phaseFacts struct {
	name  string
	buf   []byte
	attrs []heldAttr
}

// facts returns the target's facts, by phase name, phases with none left
// out.
func (h *heldTarget) facts() []phaseFacts {
	var out []phaseFacts
	var fact []bool // of the attributes of out[k], which are facts
	for _, a := range h.attempts {
		for _, p := range a.phases {
			k := slices.IndexFunc(out, func(f phaseFacts) bool { return f.name == p.name })
			if k < 0 {
				out = append(out, phaseFacts{name: p.name, buf: a.buf, attrs: p.attrs})
				continue
			}
			// Both p's attributes and out[k]'s are by key.
			f := &out[k]
			fact = fact[:0]
			j := 0
			for _, x := range f.attrs {
				for j < len(p.attrs) && p.attrs[j].key < x.key {
					j++
				}
				fact = append(fact, j < len(p.attrs) && p.attrs[j].key == x.key &&
					bytes.Equal(a.buf[p.attrs[j].from:p.attrs[j].to], f.buf[x.from:x.to]))
			}
			if !slices.Contains(fact, false) {
				continue
			}
			kept := make([]heldAttr, 0, len(fact))
			for n, x := range f.attrs {
				if fact[n] {
					kept = append(kept, x)
				}
			}
			f.attrs = kept
		}
	}
	out = slices.DeleteFunc(out, func(f phaseFacts) bool { return len(f.attrs) == 0 })
	slices.SortFunc(out, func(x, y phaseFacts) int { return strings.Compare(x.name, y.name) })
	return out
}

// appendFacts appends the facts member of a target and its attempts
// member, their elements the held attempts with what facts states left out
// of their attrs, to b, as MarshalIndent of the target would write them.
func (h *heldTarget) appendFacts(b []byte, facts []phaseFacts) []byte {
	b = append(b, "\n"+memberIndent+`"facts": {`...)
	for k, f := range facts {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n"+factsPhaseIndent...)
		b = appendString(b, f.name)
		b = append(b, ": {"...)
		for i, x := range f.attrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAttr(b, factIndent, x.key, f.buf[x.from:x.to])
		}
		b = append(b, "\n"+factsPhaseIndent+"}"...)
	}
	if len(facts) > 0 {
		b = append(b, "\n"+memberIndent...)
	}
	b = append(b, "},\n"+memberIndent+`"attempts": [`...)
	for k, a := range h.attempts {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n"+attemptIndent...)
		at := 0
		for _, p := range a.phases {
			b = append(b, a.buf[at:p.at]...)
			at = p.at
			var known []heldAttr
			if k := slices.IndexFunc(facts, func(f phaseFacts) bool { return f.name == p.name }); k >= 0 {
				known = facts[k].attrs
			}
			b = append(b, '{')
			wrote, j := false, 0
			for _, x := range p.attrs {
				for j < len(known) && known[j].key < x.key {
					j++
				}
				if j < len(known) && known[j].key == x.key {
					continue // a fact, whose value is this one
				}
				if wrote {
					b = append(b, ',')
				}
				b, wrote = appendAttr(b, attrIndent, x.key, a.buf[x.from:x.to]), true
			}
			if wrote {
				b = append(b, "\n"+phaseMemberIndent...)
			}
			b = append(b, '}')
		}
		b = append(b, a.buf[at:a.text]...)
	}
	if len(h.attempts) > 0 {
		b = append(b, "\n"+memberIndent...)
	}
	return append(b, ']')
}

// appendAttr appends the attribute key of value v, compact JSON, as a
// member of an object whose members are indented by indent, to b.
func appendAttr(b []byte, indent, key string, v []byte) []byte {
	b = append(b, '\n')
	b = append(b, indent...)
	b = appendString(b, key)
	b = append(b, ": "...)
	if v[0] != '[' && v[0] != '{' {
		return append(b, v...)
	}
	out := bytes.NewBuffer(b)
	if err := json.Indent(out, v, indent, "  "); err != nil {
		panic(fmt.Sprintf("report: an attribute's own encoding does not indent: %v", err)) // it came from appendValue
	}
	return out.Bytes()
}

// appendValue appends v's JSON encoding, compact, to b, as json.Marshal
// encodes it: the attributes' common types directly, the others through
// json.Marshal.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			break // json.Marshal's error
		}
		return appendFloat(b, v), nil
	case []string:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// appendString appends s as a JSON string, as json.Marshal encodes it:
// directly when every byte of it is printable ASCII that needs no escape
// (HTML's <, > and & among those that do), else through json.Marshal.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always encodes
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat appends f, finite, as json.Marshal encodes a float64: the
// shortest decimal that reads back as f, in exponent form only below 1e-6
// or from 1e21 on, the exponent of at least two digits.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// splitFacts moves what facts states out of the attrs of t's attempts into
// t.Facts: each attempt's PhaseJSON.Attrs a copy without them.
func splitFacts(t *TargetJSON, facts []phaseFacts) {
	t.Facts = make(map[string]map[string]any, len(facts))
	for _, f := range facts {
		m := make(map[string]any, len(f.attrs))
		for _, a := range f.attrs {
			m[a.key] = nil
		}
		t.Facts[f.name] = m
	}
	for i := range t.Attempts {
		for k := range t.Attempts[i].Phases {
			p := &t.Attempts[i].Phases[k]
			known, ok := t.Facts[p.Phase]
			if !ok {
				continue
			}
			attrs := make(map[string]any, len(p.Attrs))
			for key, v := range p.Attrs {
				if _, fact := known[key]; fact {
					known[key] = v
				} else {
					attrs[key] = v
				}
			}
			p.Attrs = attrs
		}
	}
}

// Expand overlays each target's facts on its attempts' attrs: each phase's
// Attrs then holds all its attributes, as an attempt of a document decoded
// from -o json states them with its target's facts (Facts, which stays).
// The attempts share the facts' values: a list or an object is the same
// one in each.
func (d *Document) Expand() {
	for i := range d.Targets {
		t := &d.Targets[i]
		for j := range t.Attempts {
			for k := range t.Attempts[j].Phases {
				p := &t.Attempts[j].Phases[k]
				if len(t.Facts[p.Phase]) == 0 {
					continue
				}
				attrs := maps.Clone(t.Facts[p.Phase])
				maps.Copy(attrs, p.Attrs)
				p.Attrs = attrs
			}
		}
	}
}
