package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// eventLines are the lines of events' text output after the header.
func eventLines(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "TIME ") || !strings.HasSuffix(lines[0], "EVENT") {
		t.Fatalf("events header: %q", out)
	}
	return lines[1:]
}

func TestEvents(t *testing.T) {
	r := newClusterRepo(t)
	short := func(i int) string { return r.commits[i][:7] }
	const tf = "2006-01-02 15:04:05Z"

	code, out, errs := runCmd("events", "--repo", r.url)
	if code != 0 {
		t.Fatalf("events: %d %s", code, errs)
	}
	t.Logf("\n%s", out)
	lines := eventLines(t, out)
	// One line per body line of the four commits, oldest first; never a
	// summary's "(+N more)" nor a trailer.
	if len(lines) != 18 || strings.Contains(out, "more)") || strings.Contains(out, "Leader:") || strings.Contains(out, "Desired-Commit") {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	first := r.times[0].Format(tf) + "  " + short(0) + "  node-a/3     node-a leads (term 3)"
	if lines[0] != first || !strings.HasPrefix(lines[2], r.times[0].Format(tf)+"  "+short(0)) || !strings.HasSuffix(lines[2], "node node-b joins") {
		t.Errorf("first lines:\n%s\n%s\nwant %s", lines[0], lines[2], first)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, r.times[3].Format(tf)+"  "+short(3)) ||
		!strings.HasSuffix(last, "     web.yaml:10: spec.template.spec.containers[0].imagee: unknown field") {
		t.Errorf("last line (an indented detail): %q", last)
	}
	for _, w := range []string{"  apply 1111111\n", "  schedule default/web: 2 replica(s) on node-a, node-b\n", "       default/pi[0] on node-a: Running\n",
		"  preempt shop/api[0] on node-b: preempted by shop/db[0] (priority 100 > 0)\n", "  bind claim shop/media to shared storage (10Gi, /mnt/nfs/shop/media)\n",
		"  reject 2222222: 1 problem(s)\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("events lack %q", w)
		}
	}

	// A workload and --since, in either order: the lines naming it of the
	// commits of the last hour.
	for _, args := range [][]string{{"events", "--since", "1h", "web", "--repo", r.url}, {"events", "web", "--repo", r.url, "--since=1h"}} {
		code, out, errs := runCmd(args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, errs)
		}
		lines := eventLines(t, out)
		want := []string{"default/web[0] on node-a: Running", "default/web[1] on node-b: Pending (ErrImagePull)", "service default/web: 10.96.0.10, 1 endpoint(s)"}
		if len(lines) != len(want) {
			t.Fatalf("%v:\n%s", args, out)
		}
		for i, w := range want {
			if !strings.HasPrefix(lines[i], r.times[2].Format(tf)+"  "+short(2)) || !strings.HasSuffix(lines[i], "     "+w) {
				t.Errorf("%v line %d: %q, want %q", args, i, lines[i], w)
			}
		}
	}
	// Without --since, the web schedule of 2h ago too; a Kind keeps the
	// Deployment's lines, not the Service's.
	_, out, _ = runCmd("events", "--repo", r.url, "default/Deployment/web")
	if lines := eventLines(t, out); len(lines) != 3 || !strings.HasSuffix(lines[0], "schedule default/web: 2 replica(s) on node-a, node-b") || strings.Contains(out, "service ") {
		t.Errorf("default/Deployment/web:\n%s", out)
	}
	_, out, _ = runCmd("events", "--repo", r.url, "default/Service/web")
	if lines := eventLines(t, out); len(lines) != 1 || !strings.HasSuffix(lines[0], "service default/web: 10.96.0.10, 1 endpoint(s)") {
		t.Errorf("default/Service/web:\n%s", out)
	}
	// A workload named as the one that preempts.
	_, out, _ = runCmd("events", "--repo", r.url, "shop/db")
	if lines := eventLines(t, out); len(lines) != 2 || !strings.Contains(lines[1], "preempt shop/api[0]") {
		t.Errorf("shop/db:\n%s", out)
	}
	code, out, errs = runCmd("events", "--repo", r.url, "--since", "5m")
	if code != 0 || out != "" || !strings.Contains(errs, "no events") {
		t.Errorf("nothing in 5m: %d %q %q", code, out, errs)
	}

	// JSON: one record a line, with leader, term and desired commit.
	code, out, _ = runCmd("events", "--repo", r.url, "-o", "json", "--since", "15m")
	var rep eventsReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("json: %d %s", code, out)
	}
	if len(rep.Events) != 5 || rep.Since == nil || rep.StatusHead != r.commits[3] {
		t.Fatalf("json events: %s", out)
	}
	for _, ev := range rep.Events {
		if ev.StatusCommit != r.commits[3] || !ev.Time.Equal(r.times[3]) || ev.Leader != "node-a" || ev.Term != 3 || ev.DesiredCommit != desired1 {
			t.Errorf("json event: %+v", ev)
		}
	}
	if rep.Events[0].Message != "reject 2222222: 1 problem(s)" || rep.Events[4].Message != "  web.yaml:10: spec.template.spec.containers[0].imagee: unknown field" {
		t.Errorf("json messages: %+v", rep.Events)
	}
	_, out, _ = runCmd("events", "--repo", r.url, "-o", "json", "nothing")
	if !strings.Contains(out, `"events": []`) || !strings.Contains(out, `"workload": "nothing"`) {
		t.Errorf("json without events: %s", out)
	}

	for _, args := range [][]string{{"events"}, {"events", "--repo", r.url, "--since", "-1h"}, {"events", "--repo", r.url, "a", "b"},
		{"events", "--repo", r.url, "-o", "yaml"}} {
		if code, _, errs := runCmd(args...); code != 2 || !strings.Contains(errs, "usage: driftless events") {
			t.Errorf("%v: %d %s", args, code, errs)
		}
	}
	if code, _, errs := runCmd("events", "--repo", r.url, "--status-branch", "nope"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("missing branch: %d %s", code, errs)
	}
}

func TestMessageLines(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want []string
	}{
		{"apply abc\n\nDesired-Commit: abc\nLeader: n\nTerm: 1\n", []string{"apply abc"}},
		{"a (+1 more)\n\na\nb\n  detail\n\nLeader: n\nTerm: 1\n", []string{"a", "b", "  detail"}},
		{"reject x: 1 problem(s)\n\nreject x: 1 problem(s)\n  f.yaml:1: bad\n\nLeader: n\nTerm: 2\n", []string{"reject x: 1 problem(s)", "  f.yaml:1: bad"}},
		{"by hand\n\nno trailers here\n", []string{"no trailers here"}},
		{"one line", []string{"one line"}},
	} {
		if got := messageLines(c.msg); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("messageLines(%q) = %q, want %q", c.msg, got, c.want)
		}
	}
}
