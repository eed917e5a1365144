package latest

import (
	"sync"
	"testing"
)

func TestPutNeverBlocksAndGetSeesNewest(t *testing.T) {
	s := New[int]()
	if _, ok := s.Get(); ok {
		t.Fatal("empty slot has a value")
	}
	for i := 1; i <= 1000; i++ {
		s.Put(i) // nobody reads: must not block
	}
	<-s.Ready()
	if v, ok := s.Get(); !ok || v != 1000 {
		t.Fatalf("got %d %v, want 1000", v, ok)
	}
	select {
	case <-s.Ready():
		t.Fatal("puts before the last read were signalled twice")
	default:
	}
}

func TestConcurrent(t *testing.T) {
	s := New[[]int]()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 10000; i++ {
			s.Put([]int{i})
		}
	}()
	go func() {
		defer wg.Done()
		last := -1
		for i := 0; i < 10000; i++ {
			if v, ok := s.Get(); ok {
				if v[0] < last {
					t.Errorf("went back from %d to %d", last, v[0])
					return
				}
				last = v[0]
			}
		}
	}()
	wg.Wait()
}
