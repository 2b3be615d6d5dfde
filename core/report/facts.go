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

// heldTarget is the attempts of one target, encoded as they finished.
type heldTarget struct {
	// buf holds the attempts' text and their attributes' values, which
	// the spans below index.
	buf      []byte
	attempts []heldAttempt
	phases   []heldPhase
	attrs    []heldAttr
}

// span is buf[from:to] of a heldTarget.
type span struct{ from, to int }

// heldAttempt is an attempt encoded as an element of its target's attempts
// array but for its phases' attrs, which go at each phase's at: text is
// the attempt, phases[first:end] of the heldTarget its phases.
type heldAttempt struct {
	text       span
	first, end int
}

// heldPhase is a phase of a held attempt: its name, the place of its attrs
// object in the attempt's text (an offset into buf), and attrs[first:end]
// of the heldTarget its attributes, by key.
type heldPhase struct {
	name       string
	at         int
	first, end int
}

// heldAttr is an attribute of a held phase and its value's JSON, compact.
type heldAttr struct {
	key   string
	value span
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

// add encodes a, the target's next attempt, as MarshalIndent of its
// AttemptJSON (NewAttempt) would, but for its phases' attrs, and holds it.
func (h *heldTarget) add(a *engine.Attempt) error {
	started := a.Started.UTC()
	if y := started.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("attempt %d of target %q: started_at %v: year outside of range [0,9999]", a.Seq, a.Target, started)
	}
	from, b := len(h.buf), h.buf
	b = append(b, "{\n"+attemptMemberIndent+`"seq": `...)
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
	first := len(h.phases)
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
		// The attributes' values go after the text; the phase's attrs
		// object is written at its place when the target is done.
		h.phases = append(h.phases, heldPhase{name: p.Name, at: len(b), first: len(h.attrs)})
		b = append(b, "\n"+phaseIndent+"}"...)
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
	h.attempts = append(h.attempts, heldAttempt{text: span{from, len(b)}, first: first, end: len(h.phases)})
	for k := range a.Phases {
		hp := &h.phases[first+k]
		hp.first = len(h.attrs)
		for key := range a.Phases[k].Attrs {
			h.attrs = append(h.attrs, heldAttr{key: key})
		}
		attrs := h.attrs[hp.first:]
		slices.SortFunc(attrs, func(x, y heldAttr) int { return strings.Compare(x.key, y.key) })
		for i := range attrs {
			from := len(b)
			var err error
			if b, err = appendValue(b, a.Phases[k].Attrs[attrs[i].key]); err != nil {
				return fmt.Errorf("attempt %d of target %q: phase %s: attribute %q: %w", a.Seq, a.Target, hp.name, attrs[i].key, err)
			}
			attrs[i].value = span{from, len(b)}
		}
		hp.end = len(h.attrs)
	}
	h.buf = b
	return nil
}

// phaseFacts is the facts of one phase of a target: the attributes, of
// the first attempt in which the phase ran, that are facts.
type phaseFacts struct {
	name  string
	attrs []heldAttr
}

// facts returns the target's facts, by phase name, phases with none left
// out.
func (h *heldTarget) facts() []phaseFacts {
	var out []phaseFacts
	var fact []bool // of the attributes of out[k]'s first phase, which are facts
	var firsts []*heldPhase
	for i := range h.phases {
		p := &h.phases[i]
		k := slices.IndexFunc(firsts, func(f *heldPhase) bool { return f.name == p.name })
		if k < 0 {
			firsts = append(firsts, p)
			out = append(out, phaseFacts{name: p.name, attrs: h.attrs[p.first:p.end]})
			continue
		}
		// Both p's attributes and those of its first occurrence are by key.
		fact = fact[:0]
		theirs, j := h.attrs[p.first:p.end], 0
		for _, f := range out[k].attrs {
			for j < len(theirs) && theirs[j].key < f.key {
				j++
			}
			fact = append(fact, j < len(theirs) && theirs[j].key == f.key && bytes.Equal(h.bytes(theirs[j].value), h.bytes(f.value)))
		}
		if !slices.Contains(fact, false) {
			continue
		}
		kept := make([]heldAttr, 0, len(fact))
		for n, f := range out[k].attrs {
			if fact[n] {
				kept = append(kept, f)
			}
		}
		out[k].attrs = kept
	}
	out = slices.DeleteFunc(out, func(f phaseFacts) bool { return len(f.attrs) == 0 })
	slices.SortFunc(out, func(x, y phaseFacts) int { return strings.Compare(x.name, y.name) })
	return out
}

func (h *heldTarget) bytes(s span) []byte { return h.buf[s.from:s.to] }

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
		for i, a := range f.attrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = h.appendAttr(b, factIndent, a)
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
		at := a.text.from
		for _, p := range h.phases[a.first:a.end] {
			b = append(b, h.buf[at:p.at]...)
			at = p.at
			var known []heldAttr
			if k := slices.IndexFunc(facts, func(f phaseFacts) bool { return f.name == p.name }); k >= 0 {
				known = facts[k].attrs
			}
			b = append(b, '{')
			wrote, j := false, 0
			for _, attr := range h.attrs[p.first:p.end] {
				for j < len(known) && known[j].key < attr.key {
					j++
				}
				if j < len(known) && known[j].key == attr.key {
					continue // a fact, whose value is this one
				}
				if wrote {
					b = append(b, ',')
				}
				b, wrote = h.appendAttr(b, attrIndent, attr), true
			}
			if wrote {
				b = append(b, "\n"+phaseMemberIndent...)
			}
			b = append(b, '}')
		}
		b = append(b, h.buf[at:a.text.to]...)
	}
	if len(h.attempts) > 0 {
		b = append(b, "\n"+memberIndent...)
	}
	return append(b, ']')
}

// appendAttr appends a, a member of an object whose members are indented
// by indent, to b.
func (h *heldTarget) appendAttr(b []byte, indent string, a heldAttr) []byte {
	b = append(b, '\n')
	b = append(b, indent...)
	b = appendString(b, a.key)
	b = append(b, ": "...)
	v := h.bytes(a.value)
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
