// Package unitfile reads files in systemd's unit-file syntax (the syntax of
// .service, .network and .nspawn files) and keeps the line number of every
// section and entry, so that callers can report "file:line: key" errors.
//
// It is the project's one reader of that syntax. Lines starting with '#'
// or ';' are comments; a value or a comment ending in a backslash continues
// on the next line (a blank line ends it), and the backslash becomes a
// space. Unlike go-systemd's lexer, it rejects what it does not understand
// (text before the first section, a line that is neither a section, a
// comment nor KEY=VALUE) rather than skipping it, and a CRLF line ending is
// an ending like LF.
package unitfile

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
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

// MaxSize bounds the input: no config file of ours needs more.
const MaxSize = 64 << 10

// MaxLine is the longest line systemd reads whole (its LINE_MAX).
const MaxLine = 2048

// Parse reads a whole unit-syntax document. Repeated sections are returned
// in order, as separate Sections.
func Parse(data []byte) ([]Section, error) {
	if len(data) > MaxSize {
		return nil, &Error{Line: 1, Msg: fmt.Sprintf("file larger than %d KiB", MaxSize>>10)}
	}
	var (
		sections []Section
		n        int
		// value is the entry whose value continues on the next line,
		// comment a comment that does; at most one is set.
		value   *Entry
		comment bool
	)
	for len(data) > 0 {
		n++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > MaxLine {
			return nil, &Error{Line: n, Msg: fmt.Sprintf("line too long (max %d bytes)", MaxLine)}
		}
		if value != nil {
			// A blank line ends a continued value.
			if len(bytes.TrimSpace(line)) == 0 {
				value.Value = strings.TrimSpace(value.Value)
				value = nil
				continue
			}
			part, more := continued(bytes.TrimLeft(line, " \t"))
			value.Value += part
			if !more {
				value.Value = strings.TrimSpace(value.Value)
				value = nil
			}
			continue
		}
		if comment {
			_, comment = continued(line)
			continue
		}
		t := bytes.TrimLeft(line, " \t\v\f\r")
		switch {
		case len(t) == 0:
		case t[0] == '#' || t[0] == ';':
			_, comment = continued(t)
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
			v := bytes.TrimSpace(t[eq+1:])
			part, more := continued(v)
			s.Entries = append(s.Entries, Entry{Key: key, Value: strings.TrimSpace(part), Line: n})
			if more {
				value = &s.Entries[len(s.Entries)-1]
				value.Value = part
			}
		}
	}
	if value != nil {
		value.Value = strings.TrimSpace(value.Value)
	}
	return sections, nil
}

// continued reports whether a line continues on the next one (it ends in a
// backslash, trailing spaces aside) and returns it with that backslash
// turned into a space, as systemd joins continued lines.
func continued(line []byte) (string, bool) {
	t := bytes.TrimRight(line, " ")
	if len(t) == 0 || t[len(t)-1] != '\\' {
		return string(line), false
	}
	return string(t[:len(t)-1]) + " ", true
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
