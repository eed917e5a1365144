package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// eventRecord is one line of a status commit's message: one thing the
// leader did or saw (apply, schedule, preempt, bind claim, reject, a node
// joins, a replica's phase...).
type eventRecord struct {
	Time          time.Time `json:"time"`
	StatusCommit  string    `json:"statusCommit"`
	Leader        string    `json:"leader"`
	Term          int64     `json:"term"`
	DesiredCommit string    `json:"desiredCommit,omitempty"`
	// Message is the line, indented as the leader wrote it when it
	// details another (a Job's replica, a refusal's problem).
	Message string `json:"message"`
}

type eventsReport struct {
	StatusBranch string        `json:"statusBranch"`
	StatusHead   string        `json:"statusHead,omitempty"`
	Workload     string        `json:"workload,omitempty"`
	Since        *time.Time    `json:"since,omitempty"`
	Events       []eventRecord `json:"events"`
}

const eventsUsage = "usage: driftless events --repo URL [--status-branch B] [--since 1h] [WORKLOAD] [-o text|json]\n  WORKLOAD: name, namespace/name or namespace/Kind/name"

func runEvents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRepoFlags(fs, "repository holding the status branch")
	since := fs.Duration("since", 0, "only the events of this long back from now (30m, 1h, 24h; 0: all)")
	if code, done := parseFlags(fs, reorderFlags(fs, args)); done {
		return code
	}
	if !rf.usable(stderr, fs.NArg() <= 1 && *since >= 0, eventsUsage) {
		return 2
	}
	var from time.Time
	if *since > 0 {
		from = time.Now().Add(-*since).UTC().Truncate(time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := buildEvents(ctx, *rf.repo, *rf.statusBranch, rf.auth, from, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "driftless events:", err)
		return 1
	}
	if *rf.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return 0
	}
	printEvents(stdout, stderr, rep)
	return 0
}

// buildEvents reads the status branch as history does (status.Log), and
// the commits' messages, which Log keeps only the summary of; it lists
// each message line of the commits from `from` on (all when zero), the
// ones naming workload when it is set.
func buildEvents(ctx context.Context, url, branch string, auth git.Auth, from time.Time, workload string) (*eventsReport, error) {
	log, err := status.Log(ctx, url, branch, auth)
	if err != nil {
		return nil, err
	}
	// Fetched after the log: the branch only grows, so every commit of
	// the log is there.
	msgs, err := statusMessages(ctx, url, branch, auth, log)
	if err != nil {
		return nil, err
	}
	rep := &eventsReport{StatusBranch: branch, Workload: workload, Events: []eventRecord{}}
	if !from.IsZero() {
		rep.Since = &from
	}
	if len(log) > 0 {
		rep.StatusHead = log[len(log)-1].Hash
	}
	var prev *status.State
	for i, e := range log {
		if i > 0 {
			prev = log[i-1].State
		}
		if !from.IsZero() && e.Time.Before(from) {
			continue
		}
		base := eventRecord{Time: e.Time.UTC(), StatusCommit: e.Hash, Leader: e.Leader, Term: e.Term, DesiredCommit: e.DesiredCommit}
		if st := e.State; st != nil {
			// A commit without trailers: the tree says.
			if base.Term < 0 {
				base.Leader, base.Term = st.Cluster.Leader, st.Cluster.Term
			}
			if base.DesiredCommit == "" {
				base.DesiredCommit = st.Cluster.DesiredCommit
			}
		}
		msg, ok := msgs[e.Hash]
		if !ok {
			msg = e.Summary
		}
		for _, line := range messageLines(msg) {
			if workload != "" && !namesWorkload(line, workload, e.State, prev) {
				continue
			}
			ev := base
			ev.Message = line
			rep.Events = append(rep.Events, ev)
		}
	}
	return rep, nil
}

// statusMessages fetches the branch into a temporary clone and returns the
// full message of each commit of log, by hash.
func statusMessages(ctx context.Context, url, branch string, auth git.Auth, log []status.Entry) (map[string]string, error) {
	dir, err := os.MkdirTemp("", "driftless-events-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	repo, err := git.OpenBare(dir, url)
	if err != nil {
		return nil, err
	}
	method, err := auth.Access(url)
	if err != nil {
		return nil, err
	}
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(branch), plumbing.NewRemoteReferenceName("origin", branch)))
	if err := git.Fetch(ctx, repo, url, method, []config.RefSpec{spec}); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(log))
	for _, e := range log {
		c, err := repo.CommitObject(plumbing.NewHash(e.Hash))
		if err != nil {
			return nil, fmt.Errorf("status commit %s: %w", e.Hash, err)
		}
		out[e.Hash] = c.Message
	}
	return out, nil
}

// messageLines are the lines a status commit's message lists: its body,
// one change a line (the summary then only abbreviates it), or the
// summary alone; never the trailers.
func messageLines(msg string) []string {
	paras := strings.Split(strings.TrimSpace(strings.ReplaceAll(msg, "\r\n", "\n")), "\n\n")
	if n := len(paras); n > 1 && isTrailers(paras[n-1]) {
		paras = paras[:n-1]
	}
	body := paras[1:]
	if len(body) == 0 {
		body = paras[:1]
	}
	var out []string
	for _, p := range body {
		for _, l := range strings.Split(p, "\n") {
			if l = strings.TrimRight(l, " \t"); strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// isTrailers: every line is "Key: value", the key a single word.
func isTrailers(para string) bool {
	for _, l := range strings.Split(para, "\n") {
		k, _, ok := strings.Cut(l, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return false
		}
	}
	return true
}

// namesWorkload: the line names a workload (or Service, claim) that
// filter matches, as history matches them.
func namesWorkload(line, filter string, cur, prev *status.State) bool {
	for _, r := range namedRefs(line, cur, prev) {
		if matchWorkload(filter, r) {
			return true
		}
	}
	return false
}

// refToken is a "namespace/name" or "namespace/Kind/name" in a message
// line, after a space, a parenthesis or a comma, or at its start.
var refToken = regexp.MustCompile(`(?:^|[\s(,])([a-z0-9][-a-z0-9.]*)/(?:([A-Z][A-Za-z0-9]*)/)?([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)`)

// namedRefs lists what a message line names: a Service after "service",
// a claim after "claim", else the workloads of that namespace and name
// in the commit's state or the one before (a removed workload), or a ref
// of no kind when neither has one.
func namedRefs(line string, cur, prev *status.State) []manifest.Ref {
	var out []manifest.Ref
	for _, m := range refToken.FindAllStringSubmatchIndex(line, -1) {
		if m[1] < len(line) && line[m[1]] == '/' {
			continue // a path, not a name
		}
		ns, name := line[m[2]:m[3]], line[m[6]:m[7]]
		if m[4] >= 0 {
			out = append(out, manifest.Ref{Namespace: ns, Kind: line[m[4]:m[5]], Name: name})
			continue
		}
		before := strings.Fields(line[:m[2]])
		word := ""
		if len(before) > 0 {
			word = before[len(before)-1]
		}
		switch word {
		case "service":
			out = append(out, manifest.Ref{Namespace: ns, Kind: "Service", Name: name})
			continue
		case "claim":
			out = append(out, manifest.Ref{Namespace: ns, Kind: "PersistentVolumeClaim", Name: name})
			continue
		}
		found := false
		for _, st := range []*status.State{cur, prev} {
			if st == nil {
				continue
			}
			for ref := range st.Placements {
				if ref.Namespace == ns && ref.Name == name {
					out = append(out, ref)
					found = true
				}
			}
		}
		if !found {
			out = append(out, manifest.Ref{Namespace: ns, Name: name})
		}
	}
	return out
}

func printEvents(w, stderr io.Writer, rep *eventsReport) {
	if len(rep.Events) == 0 {
		fmt.Fprintln(stderr, "no events")
		return
	}
	const tf = "2006-01-02 15:04:05Z"
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSTATUS\tLEADER/TERM\tEVENT")
	for _, ev := range rep.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s/%d\t%s\n", ev.Time.Format(tf), abbrev(ev.StatusCommit), orDash(ev.Leader), ev.Term, ev.Message)
	}
	tw.Flush()
}
