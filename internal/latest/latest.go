// Package latest is a latest-value slot: one goroutine puts values, another
// takes the newest one when it is ready for it. Values put in between are
// overwritten, never queued, so a slow reader never blocks the writer and
// never works through a backlog of stale values.
package latest

import "sync"

// Value holds the newest value put. The zero Value is not usable: use New.
// Safe for concurrent use.
type Value[T any] struct {
	mu    sync.Mutex
	v     T
	set   bool
	ready chan struct{}
}

// New returns an empty slot.
func New[T any]() *Value[T] { return &Value[T]{ready: make(chan struct{}, 1)} }

// Put replaces the value and signals Ready. It never blocks.
func (s *Value[T]) Put(v T) {
	s.mu.Lock()
	s.v, s.set = v, true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Get returns the newest value and whether one was ever put.
func (s *Value[T]) Get() (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, s.set
}

// Ready receives (coalesced) after each Put.
func (s *Value[T]) Ready() <-chan struct{} { return s.ready }
