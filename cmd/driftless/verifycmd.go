package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"time"

	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRepoFlags(fs, "repository holding the status branch")
	signersFile := fs.String("allowed-signers", "", "ssh-keygen allowed_signers file: node name -> the key that signs its status commits")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if !rf.usable(stderr, *signersFile != "" && fs.NArg() == 0, "usage: driftless verify --repo URL [--status-branch B] --allowed-signers FILE [-o text|json]") {
		return 2
	}
	repo, branch, output, auth := rf.repo, rf.statusBranch, rf.output, rf.auth
	signers, err := git.LoadAllowedSigners(*signersFile)
	if err != nil {
		fmt.Fprintf(stderr, "driftless verify: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log, err := status.Log(ctx, *repo, *branch, auth)
	if err != nil {
		fmt.Fprintf(stderr, "driftless verify: %v\n", err)
		return 1
	}
	rep, v := status.Audit(log, signers)
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			OK        bool                `json:"ok"`
			Head      string              `json:"head"`
			Report    *status.AuditReport `json:"report,omitempty"`
			Violation *status.Violation   `json:"violation,omitempty"`
		}{v == nil, log[len(log)-1].Hash, rep, v})
	} else if v == nil {
		terms := make([]int64, 0, len(rep.Terms))
		for t := range rep.Terms {
			terms = append(terms, t)
		}
		sort.Slice(terms, func(i, j int) bool { return terms[i] < terms[j] })
		fmt.Fprintf(stdout, "%s at %s: %d commit(s) hold: linear, terms never decrease, one leader per term, each signed by its leader's key\n",
			*branch, abbrev(log[len(log)-1].Hash), rep.Commits)
		for _, t := range terms {
			fmt.Fprintf(stdout, "  term %d: %s\n", t, rep.Terms[t])
		}
	}
	if v != nil {
		fmt.Fprintf(stderr, "driftless verify: %s: %v\n", *branch, v)
		return 1
	}
	return 0
}
