package agent

import (
	"strings"
	"testing"
)

func TestConfigSchedulerPolicy(t *testing.T) {
	c := DefaultConfig()
	c.Node, c.Repo = "n1", URLList{"file:///tmp/x"}
	if c.SchedulerPolicy != "least-allocated" {
		t.Fatalf("default policy %q", c.SchedulerPolicy)
	}
	c.SchedulerPolicy = "most-allocated"
	if err := c.Validate(); err != nil {
		t.Fatalf("most-allocated: %v", err)
	}
	c.SchedulerPolicy = "balanced"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `scheduler policy "balanced"`) {
		t.Fatalf("balanced: %v", err)
	}
}
