package manifest

import (
	"fmt"
	"sort"
	"strings"
)

// File is one file of a desired commit, its path relative to the manifests
// directory (slash-separated).
type File struct {
	Path string
	Data []byte
}

// Problem is one thing wrong with a manifest, located by file, line and
// field path.
type Problem struct {
	File  string `json:"file"`
	Line  int    `json:"line,omitempty"`
	Field string `json:"field,omitempty"`
	// Value is quoted in the message when HasValue is set. Secret values
	// are never put here.
	Value    string `json:"value,omitempty"`
	HasValue bool   `json:"-"`
	Message  string `json:"message"`
}

// String renders `file:line: field: "value": message`.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	if p.HasValue {
		fmt.Fprintf(&b, "%q: ", p.Value)
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors is every problem found in a set of files. It is the error Load
// returns when anything is invalid.
type Errors []Problem

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
}

// Skipped is a document or file driftless does not apply, and why.
type Skipped struct {
	File       string `json:"file"`
	Line       int    `json:"line,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name,omitempty"`
	Reason     string `json:"reason"`
}

func (s Skipped) String() string {
	loc := s.File
	if s.Line > 0 {
		loc = fmt.Sprintf("%s:%d", s.File, s.Line)
	}
	if s.Kind == "" {
		return fmt.Sprintf("%s: %s", loc, s.Reason)
	}
	return fmt.Sprintf("%s: %s %s: %s", loc, s.Kind, s.Name, s.Reason)
}
