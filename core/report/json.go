// Package report renders runs: a table for people, a waterfall of phases
// per attempt, one JSON document, a JSON line per attempt, the Prometheus
// text format, and the metrics `probe serve` exposes. Each output is a sink
// (core/sink) of the engine's stream of attempts, which the engine has
// redacted: nothing here redacts, and nothing here may show what it was not
// given. The JSON field names are a public contract (DESIGN §6).
package report

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/stats"
)

// Document is the -o json output.
type Document struct {
	File string `json:"file"`
	// Vantage names where the run was probed from; absent when unnamed.
	Vantage     string                 `json:"vantage,omitempty"`
	StartedAt   time.Time              `json:"started_at"`
	DurationMS  float64                `json:"duration_ms"`
	Interrupted bool                   `json:"interrupted"`
	Targets     []TargetJSON           `json:"targets"`
	Stats       map[string]SummaryJSON `json:"stats"`
	Summary     SummaryCountsJSON      `json:"summary"`
}

// TargetJSON is one target in a Document.
type TargetJSON struct {
	Name        string `json:"name"`
	Host        string `json:"host"`
	Port        uint16 `json:"port"`
	Pipeline    string `json:"pipeline"`
	OK          bool   `json:"ok"`
	Interrupted bool   `json:"interrupted"`
	// Facts holds, by phase name, the attributes whose value is the same
	// in every attempt of the target in which the phase ran, which its
	// attempts' attrs leave out: a phase's attributes are Facts[phase]
	// overlaid by its Attrs (Document.Expand). A phase with none is absent.
	Facts           map[string]map[string]any `json:"facts"`
	Attempts        []AttemptJSON             `json:"attempts"`
	Stats           map[string]SummaryJSON    `json:"stats"`
	FailuresByClass map[sdk.Class]int         `json:"failures_by_class"`
	// ByAddress breaks the target down by the address its attempts dialed,
	// under address_policy "all" only.
	ByAddress []AddressJSON `json:"by_address,omitempty"`
}

// AddressJSON is what a target's attempts at one address measured; Address
// is null for attempts that failed before they had one.
type AddressJSON struct {
	Address         *string                `json:"address"`
	OK              bool                   `json:"ok"`
	Stats           map[string]SummaryJSON `json:"stats"`
	FailuresByClass map[sdk.Class]int      `json:"failures_by_class"`
}

// AttemptJSON is one attempt. In -o jsonl, Target names its target and
// Vantage where it was probed from (absent when unnamed).
type AttemptJSON struct {
	Target     string       `json:"target,omitempty"`
	Vantage    string       `json:"vantage,omitempty"`
	Seq        int          `json:"seq"`
	OK         bool         `json:"ok"`
	StartedAt  time.Time    `json:"started_at"`
	Address    *string      `json:"address"`
	TotalMS    float64      `json:"total_ms"`
	OverheadMS float64      `json:"overhead_ms"`
	Phases     []PhaseJSON  `json:"phases"`
	Failure    *FailureJSON `json:"failure"`
}

// PhaseJSON is one phase of an attempt. In a Document, Attrs leaves out
// its target's Facts; in -o jsonl it has every attribute.
type PhaseJSON struct {
	Phase      string         `json:"phase"`
	Plugin     string         `json:"plugin"`
	StartMS    float64        `json:"start_ms"`
	DurationMS float64        `json:"duration_ms"`
	OK         bool           `json:"ok"`
	Attrs      map[string]any `json:"attrs"`
}

// FailureJSON says why an attempt failed.
type FailureJSON struct {
	Phase   string    `json:"phase"`
	Class   sdk.Class `json:"class"`
	Message string    `json:"message"`
}

// SummaryJSON is the statistics of one phase; timings cover successful
// samples only.
type SummaryJSON struct {
	Count    int     `json:"count"`
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	MinMS    float64 `json:"min_ms"`
	MeanMS   float64 `json:"mean_ms"`
	StddevMS float64 `json:"stddev_ms"`
	P50MS    float64 `json:"p50_ms"`
	P90MS    float64 `json:"p90_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// SummaryCountsJSON counts a run's targets (targets = ok + failed +
// interrupted) and says how long the process waited to be scheduled while
// it ran.
type SummaryCountsJSON struct {
	Targets         int               `json:"targets"`
	OK              int               `json:"ok"`
	Failed          int               `json:"failed"`
	Interrupted     int               `json:"interrupted"`
	FailuresByClass map[sdk.Class]int `json:"failures_by_class"`
	SchedLatency    SchedLatencyJSON  `json:"sched_latency"`
}

// SchedLatencyJSON is the process's scheduling delay during the run
// (engine.SchedLatency); Distorted is true when it was long enough to
// distort the timings.
type SchedLatencyJSON struct {
	Samples   uint64  `json:"samples"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
	MaxMS     float64 `json:"max_ms"`
	WaitMS    float64 `json:"wait_ms"`
	WaitShare float64 `json:"wait_share"`
	Distorted bool    `json:"distorted"`
}

// jsonMS converts d to milliseconds rounded to the microsecond, as the JSON
// contract gives times.
func jsonMS(d time.Duration) float64 { return sdk.Milliseconds(d.Round(time.Microsecond)) }

// NewDocument converts a run result for file into its JSON form.
func NewDocument(file string, res *engine.Result) (*Document, error) {
	doc := &Document{
		File:        file,
		StartedAt:   res.Started.UTC(),
		DurationMS:  jsonMS(res.Duration),
		Interrupted: res.Interrupted,
		Targets:     make([]TargetJSON, 0, len(res.Targets)),
		Stats:       summaries(res.Stats),
		Summary:     summaryJSON(res),
	}
	for _, tr := range res.Targets {
		t, err := NewTarget(tr)
		if err != nil {
			return nil, err
		}
		doc.Targets = append(doc.Targets, t)
	}
	return doc, nil
}

// NewTarget converts one target's result into its JSON form, its facts
// stated once.
func NewTarget(tr *engine.TargetResult) (TargetJSON, error) {
	t := targetJSON(tr)
	var h heldTarget
	for i := range tr.Attempts {
		if err := h.add(&tr.Attempts[i]); err != nil {
			return t, err
		}
		t.Attempts = append(t.Attempts, NewAttempt(&tr.Attempts[i]))
	}
	splitFacts(&t, h.facts())
	return t, nil
}

// targetJSON is the JSON form of tr, with neither facts nor attempts.
func targetJSON(tr *engine.TargetResult) TargetJSON {
	t := TargetJSON{
		Name: tr.Target.Name, Host: tr.Target.Host, Port: tr.Target.Port,
		OK: tr.OK, Interrupted: tr.Interrupted, Facts: map[string]map[string]any{}, Attempts: []AttemptJSON{},
		Stats: summaries(tr.Stats), FailuresByClass: nonNil(tr.FailuresByClass),
	}
	if tr.Target.Pipeline != nil {
		t.Pipeline = tr.Target.Pipeline.Name
	}
	for _, ar := range tr.ByAddress {
		t.ByAddress = append(t.ByAddress, AddressJSON{Address: addrJSON(ar.Address), OK: ar.OK,
			Stats: summaries(ar.Stats), FailuresByClass: nonNil(ar.FailuresByClass)})
	}
	return t
}

func summaryJSON(res *engine.Result) SummaryCountsJSON {
	return SummaryCountsJSON{Targets: res.Summary.Targets, OK: res.Summary.OK, Failed: res.Summary.Failed,
		Interrupted: res.Summary.Interrupted, FailuresByClass: nonNil(res.Summary.FailuresByClass),
		SchedLatency: schedLatencyJSON(res.SchedLatency)}
}

// NewAttempt converts one attempt into its JSON form.
func NewAttempt(a *engine.Attempt) AttemptJSON {
	out := AttemptJSON{
		Seq: a.Seq, OK: a.OK, StartedAt: a.Started.UTC(),
		TotalMS: jsonMS(a.Total), OverheadMS: jsonMS(a.Overhead),
		Phases: make([]PhaseJSON, 0, len(a.Phases)),
	}
	out.Address = addrJSON(a.Address)
	for _, p := range a.Phases {
		attrs := p.Attrs
		if attrs == nil {
			attrs = map[string]any{}
		}
		out.Phases = append(out.Phases, PhaseJSON{Phase: p.Name, Plugin: p.Plugin, StartMS: jsonMS(p.Start),
			DurationMS: jsonMS(p.Duration), OK: p.OK, Attrs: attrs})
	}
	if f := a.Failure; f != nil {
		out.Failure = &FailureJSON{Phase: f.Phase, Class: f.Class, Message: f.Message}
	}
	return out
}

// addrJSON is addr as a string, nil when it is not valid.
func addrJSON(addr netip.AddrPort) *string {
	if !addr.IsValid() {
		return nil
	}
	s := addr.String()
	return &s
}

func summaries(in map[string]stats.Summary) map[string]SummaryJSON {
	out := make(map[string]SummaryJSON, len(in))
	for name, s := range in {
		out[name] = SummaryJSON{Count: s.Count, OK: s.OK, Failed: s.Failed,
			MinMS: jsonMS(s.Min), MeanMS: jsonMS(s.Mean), StddevMS: jsonMS(s.Stddev),
			P50MS: jsonMS(s.P50), P90MS: jsonMS(s.P90), P99MS: jsonMS(s.P99), MaxMS: jsonMS(s.Max)}
	}
	return out
}

func schedLatencyJSON(s engine.SchedLatency) SchedLatencyJSON {
	return SchedLatencyJSON{Samples: s.Samples, P50MS: jsonMS(s.P50), P99MS: jsonMS(s.P99), MaxMS: jsonMS(s.Max),
		WaitMS: jsonMS(s.Wait), WaitShare: math.Round(s.WaitShare*1e3) / 1e3, Distorted: s.Distorted}
}

func nonNil(m map[sdk.Class]int) map[sdk.Class]int {
	if m == nil {
		return map[sdk.Class]int{}
	}
	return m
}

// JSON writes the whole run as one indented JSON document, as the sink of
// -o json (NewJSONDocument) writes it.
func JSON(w io.Writer, file string, res *engine.Result) error {
	d := NewJSONDocument(w, file, "")
	for i, tr := range res.Targets {
		if err := d.Target(i, tr); err != nil {
			return err
		}
	}
	return d.Close(res)
}

// JSONDocument is the sink of -o json: it writes the run as one indented
// Document as the run goes, each attempt encoded as it finishes (its
// attributes' values apart) and each target written as soon as it is done
// and those before it are written, its facts found by comparing its
// attempts' encoded attributes, so that a run holds the encoded attempts
// of the targets not yet written, not every attempt whole to its end, and
// encodes while it probes. Its
// members are in the order of the Document's fields, but for the run's
// own (started_at, duration_ms, interrupted), which its end sets: they
// follow the targets, before the stats and the summary. It takes each
// target's result from the engine as it is done (sink.TargetSink), and
// reads no target from the run's result, nor any attempt from a target's
// result but those it was not given one by one.
type JSONDocument struct {
	mu   sync.Mutex
	w    *bufio.Writer
	head docHead
	// attempts holds the encoded attempts of the targets not yet done, by
	// their place in the run.
	attempts map[int]*heldTarget
	// next is the place of the next target to write; ready holds the
	// encoding of those done ahead of it, by their place.
	next  int
	ready map[int][]byte
	err   error // the first error writing
}

// docHead is the part of a Document written before its targets.
type docHead struct {
	File    string `json:"file"`
	Vantage string `json:"vantage,omitempty"`
}

// docTail is the part of a Document written after its targets.
type docTail struct {
	StartedAt   time.Time              `json:"started_at"`
	DurationMS  float64                `json:"duration_ms"`
	Interrupted bool                   `json:"interrupted"`
	Stats       map[string]SummaryJSON `json:"stats"`
	Summary     SummaryCountsJSON      `json:"summary"`
}

// NewJSONDocument returns a sink writing the document of a run of the
// pipeline file named file to w, with the vantage when it is not empty.
func NewJSONDocument(w io.Writer, file, vantage string) *JSONDocument {
	return &JSONDocument{w: bufio.NewWriter(w), head: docHead{File: file, Vantage: vantage},
		attempts: map[int]*heldTarget{}, ready: map[int][]byte{}}
}

// Indentation of the document's members, as MarshalIndent of the whole
// document has it: an element of the targets array, of a target's
// attempts array, and a target's members.
const (
	targetIndent  = "    "
	attemptIndent = "        "
	memberIndent  = "      "
)

// attemptsMark is where an indented target with neither facts nor
// attempts holds them; a newline never occurs within a JSON string, so it
// occurs once.
const attemptsMark = "\n" + memberIndent + "\"facts\": {},\n" + memberIndent + "\"attempts\": []"

// Attempt encodes a and holds it for its target.
func (d *JSONDocument) Attempt(a *engine.Attempt) error {
	d.mu.Lock()
	h := d.attempts[a.Place]
	if h == nil {
		h = &heldTarget{}
		d.attempts[a.Place] = h
	}
	d.mu.Unlock()
	// Only this target's attempts add to h, one at a time, and its
	// Target call comes after them.
	return h.add(a)
}

// Target encodes the run's i-th target with its facts and the attempts
// Attempt encoded (or, when it had none of them, those of tr), and writes
// it, and whatever it held up, once the targets before it are written.
// Targets encode in parallel, on the goroutines that probed them.
func (d *JSONDocument) Target(i int, tr *engine.TargetResult) error {
	d.mu.Lock()
	h := d.attempts[i]
	delete(d.attempts, i)
	d.mu.Unlock()
	if h == nil {
		h = &heldTarget{}
		for k := range tr.Attempts {
			if err := h.add(&tr.Attempts[k]); err != nil {
				return err
			}
		}
	}
	t := targetJSON(tr)
	b, err := json.MarshalIndent(&t, targetIndent, "  ")
	if err != nil {
		return fmt.Errorf("target %q: %w", tr.Target.Name, err)
	}
	at := bytes.Index(b, []byte(attemptsMark))
	if at < 0 {
		return fmt.Errorf("target %q: no %q in its encoding", tr.Target.Name, attemptsMark)
	}
	elem := make([]byte, 0, len(b)+h.size+h.size/4)
	elem = append(elem, b[:at]...)
	elem = h.appendFacts(elem, h.facts())
	elem = escapeC1(append(elem, b[at+len(attemptsMark):]...))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ready[i] = elem
	for {
		b, ok := d.ready[d.next]
		if !ok {
			break
		}
		delete(d.ready, d.next)
		if d.next == 0 {
			d.writeHead()
		} else {
			d.w.WriteByte(',')
		}
		d.w.WriteString("\n" + targetIndent)
		d.w.Write(b)
		d.next++
	}
	return d.err
}

// writeHead writes the document up to its first target.
func (d *JSONDocument) writeHead() {
	b, err := json.MarshalIndent(&d.head, "", "  ")
	if err != nil {
		d.err = cmp.Or(d.err, err)
		return
	}
	d.w.Write(escapeC1(b[:len(b)-len("\n}")]))
	d.w.WriteString(",\n  \"targets\": [")
}

// Flush writes out what the document holds written, so that a reader
// sees the targets done so far.
func (d *JSONDocument) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return cmp.Or(d.err, d.w.Flush())
}

// Close ends the document with the run's own fields, from res: its
// targets are written already, every one done. A nil res (a stream of a
// schedule) writes nothing.
func (d *JSONDocument) Close(res *engine.Result) error {
	if res == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.ready) > 0 {
		return fmt.Errorf("json document: %d targets done after target %d, which never was", len(d.ready), d.next)
	}
	if d.next == 0 {
		d.writeHead()
		d.w.WriteString("]")
	} else {
		d.w.WriteString("\n  ]")
	}
	tail := docTail{StartedAt: res.Started.UTC(), DurationMS: jsonMS(res.Duration), Interrupted: res.Interrupted,
		Stats: summaries(res.Stats), Summary: summaryJSON(res)}
	b, err := json.MarshalIndent(&tail, "", "  ")
	if err != nil {
		return cmp.Or(d.err, err)
	}
	d.w.WriteByte(',')
	d.w.Write(escapeC1(b[len("{"):]))
	d.w.WriteByte('\n')
	return cmp.Or(d.err, d.w.Flush())
}

// JSONLines is the sink of -o jsonl: it writes each attempt as a JSON line
// as it comes, and needs no attempt in the result.
type JSONLines struct {
	w       io.Writer
	vantage string
}

// NewJSONLines returns a sink writing lines to w, each with the vantage
// when it is not empty.
func NewJSONLines(w io.Writer, vantage string) *JSONLines {
	return &JSONLines{w: w, vantage: vantage}
}

// Attempt writes a as a line, with its target's name, in one write.
func (j *JSONLines) Attempt(a *engine.Attempt) error {
	line := NewAttempt(a)
	line.Target = a.Target
	line.Vantage = j.vantage
	return writeJSON(j.w, line, "")
}

// Flush does nothing: each line is written as it comes.
func (j *JSONLines) Flush() error { return nil }

// Close does nothing: the lines are written.
func (j *JSONLines) Close(*engine.Result) error { return nil }
