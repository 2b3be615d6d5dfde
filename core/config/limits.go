package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The limits of what a file may cost to read and parse (docs/language.md,
// "Limits"). HCL's parser, and the evaluation after it, recurse once per
// level of nesting, and Go cannot recover from an exhausted stack: a file
// nested deeper than maxNesting is refused before it is parsed. Parsing
// costs about 350 bytes of memory per token, so maxTokens bounds it (to
// about 700 MB); a for_each list of 100,000 names is 500,000 tokens.
const (
	// maxFileSize is the largest pipeline or variable file read, in bytes.
	maxFileSize = 8 << 20
	// maxTokens is the most tokens a file may have: names, numbers,
	// strings and string parts, operators, brackets and line ends.
	maxTokens = 2_000_000
	// maxNesting is how deeply a file may nest brackets, strings,
	// templates and operators.
	maxNesting = 128
	// maxNumber is the longest number literal, in characters: parsing a
	// number takes time quadratic in its digits.
	maxNumber = 1000
)

// sourceLimitError says where src goes past one of the source limits.
type sourceLimitError struct {
	summary, detail string
	pos             hcl.Pos
	line            []byte // the line of pos
}

// diagnostic returns the error as a diagnostic at its position in file.
func (e *sourceLimitError) diagnostic(file string) *hcl.Diagnostic {
	end := e.pos
	end.Byte++
	end.Column++
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: e.summary, Detail: e.detail,
		Subject: &hcl.Range{Filename: file, Start: e.pos, End: end}}
}

// ErrTooLarge is the error of ReadFile for a file larger than the most
// probe reads.
var ErrTooLarge = fmt.Errorf("larger than %d MiB, the most probe reads for a file", maxFileSize>>20)

// ReadFile reads the file at path as LoadFile does, refusing with
// ErrTooLarge one larger than the most probe reads: what names a device
// such as /dev/zero, or a pipe that never ends, is read no further.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxFileSize {
		return nil, ErrTooLarge
	}
	return src, nil
}

// readSource reads the file at path with ReadFile, as a diagnostic on
// error. what says what the file is for diagnostics ("pipeline file").
func readSource(path, what string) ([]byte, *hcl.Diagnostic) {
	src, err := ReadFile(path)
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, tooLarge(path, what)
	case err != nil:
		return nil, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Failed to read file",
			Detail: fmt.Sprintf("The %s %q could not be read: %s.", what, path, err)}
	}
	return src, nil
}

func tooLarge(name, what string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "File too large",
		Detail: fmt.Sprintf("The %s %q holds more than %d MiB, the most probe reads for a file.", what, name, maxFileSize>>20)}
}

// scanSource checks src, HCL native syntax starting at pos, against
// maxTokens, maxNesting and maxNumber before it is parsed. It follows the
// modes of HCL's scanner (code, quoted strings and their escapes, heredocs,
// comments, template interpolations and directives), and asks the scanner
// itself where it is unsure (where a "<<" opens a heredoc and a line closes
// one, how far a name with bytes outside ASCII goes), so that what it takes
// for a string or a comment is one for the parser too.
//
// A level is an open bracket, brace or parenthesis, string, heredoc,
// interpolation or template if/for; and, within one item of a list, object,
// call or block, each operator (+, ==, !, ?, ...) and each index or call
// that follows a term, since chains of those nest in the parsed
// expression. A comma, or a line end in a block or object, starts a new
// item.
func scanSource(src []byte, pos hcl.Pos) *sourceLimitError {
	s := &sourceScan{src: src, start: pos, frames: []frame{{kind: fBody}}}
	return s.scan()
}

// frame kinds.
const (
	fBody    = iota // the file, or an expression given alone
	fParen          // ( )
	fBrack          // [ ]
	fBrace          // { }
	fInterp         // ${ } or %{ }, in a template
	fQuote          // " "
	fHeredoc        // <<EOT ... EOT
)

// frame is one open level.
type frame struct {
	kind int
	ops  int    // operators and closed terms in the current item
	dirs int    // open template if/for directives (templates)
	mark []byte // the closing marker (heredocs)
	bol  bool   // at the start of a line (heredocs)
	// braces is the scanner's count of open braces when an interpolation
	// began (interpolations).
	braces int
}

// sourceScan is the state of scanSource.
type sourceScan struct {
	src    []byte
	start  hcl.Pos
	i      int
	tokens int
	depth  int // the body's ops, and 1+ops+dirs of every frame above it
	// open counts the openings not yet closed, each closing (of any kind)
	// closing one: how HCL's tokens nest however the brackets mismatch.
	open int
	// maxOpen is the most open, for FuzzScanSource to hold to HCL's tokens.
	maxOpen int
	frames  []frame
	// at is where the token being read starts; term, whether the last
	// token of code ended a term, which an index or a call may follow.
	at   int
	term bool
	// modes are the kinds of the open template and interpolation frames,
	// innermost last: what decides how HCL's scanner reads the next byte.
	modes  []int
	braces int // open braces, as HCL's scanner counts them
}

func (s *sourceScan) top() *frame { return &s.frames[len(s.frames)-1] }

func (s *sourceScan) scan() *sourceLimitError {
	for s.i < len(s.src) {
		mode := fBody
		if len(s.modes) > 0 {
			mode = s.modes[len(s.modes)-1]
		}
		var err *sourceLimitError
		switch mode {
		case fQuote:
			err = s.quoted()
		case fHeredoc:
			err = s.heredoc()
		default:
			err = s.code()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// token counts a token starting at the current byte.
func (s *sourceScan) token() *sourceLimitError { return s.countTokens(1) }

// textToken counts a token of a template that may end a run of text, and
// the run after it: a template's text is one token for HCL's scanner
// between such tokens.
func (s *sourceScan) textToken() *sourceLimitError { return s.countTokens(2) }

func (s *sourceScan) countTokens(n int) *sourceLimitError {
	s.tokens += n
	if s.tokens > maxTokens {
		return s.errorf("File too large", "The source has more than %d tokens (names, numbers, strings, operators, brackets and line ends), the most probe parses in one file.", maxTokens)
	}
	return nil
}

// push opens a level at the current byte.
func (s *sourceScan) push(f frame) *sourceLimitError {
	s.frames = append(s.frames, f)
	if isTemplate(f.kind) {
		s.modes = append(s.modes, f.kind)
	}
	s.depth++
	s.open++
	s.maxOpen = max(s.maxOpen, s.open)
	return s.checkDepth()
}

// close counts a closing token.
func (s *sourceScan) close() {
	s.open = max(s.open-1, 0)
}

// op counts an operator or a closed term in the current item of the
// innermost frame.
func (s *sourceScan) op() *sourceLimitError {
	s.top().ops++
	s.depth++
	return s.checkDepth()
}

// separate starts a new item in the innermost frame.
func (s *sourceScan) separate() {
	s.depth -= s.top().ops
	s.top().ops = 0
}

// pop closes the innermost frame.
func (s *sourceScan) pop() {
	f := s.top()
	s.depth -= 1 + f.ops + f.dirs
	if isTemplate(f.kind) {
		s.modes = s.modes[:len(s.modes)-1]
	}
	s.frames = s.frames[:len(s.frames)-1]
}

// popTo closes the innermost frame of kind and those within it, and
// reports whether there was one. It looks no further out than the
// innermost template or interpolation, unless kind is one.
func (s *sourceScan) popTo(kind int) bool {
	for i := len(s.frames) - 1; i > 0; i-- {
		k := s.frames[i].kind
		if k == kind {
			for len(s.frames) > i {
				s.pop()
			}
			return true
		}
		if isTemplate(k) {
			return false
		}
	}
	return false
}

func isTemplate(kind int) bool { return kind == fInterp || kind == fQuote || kind == fHeredoc }

func (s *sourceScan) checkDepth() *sourceLimitError {
	if level := max(s.depth, s.open); level > maxNesting {
		return s.errorf("Nesting too deep", "This opens level %d of nesting; probe parses at most %d levels of brackets, strings, templates and operators within one another.", level, maxNesting)
	}
	return nil
}

// code reads one token in code mode.
func (s *sourceScan) code() *sourceLimitError {
	src, i := s.src, s.i
	c, next := src[i], byte(0)
	if i+1 < len(src) {
		next = src[i+1]
	}
	s.at = i
	switch {
	case c == ' ' || c == '\t':
		s.i++
		return nil
	case c == '#' || c == '/' && next == '/':
		s.i = lineEnd(src, i) // the line end is a token of its own here
		return s.token()
	case c == '/' && next == '*':
		if end := bytes.Index(src[i+2:], []byte("*/")); end >= 0 {
			s.i = i + 2 + end + 2
			return s.token()
		} // else HCL reads "/" and "*" as operators
	case isIdentStart(c):
		s.term = true
		if end := identEnd(src, i); end == len(src) || src[end] < 0x80 {
			s.i = end
			return s.token()
		}
		return s.foreign()
	case c >= 0x80:
		s.term = true // a name, or an invalid token
		return s.foreign()
	}
	if err := s.token(); err != nil {
		return err
	}
	s.i++
	if c == '\n' || c == '\r' && next == '\n' {
		if c == '\r' {
			s.i++
		}
		if k := s.top().kind; k == fBody || k == fBrace {
			s.separate()
		}
		return nil // a line end does not end a term: (a \n [b]) indexes a
	}
	term := s.term
	s.term = false
	switch {
	case c == ',':
		s.separate()
	case c == '"':
		if err := s.textToken(); err != nil {
			return err
		}
		return s.push(frame{kind: fQuote})
	case c == '<' && next == '<':
		if mark, n := heredocStart(src[i:]); n > 0 {
			s.i = i + n
			if err := s.textToken(); err != nil {
				return err
			}
			return s.push(frame{kind: fHeredoc, mark: mark, bol: true})
		}
		return s.op()
	case c == '(' || c == '[':
		if term { // an index or a call of what came before, which nests it
			if err := s.op(); err != nil {
				return err
			}
		}
		if c == '(' {
			return s.push(frame{kind: fParen})
		}
		return s.push(frame{kind: fBrack})
	case c == '{':
		s.braces++
		return s.push(frame{kind: fBrace})
	case c == ')' || c == ']':
		s.close()
		kind := fParen
		if c == ']' {
			kind = fBrack
		}
		s.term = s.popTo(kind)
	case c == '}' || c == '~' && next == '}':
		if c == '~' {
			s.i++
		}
		s.close()
		if f := s.innerInterp(); f != nil && f.braces == s.braces {
			s.braces--
			s.popTo(fInterp)
			return s.textToken()
		}
		s.braces--
		s.term = s.popTo(fBrace)
	case c >= '0' && c <= '9':
		n := numberLen(src[i:])
		if n > maxNumber {
			return s.errorf("Number too long", "This number has %d characters; probe parses numbers of at most %d.", n, maxNumber)
		}
		s.i = i + n
		s.term = true
	case c == '=' && next == '=':
		s.i++
		return s.op()
	case bytes.IndexByte([]byte("+-*/%!<>?&|"), c) >= 0:
		if next == '=' && (c == '!' || c == '<' || c == '>') || c == '&' && next == '&' || c == '|' && next == '|' {
			s.i++
		}
		return s.op()
	}
	return nil // = . : ; and anything else open no level
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// innerInterp returns the innermost interpolation frame, if the innermost
// template or interpolation frame is one.
func (s *sourceScan) innerInterp() *frame {
	for i := len(s.frames) - 1; i > 0; i-- {
		if k := s.frames[i].kind; isTemplate(k) {
			if k == fInterp {
				return &s.frames[i]
			}
			return nil
		}
	}
	return nil
}

// text reads one byte or sequence of a template's text: an interpolation
// or directive opens a level, "$${" and "%%{" are text.
func (s *sourceScan) text() *sourceLimitError {
	src, i := s.src, s.i
	c := src[i]
	switch {
	case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
		s.i += 2
		if err := s.textToken(); err != nil {
			return err
		}
		if c == '%' {
			if err := s.directive(); err != nil {
				return err
			}
		}
		s.braces++
		return s.push(frame{kind: fInterp, braces: s.braces})
	case (c == '$' || c == '%') && i+2 < len(src) && src[i+1] == c && src[i+2] == '{':
		s.i += 3
		return s.textToken()
	case c == '$' || c == '%' || c == '\n' || c == '\r':
		s.i++
		return s.textToken()
	case c >= 0x80:
		r, n := utf8.DecodeRune(src[i:])
		s.i += n
		if r == utf8.RuneError && n == 1 {
			return s.textToken() // a token of its own for HCL's scanner
		}
		return nil
	}
	s.i++
	return nil
}

// directive counts the template if or for that a "%{" at s.i opens as a
// level of the template it is in, and an endif or endfor as closing one.
func (s *sourceScan) directive() *sourceLimitError {
	j := s.i
	for j < len(s.src) && (s.src[j] == '~' || s.src[j] == ' ' || s.src[j] == '\t') {
		j++
	}
	k := j
	for k < len(s.src) && isIdentStart(s.src[k]) {
		k++
	}
	tmpl := s.top() // the quote or heredoc the directive is in
	switch string(s.src[j:k]) {
	case "if", "for":
		tmpl.dirs++
		s.depth++
		return s.checkDepth()
	case "endif", "endfor":
		if tmpl.dirs > 0 {
			tmpl.dirs--
			s.depth--
		}
	}
	return nil
}

// quoted reads one byte or sequence of a quoted string.
func (s *sourceScan) quoted() *sourceLimitError {
	src, i := s.src, s.i
	s.at = i
	switch c := src[i]; c {
	case '"':
		s.i++
		s.close()
		s.pop()
		s.term = true
		return s.token()
	case '\\':
		s.i++
		if s.i < len(src) && src[s.i] != '\n' && src[s.i] != '\r' {
			if r, n := utf8.DecodeRune(src[s.i:]); r != utf8.RuneError || n > 1 {
				s.i += n // an escaped character
				return nil
			}
		}
		return s.textToken() // a backslash alone is a token of its own
	}
	return s.text()
}

// heredoc reads one byte or sequence of a heredoc, or its closing line.
func (s *sourceScan) heredoc() *sourceLimitError {
	src, i, f := s.src, s.i, s.top()
	s.at = i
	if f.bol {
		f.bol = false
		if end := bytes.IndexByte(src[i:], '\n'); end >= 0 {
			if n := heredocEnds(src[i:i+end+1], f.mark); n > 0 {
				s.i += end // the line end is the code's
				s.close()
				s.pop()
				s.term = true
				return s.countTokens(n)
			}
		}
	}
	f.bol = src[i] == '\n'
	return s.text()
}

// heredocStart returns the marker of the heredoc that src opens, and the
// length of its opening line, or 0 when "<<" at the start of src opens
// none. HCL's scanner confirms, since which bytes it takes into a name
// depends on its tables of Unicode letters.
func heredocStart(src []byte) (mark []byte, n int) {
	j := 2
	if j < len(src) && src[j] == '-' {
		j++
	}
	m := identLen(src[j:])
	end := j + m
	if end < len(src) && src[end] == '\r' {
		end++
	}
	if m == 0 || end >= len(src) || src[end] != '\n' {
		return nil, 0
	}
	toks, _ := hclsyntax.LexConfig(src[:end+1], "", hcl.InitialPos)
	if toks[0].Type != hclsyntax.TokenOHeredoc {
		return nil, 0
	}
	return src[j : j+m], end + 1
}

// heredocEnds returns, when line, at the start of a line of a heredoc with
// marker mark, closes it as HCL's scanner reads it, how many tokens the
// scanner makes of it up to the closing marker (a bad UTF-8 byte before
// the marker is one each); 0 when it does not close it. line ends with its
// line end.
func heredocEnds(line, mark []byte) int {
	if !bytes.Contains(line, mark) {
		return 0
	}
	doc := append(append(append([]byte("<<"), mark...), '\n'), line...)
	toks, _ := hclsyntax.LexConfig(doc, "", hcl.InitialPos)
	for i, t := range toks[1:] {
		if t.Type != hclsyntax.TokenBadUTF8 {
			if t.Type == hclsyntax.TokenCHeredoc {
				return i + 1
			}
			return 0
		}
	}
	return 0
}

// identEnd returns the end of the ASCII letters, digits, underscores and
// dashes from src[i].
func identEnd(src []byte, i int) int {
	for i < len(src) && isIdentPart(src[i]) {
		i++
	}
	return i
}

// identLen returns the length of the name at the start of src, 0 if it
// starts none.
func identLen(src []byte) int {
	n := 0
	if len(src) > 0 && isIdentStart(src[0]) {
		n = identEnd(src, 0)
	}
	if n < len(src) && src[n] >= 0x80 {
		if typ, l := firstToken(src); typ == hclsyntax.TokenIdent {
			return l
		}
	}
	return n
}

// firstToken returns the type and length of the first token HCL's scanner
// reads at the start of src, in code mode.
func firstToken(src []byte) (hclsyntax.TokenType, int) {
	for w := 64; ; w *= 2 {
		w = min(w, len(src))
		toks := lexWindow(src[:w])
		end := toks[0].Range.End.Byte - 1
		if end+utf8.UTFMax < w || w == len(src) {
			return toks[0].Type, end
		}
	}
}

// lexWindow lexes src, in code mode, after a space: so that a byte order
// mark at its start is a token as elsewhere, not the file's mark, which
// HCL's scanner drops. Ranges count the space.
func lexWindow(src []byte) hclsyntax.Tokens {
	toks, _ := hclsyntax.LexConfig(append([]byte{' '}, src...), "", hcl.InitialPos)
	return toks
}

// foreign reads, at a byte outside ASCII in code mode, the names and
// invalid tokens HCL's scanner reads from there: its tables of letters
// take some bytes into names that are no part of a UTF-8 letter, even a
// quote.
func (s *sourceScan) foreign() *sourceLimitError {
	for w := 4096; ; w *= 2 {
		w = min(w, len(s.src)-s.i)
		read := 0
		for _, t := range lexWindow(s.src[s.i : s.i+w]) {
			end := t.Range.End.Byte - 1
			if t.Type != hclsyntax.TokenIdent && t.Type != hclsyntax.TokenInvalid && t.Type != hclsyntax.TokenBadUTF8 ||
				end+utf8.UTFMax >= w && s.i+w < len(s.src) {
				break
			}
			if err := s.token(); err != nil {
				return err
			}
			read = end
		}
		if read > 0 {
			s.i += read
			return nil
		}
		if s.i+w == len(s.src) { // not so: HCL reads a name or an invalid token here
			s.i++
			return s.token()
		}
	}
}

// isIdentStart reports whether c starts a name in ASCII.
func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

// isIdentPart reports whether c continues a name in ASCII.
func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '-' }

// numberLen returns the length of the number literal at the start of src,
// as HCL reads one: digits, a fraction, an exponent.
func numberLen(src []byte) int {
	// HCL's scanner (scan_tokens.rl): a digit, then any run of digits, dots
	// and exponents ("e", an optional sign, a digit) that does not end in a
	// dot: "0e0e0" and "1..2" are one number each.
	n, last := 1, 1
	for n < len(src) {
		switch c := src[n]; {
		case isDigit(c):
			n++
			last = n
		case c == '.':
			n++
		case c == 'e' || c == 'E':
			j := n + 1
			if j < len(src) && (src[j] == '+' || src[j] == '-') {
				j++
			}
			if j >= len(src) || !isDigit(src[j]) {
				return last
			}
			n = j + 1
			last = n
		default:
			return last
		}
	}
	return last
}

// lineEnd returns the index of the line end at or after i, or len(src).
func lineEnd(src []byte, i int) int {
	for ; i < len(src); i++ {
		if src[i] == '\n' || src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n' {
			return i
		}
	}
	return i
}

// errorf returns an error at the current byte.
func (s *sourceScan) errorf(summary, format string, args ...any) *sourceLimitError {
	pos, lineStart := s.start, 0
	for j, c := range s.src[:s.at] {
		if c == '\n' {
			pos.Line++
			pos.Column = 1
			lineStart = j + 1
		}
	}
	pos.Column += utf8.RuneCount(s.src[lineStart:s.at])
	pos.Byte += s.at
	return &sourceLimitError{summary: summary, detail: printer.Sprintf(format, args...), pos: pos,
		line: s.src[lineStart:lineEnd(s.src, lineStart)]}
}

// checkSource checks a file's source against the source limits before it
// is parsed; the diagnostic it returns shows the line at fault when that
// line is short enough to print.
func (l *Loader) checkSource(name string, src []byte, what string) *hcl.Diagnostic {
	if len(src) > maxFileSize {
		return tooLarge(name, what)
	}
	err := scanSource(src, hcl.InitialPos)
	if err == nil {
		return nil
	}
	diag := err.diagnostic(name)
	if len(err.line) <= 300 {
		l.parser.AddFile(name, &hcl.File{Bytes: src})
	} else {
		diag.Detail += printer.Sprintf(" (The line is too long to show: this is column %d.)", err.pos.Column)
	}
	return diag
}
