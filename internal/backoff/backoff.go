// Package backoff computes the delays of a retry loop: Base after the
// first failure, doubling with each further one up to Max, and Base
// again after a Reset.
package backoff

import "time"

// Backoff is the delay state of one retry loop. The zero value with Base
// and Max set is ready to use; it is not safe for concurrent use.
type Backoff struct {
	Base time.Duration // first delay
	Max  time.Duration // cap on every delay; 0: no cap

	next time.Duration // the delay Next returns; 0: Base
}

// Next returns the delay before the next attempt and doubles the one
// after it, capped at Max.
func (b *Backoff) Next() time.Duration {
	d := b.next
	if d == 0 {
		d = b.Base
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	switch {
	case b.Max > 0 && d > b.Max/2:
		b.next = b.Max
	case d > (1<<63-1)/2: // doubling would overflow
		b.next = d
	default:
		b.next = 2 * d
	}
	return d
}

// Reset makes the next delay Base again, after an attempt succeeded.
func (b *Backoff) Reset() {
	b.next = 0
}
