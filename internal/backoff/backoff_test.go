package backoff

import (
	"slices"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name      string
		base, max time.Duration
		want      []time.Duration
	}{
		{"doubles to max", time.Second, 30 * time.Second,
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"max a power of two of base", 200 * ms, 6400 * ms,
			[]time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 6400 * ms}},
		{"base over max", 10 * time.Second, time.Second,
			[]time.Duration{time.Second, time.Second}},
		{"base equals max", time.Second, time.Second,
			[]time.Duration{time.Second, time.Second}},
		{"no max", time.Second, 0,
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{"zero base", 0, time.Second,
			[]time.Duration{0, 0}},
		{"no max saturates", time.Duration(1 << 61), 0,
			[]time.Duration{1 << 61, 1 << 62, 1 << 62, 1 << 62}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Base: tc.base, Max: tc.max}
			var got []time.Duration
			for range tc.want {
				got = append(got, b.Next())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Next: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReset(t *testing.T) {
	b := Backoff{Base: 2 * time.Second, Max: 32 * time.Second}
	for range 10 {
		b.Next()
	}
	if d := b.Next(); d != 32*time.Second {
		t.Fatalf("capped: got %v", d)
	}
	b.Reset()
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second} {
		if d := b.Next(); d != want {
			t.Fatalf("after Reset: got %v, want %v", d, want)
		}
	}
}
