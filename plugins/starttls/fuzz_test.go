package starttls

import (
	"bufio"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
)

// FuzzDialogue feeds any bytes to each protocol's dialogue as the server's
// side of the connection: it never panics, ends with the go-ahead or a
// failure of a known class, and what it reports of the server's lines is
// sanitized (printable ASCII, at most 200 bytes and an ellipsis).
func FuzzDialogue(f *testing.F) {
	names := []string{"smtp", "imap", "pop3", "postgres"}
	f.Add(uint8(0), []byte("220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n220 go ahead\r\n"))
	f.Add(uint8(0), []byte("220-a\r\n220 b\r\n250 mx\r\n"))
	f.Add(uint8(0), []byte("554 no\r\n"))
	f.Add(uint8(1), []byte("* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n* BYE\r\na1 OK go\r\n"))
	f.Add(uint8(1), []byte("* OK [CAPABILITY\r\na1 BAD\r\n"))
	f.Add(uint8(2), []byte("+OK hi\r\n+OK go\r\n"))
	f.Add(uint8(3), []byte("S"))
	f.Add(uint8(3), []byte("N"))
	classes := []string{"", string(ClassUnsupported), string(ClassRefused), string(ClassProtocol)}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := names[int(which)%len(names)]
		s := &session{r: bufio.NewReader(io.LimitReader(bytes.NewReader(data), maxRead)), w: io.Discard, ehlo: "[127.0.0.1]"}
		ex := protocols[name](s)
		if ex.err == nil && ex.reply == "" {
			t.Fatalf("%s: a go-ahead with no reply", name)
		}
		if ex.err == nil && ex.class != "" || !slices.Contains(classes, string(ex.class)) {
			t.Fatalf("%s: error %v with class %q", name, ex.err, ex.class)
		}
		for _, line := range []string{ex.greeting, ex.reply} {
			if len(strings.TrimSuffix(line, "...")) > 200*4 || strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r > '~' }) {
				t.Fatalf("%s: line %q not sanitized", name, line)
			}
		}
	})
}
