package containerlog

import (
	"bytes"
	"errors"
	"time"
)

// Streams and tags of a record.
const (
	Stdout = "stdout"
	Stderr = "stderr"

	tagFull    = 'F'
	tagPartial = 'P'
)

// MaxLine is the longest piece of a line one record holds; longer lines are
// split into partial records.
const MaxLine = 16 << 10

// TimeFormat is the record timestamp: RFC 3339 in UTC with a fixed nine
// digit fraction, readable by time.RFC3339Nano.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Entry is one record of a log file.
type Entry struct {
	Time    time.Time
	Stream  string
	Partial bool // the line continues in the next record of the stream
	Text    []byte
	// Raw is set when the line is not a record (an older file format); Text
	// then holds the whole line.
	Raw bool
}

// AppendRecord appends one record (with its newline) to buf.
func AppendRecord(buf []byte, t time.Time, stream string, partial bool, text []byte) []byte {
	buf = t.UTC().AppendFormat(buf, TimeFormat)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	if partial {
		buf = append(buf, tagPartial)
	} else {
		buf = append(buf, tagFull)
	}
	buf = append(buf, ' ')
	buf = append(buf, text...)
	return append(buf, '\n')
}

var errNotRecord = errors.New("not a log record")

// ParseRecord parses one line (without its newline). A line that is not a
// record is returned as a Raw entry with errNotRecord.
func ParseRecord(line []byte) (Entry, error) {
	raw := Entry{Raw: true, Text: line}
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return raw, errNotRecord
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return raw, errNotRecord
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (string(stream) != Stdout && string(stream) != Stderr) {
		return raw, errNotRecord
	}
	// The tag is followed by a space, or ends an empty line.
	if len(rest) == 0 || (rest[0] != tagFull && rest[0] != tagPartial) || (len(rest) > 1 && rest[1] != ' ') {
		return raw, errNotRecord
	}
	e := Entry{Time: t, Stream: string(stream), Partial: rest[0] == tagPartial}
	if len(rest) > 2 {
		e.Text = rest[2:]
	}
	return e, nil
}
