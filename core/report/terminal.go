package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// safe returns s as it may be drawn on a terminal: as it is when it is
// valid UTF-8 and every character of it printable, else Go-quoted
// (strconv.Quote). What a run reports comes from servers and plugins (a
// certificate's subject and issuer, a failure message, an attribute): a
// control character in it (ESC sequences that clear the screen or set the
// window title, the C1 controls, a bidirectional override, a tab or line
// break that would forge a row) shows as an escape instead of acting. The
// table and the waterfall draw every string of a run through it.
func safe(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, notPrintable) {
		return s
	}
	return strconv.Quote(s)
}

func notPrintable(r rune) bool { return !strconv.IsPrint(r) }

// writeJSON writes the JSON encoding of v, indented by indent unless it is
// empty, and a newline to w, with DEL and the C1 controls (U+007F-U+009F)
// escaped as \u007f-\u009f: encoding/json escapes the C0 controls but
// leaves these as they are, and a terminal takes U+009B for ESC [ just the
// same. The escape is a JSON string's own, so the values decode unchanged.
func writeJSON(w io.Writer, v any, indent string) error {
	var b []byte
	var err error
	if indent != "" {
		b, err = json.MarshalIndent(v, "", indent)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(append(escapeC1(b), '\n'))
	return err
}

// escapeC1 returns b, JSON, with U+007F-U+009F escaped. Those bytes (0x7F,
// and 0xC2 0x80-0x9F in UTF-8) occur only within strings, as everything
// else in JSON is printable ASCII.
func escapeC1(b []byte) []byte {
	if bytes.IndexByte(b, 0x7f) < 0 && bytes.IndexByte(b, 0xc2) < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == 0x7f:
			out = append(out, `\u007f`...)
		case b[i] == 0xc2 && i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] <= 0x9f:
			out = fmt.Appendf(out, `\u%04x`, b[i+1])
			i++
		default:
			out = append(out, b[i])
		}
	}
	return out
}
