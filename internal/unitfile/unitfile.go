// Package unitfile reads files in systemd's unit-file syntax (the syntax of
// .service, .network and .nspawn files) and keeps the line number of every
// section and entry, so that callers can report "file:line: key" errors.
//
// Values are parsed by go-systemd's unit package; this package adds line
// numbers and rejects the lines that package skips silently (text before the
// first section, lines that are neither a section, a comment nor KEY=VALUE).
package unitfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/unit"
)

// An Entry is one KEY=VALUE assignment.
type Entry struct {
	Key   string
	Value string
	Line  int // 1-based line of the key
}

// A Section is a [Name] header and the entries under it.
type Section struct {
	Name    string
	Line    int // 1-based line of the header
	Entries []Entry
}

// An Error is a syntax error at a line of the input.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// MaxSize bounds the input: go-systemd's lexer is quadratic in the length of
// whitespace runs, and no config file of ours needs more.
const MaxSize = 64 << 10

// Parse reads a whole unit-syntax document. Repeated sections are returned
// in order, as separate Sections.
func Parse(data []byte) ([]Section, error) {
	if len(data) > MaxSize {
		return nil, &Error{Line: 1, Msg: fmt.Sprintf("file larger than %d KiB", MaxSize>>10)}
	}
	shape, err := scan(data)
	if err != nil {
		return nil, err
	}
	parsed, err := unit.DeserializeSections(bytes.NewReader(data))
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// The lexer reads past the end after a continued value in a
		// CRLF file without a final newline, and says only "EOF".
		return nil, &Error{Line: lineCount(data), Msg: "unexpected end of file after a continued value"}
	}
	if err != nil {
		return nil, &Error{Line: lineCount(data), Msg: err.Error()}
	}
	// scan and the unit lexer walk the same lines, so they agree on the
	// number of sections and entries; a mismatch means input we do not
	// understand, reported rather than guessed at.
	if len(parsed) != len(shape) {
		return nil, &Error{Line: 1, Msg: "unparsable file"}
	}
	out := make([]Section, len(parsed))
	for i, ps := range parsed {
		s := shape[i]
		if len(ps.Entries) != len(s.Entries) || ps.Section != s.Name {
			return nil, &Error{Line: s.Line, Msg: "unparsable section"}
		}
		for j, e := range ps.Entries {
			s.Entries[j].Value = joinContinued(e.Value)
		}
		out[i] = s
	}
	return out, nil
}

// scan finds sections and keys with their line numbers, following the
// lexer of go-systemd's unit package: comments start with '#' or ';', a
// value or a comment ending in a backslash continues on the next line.
func scan(data []byte) ([]Section, error) {
	var (
		sections []Section
		cont     bool // the previous line continues on this one
		n        int
	)
	for len(data) > 0 {
		n++
		// As go-systemd's lexer reads lines: a line ending in "\r\n"
		// keeps its '\r' (so "\\\r\n" continues nothing); only the last
		// line, without '\n', loses it.
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = bytes.TrimSuffix(data, []byte{'\r'}), nil
		}
		if len(line) > unit.SYSTEMD_LINE_MAX {
			return nil, &Error{Line: n, Msg: unit.ErrLineTooLong.Error()}
		}
		if cont {
			// A blank line ends a continued value.
			cont = len(bytes.TrimSpace(line)) != 0 && bytes.HasSuffix(line, []byte{'\\'})
			continue
		}
		t := bytes.TrimLeft(line, " \t\v\f\r")
		switch {
		case len(t) == 0:
		case t[0] == '#' || t[0] == ';':
			cont = bytes.HasSuffix(bytes.TrimRight(t, " "), []byte{'\\'})
		case t[0] == '[':
			end := bytes.IndexByte(t, ']')
			if end < 0 {
				return nil, &Error{Line: n, Msg: "section header without ']'"}
			}
			if rest := bytes.TrimSpace(t[end+1:]); len(rest) > 0 {
				return nil, &Error{Line: n, Msg: fmt.Sprintf("text after section header: %q", rest)}
			}
			name := string(t[1:end])
			if name == "" || strings.ContainsAny(name, "[]") || !printable(name) {
				return nil, &Error{Line: n, Msg: fmt.Sprintf("bad section name %q", name)}
			}
			sections = append(sections, Section{Name: name, Line: n})
		default:
			eq := bytes.IndexByte(t, '=')
			if eq < 0 {
				return nil, &Error{Line: n, Msg: fmt.Sprintf("expected KEY=VALUE, got %q", t)}
			}
			key := string(bytes.TrimSpace(t[:eq]))
			if key == "" {
				return nil, &Error{Line: n, Msg: "empty key"}
			}
			if !printable(key) {
				return nil, &Error{Line: n, Msg: fmt.Sprintf("bad key %q", key)}
			}
			if len(sections) == 0 {
				return nil, &Error{Line: n, Msg: fmt.Sprintf("%s= before any [section]", key)}
			}
			s := &sections[len(sections)-1]
			s.Entries = append(s.Entries, Entry{Key: key, Line: n})
			cont = len(bytes.TrimSpace(t[eq+1:])) != 0 && bytes.HasSuffix(t, []byte{'\\'})
		}
	}
	return sections, nil
}

// printable reports whether s is valid UTF-8 without control characters:
// names that messages can show as they are, without a stray carriage
// return or escape sequence reaching a terminal or a log.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// ParseBool parses a boolean value with the spellings systemd takes.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (yes or no)", v)
}

// joinContinued turns a value continued over several lines into one line,
// as systemd reads it: each backslash-newline, with the indentation after
// it, becomes a space.
func joinContinued(v string) string {
	if !strings.Contains(v, "\\\n") {
		return v
	}
	var b strings.Builder
	for {
		i := strings.Index(v, "\\\n")
		if i < 0 {
			b.WriteString(v)
			return b.String()
		}
		b.WriteString(v[:i])
		b.WriteByte(' ')
		v = strings.TrimLeft(v[i+2:], " \t")
	}
}

func lineCount(data []byte) int {
	return bytes.Count(data, []byte{'\n'}) + 1
}
