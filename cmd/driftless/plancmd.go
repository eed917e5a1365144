package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"driftless.dev/driftless/leader"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// planChange is one line of `driftless plan`.
type planChange struct {
	Action   string       `json:"action"` // add, move, remove, replace, pending
	Workload manifest.Ref `json:"workload"`
	Replica  int          `json:"replica"`
	From     string       `json:"from,omitempty"`
	To       string       `json:"to,omitempty"`
	Reasons  []string     `json:"reasons,omitempty"`
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRepoFlags(fs, "desired-state repository URL")
	branch := fs.String("branch", git.DefaultBranch, "branch to plan")
	path := fs.String("path", "", "sub-directory of the manifests")
	statusRepo := fs.String("status-repo", "", "repository of the status branch (default: --repo)")
	policyName := fs.String("scheduler-policy", string(scheduler.LeastAllocated), "how nodes are ranked: least-allocated or most-allocated (as the cluster's leader does)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if !rf.usable(stderr, fs.NArg() == 0, "usage: driftless plan --repo URL [--branch main] [--path DIR] [--status-branch B] [--scheduler-policy P] [-o text|json]") {
		return 2
	}
	repo, statusBranch, output, auth := rf.repo, rf.statusBranch, rf.output, rf.auth
	policy, err := scheduler.ParsePolicy(*policyName)
	if err != nil {
		fmt.Fprintln(stderr, "driftless plan:", err)
		return 2
	}
	if *statusRepo == "" {
		*statusRepo = *repo
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "driftless-plan-")
	if err != nil {
		fmt.Fprintln(stderr, "driftless plan:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	src, err := git.Open(ctx, git.Config{URL: *repo, Branch: *branch, Dir: dir, Auth: auth})
	if err != nil {
		fmt.Fprintln(stderr, "driftless plan:", err)
		return 1
	}
	rev, err := src.Sync(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "driftless plan:", err)
		return 1
	}
	files, err := src.Files(ctx, rev.Commit, *path)
	if err != nil {
		fmt.Fprintln(stderr, "driftless plan:", err)
		return 1
	}
	set, err := manifest.Load(files)
	if err != nil {
		fmt.Fprintf(stderr, "driftless plan: desired commit %s would be refused:\n%v\n", rev.Commit[:7], err)
		return 1
	}
	cur, err := status.ReadState(ctx, *statusRepo, *statusBranch, auth)
	if err != nil {
		cur = (*status.State)(nil).Clone() // no status branch yet: plan from nothing
	}
	// What the leader would decide now, from what Git holds: the nodes as
	// recorded (dead ones past their grace), the replicas' last committed
	// status, the commit this plan is for.
	out := leader.Next(leader.Input{
		Node:          cur.Cluster.Leader,
		Current:       cur,
		Set:           set,
		DesiredCommit: rev.Commit,
		Policy:        policy,
		Now:           time.Now(),
		JobNow:        time.Now(),
		Services:      services.Config{CIDR: services.DefaultCIDR, ClusterDNS: services.DNSAddr(services.DefaultCIDR)},
	})
	placements := out.Next.Placements
	changes := planDiff(cur.Placements, placements)
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			DesiredCommit string       `json:"desiredCommit"`
			Changes       []planChange `json:"changes"`
		}{rev.Commit, changes})
		return 0
	}
	fmt.Fprintf(stdout, "Plan for %s (%s) against status %s:\n", rev.Commit[:7], rev.Subject, abbrev(cur.Head))
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no changes")
		return 0
	}
	counts := map[string]int{}
	for _, c := range changes {
		counts[c.Action]++
		ref := fmt.Sprintf("%s[%d]", c.Workload, c.Replica)
		switch c.Action {
		case "add":
			fmt.Fprintf(stdout, "+ %s -> %s\n", ref, c.To)
		case "move":
			fmt.Fprintf(stdout, "~ %s %s -> %s\n", ref, c.From, c.To)
		case "remove":
			fmt.Fprintf(stdout, "- %s on %s\n", ref, c.From)
		case "replace":
			fmt.Fprintf(stdout, "r %s on %s: new spec\n", ref, c.To)
		case "pending":
			fmt.Fprintf(stdout, "! %s pending: %s\n", ref, strings.Join(c.Reasons, "; "))
		}
	}
	fmt.Fprintf(stdout, "%d to add, %d to move, %d to replace, %d to remove, %d pending\n",
		counts["add"], counts["move"], counts["replace"], counts["remove"], counts["pending"])
	return 0
}

func planDiff(cur, next map[manifest.Ref]manifest.Placement) []planChange {
	var out []planChange
	for _, ref := range manifest.SortedRefs(cur, next) {
		old := map[int]manifest.ReplicaPlacement{}
		for _, r := range cur[ref].Replicas {
			old[r.Index] = r
		}
		seen := map[int]bool{}
		for _, r := range next[ref].Replicas {
			seen[r.Index] = true
			o, had := old[r.Index]
			switch {
			case r.Node == "":
				out = append(out, planChange{Action: "pending", Workload: ref, Replica: r.Index, From: o.Node, Reasons: r.Pending})
			case !had || o.Node == "":
				out = append(out, planChange{Action: "add", Workload: ref, Replica: r.Index, To: r.Node})
			case o.Node != r.Node:
				out = append(out, planChange{Action: "move", Workload: ref, Replica: r.Index, From: o.Node, To: r.Node})
			case o.SpecHash != r.SpecHash:
				out = append(out, planChange{Action: "replace", Workload: ref, Replica: r.Index, From: o.Node, To: r.Node})
			}
		}
		for idx, o := range old {
			if !seen[idx] && o.Node != "" {
				out = append(out, planChange{Action: "remove", Workload: ref, Replica: idx, From: o.Node})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Workload != out[j].Workload {
			return out[i].Workload.String() < out[j].Workload.String()
		}
		return out[i].Replica < out[j].Replica
	})
	return out
}
