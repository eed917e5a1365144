package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// historyCommit is one desired commit and what the cluster did with it.
type historyCommit = status.HistoryCommit

type historyReport struct {
	Branch       string          `json:"branch"`
	Head         string          `json:"head"`
	StatusBranch string          `json:"statusBranch"`
	StatusHead   string          `json:"statusHead,omitempty"`
	Workload     string          `json:"workload,omitempty"`
	Commits      []historyCommit `json:"commits"`
}

func runHistory(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRepoFlags(fs, "desired-state repository URL")
	branch := fs.String("branch", git.DefaultBranch, "desired branch")
	statusRepo := fs.String("status-repo", "", "repository of the status branch (default: --repo)")
	trustedKeys := fs.String("trusted-keys", "", "armored OpenPGP keys: show whether signers are trusted")
	signersFile := fs.String("allowed-signers", "", "ssh-keygen allowed_signers file: show whether signers are trusted")
	limit := fs.Int("n", 200, "at most this many desired commits (the newest)")
	if code, done := parseFlags(fs, reorderFlags(fs, args)); done {
		return code
	}
	if !rf.usable(stderr, fs.NArg() <= 1 && *limit > 0, "usage: driftless history --repo URL [--branch main] [--status-branch B] [WORKLOAD] [-o text|json]\n  WORKLOAD: name, namespace/name or namespace/Kind/name") {
		return 2
	}
	repo, statusBranch, output, auth := rf.repo, rf.statusBranch, rf.output, rf.auth
	if *statusRepo == "" {
		*statusRepo = *repo
	}
	var trust git.Trust
	var err error
	if *trustedKeys != "" {
		if trust.KeyRing, err = git.LoadKeyRing(*trustedKeys); err != nil {
			fmt.Fprintln(stderr, "driftless history:", err)
			return 2
		}
	}
	if *signersFile != "" {
		if trust.Signers, err = git.LoadAllowedSigners(*signersFile); err != nil {
			fmt.Fprintln(stderr, "driftless history:", err)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := buildHistory(ctx, *repo, *branch, *statusRepo, *statusBranch, auth, trust, *limit, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "driftless history:", err)
		return 1
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return 0
	}
	printHistory(stdout, rep)
	return 0
}

// reorderFlags lets the WORKLOAD argument come before the flags.
func reorderFlags(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && i+1 < len(args) {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return append(flags, pos...)
}

// matchWorkload: "name", "namespace/name" or "namespace/Kind/name".
func matchWorkload(filter string, r manifest.Ref) bool {
	parts := strings.Split(filter, "/")
	switch len(parts) {
	case 1:
		return r.Name == parts[0]
	case 2:
		return r.Namespace == parts[0] && r.Name == parts[1]
	case 3:
		return r.Namespace == parts[0] && strings.EqualFold(r.Kind, parts[1]) && r.Name == parts[2]
	}
	return false
}

func buildHistory(ctx context.Context, repo, branch, statusRepo, statusBranch string, auth git.Auth, trust git.Trust, limit int, workload string) (*historyReport, error) {
	dir, err := os.MkdirTemp("", "driftless-history-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src, err := git.Open(ctx, git.Config{URL: repo, Branch: branch, Dir: dir, Auth: auth})
	if err != nil {
		return nil, err
	}
	rev, err := src.Sync(ctx)
	if err != nil {
		return nil, err
	}
	commits, err := src.Commits(rev.Commit, limit, trust)
	if err != nil {
		return nil, err
	}
	rep := &historyReport{Branch: branch, Head: rev.Commit, StatusBranch: statusBranch, Workload: workload}
	log, err := status.Log(ctx, statusRepo, statusBranch, auth)
	if err != nil {
		// No status branch yet: the desired history alone is still useful.
		log = nil
	}
	if len(log) > 0 {
		rep.StatusHead = log[len(log)-1].Hash
	}
	lookup := func(hash string) (git.CommitInfo, error) { return src.Commit(hash, trust) }
	keep := func(ev status.Event) bool {
		return workload == "" || ev.Workload == nil || matchWorkload(workload, *ev.Workload)
	}
	rep.Commits = status.JoinHistory(commits, status.Events(log), lookup, keep)
	if workload != "" {
		// Only the commits that did something to the workload; refusals
		// stay, since a refused commit may have been meant for it.
		kept := rep.Commits[:0]
		for _, hc := range rep.Commits {
			keep := false
			for _, ev := range hc.Events {
				if ev.Workload != nil || ev.Kind == status.EventRefused {
					keep = true
				}
			}
			if keep {
				kept = append(kept, hc)
			}
		}
		rep.Commits = kept
	}
	return rep, nil
}

func printHistory(w io.Writer, rep *historyReport) {
	fmt.Fprintf(w, "%s at %s, %s at %s", rep.Branch, abbrev(rep.Head), rep.StatusBranch, abbrev(rep.StatusHead))
	if rep.Workload != "" {
		fmt.Fprintf(w, ", workload %s", rep.Workload)
	}
	fmt.Fprintln(w)
	const tf = "2006-01-02 15:04:05Z"
	for _, hc := range rep.Commits {
		fmt.Fprintln(w)
		subject := hc.Subject
		if !hc.OnBranch {
			subject += fmt.Sprintf(" (not on %s)", rep.Branch)
		}
		fmt.Fprintf(w, "%s %s\n", abbrev(hc.Hash), subject)
		if hc.Author.Name != "" {
			fmt.Fprintf(w, "    author     %s <%s> %s\n", hc.Author.Name, hc.Author.Email, hc.Author.When.Format(tf))
			if hc.Committer.Name != hc.Author.Name || hc.Committer.Email != hc.Author.Email || !hc.Committer.When.Equal(hc.Author.When) {
				fmt.Fprintf(w, "    committer  %s <%s> %s\n", hc.Committer.Name, hc.Committer.Email, hc.Committer.When.Format(tf))
			}
			fmt.Fprintf(w, "    signed     %s\n", signerText(hc))
		}
		if len(hc.Events) == 0 {
			fmt.Fprintln(w, "    (no status recorded)")
		}
		for _, ev := range hc.Events {
			fmt.Fprintf(w, "    %s  %s  [status %s]\n", ev.Time.Format(tf), eventText(ev), abbrev(ev.StatusCommit))
			if ev.Kind == status.EventRefused {
				for _, e := range ev.Errors {
					fmt.Fprintf(w, "        %s\n", e)
				}
			}
		}
	}
}

func signerText(hc historyCommit) string {
	s := hc.Signer
	if s == nil {
		return "no"
	}
	who := s.Kind + " " + s.Key
	if len(s.Principals) > 0 {
		who += " (" + strings.Join(s.Principals, ", ") + ")"
	}
	if s.Trusted {
		return who + ", trusted"
	}
	return who + ", not trusted: " + hc.SignError
}

func eventText(ev status.Event) string {
	by := fmt.Sprintf("%s, term %d", ev.Leader, ev.Term)
	switch ev.Kind {
	case status.EventAccepted:
		return "accepted by " + by
	case status.EventRefused:
		return fmt.Sprintf("refused (%d problem(s)), recorded by %s", len(ev.Errors), by)
	case status.EventLeader:
		return fmt.Sprintf("%s leads, term %d", ev.Leader, ev.Term)
	case status.EventPlaced:
		s := fmt.Sprintf("placed %s: %d replica(s)", ev.Workload, len(ev.Nodes)+ev.Pending)
		if len(ev.Nodes) > 0 {
			s += " on " + strings.Join(ev.Nodes, ", ")
		}
		if ev.Pending > 0 {
			s += fmt.Sprintf(", %d pending", ev.Pending)
		}
		return s + " by " + by
	case status.EventRemoved:
		return fmt.Sprintf("removed %s by %s", ev.Workload, by)
	case status.EventReached:
		return fmt.Sprintf("%s reached it (every replica placed there running)", ev.Node)
	case status.EventReplica:
		s := fmt.Sprintf("%s reports %s[%d] %s", ev.Node, ev.Workload, *ev.Replica, ev.Phase)
		if ev.Reason != "" {
			s += " (" + ev.Reason + ")"
		}
		if ev.Ready {
			s += ", ready"
		}
		if ev.Restarts > 0 {
			s += fmt.Sprintf(", %d restart(s)", ev.Restarts)
		}
		return s
	}
	return ev.Kind
}
