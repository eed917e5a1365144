package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"driftless.dev/driftless/agent"
	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/status"
)

// peerFlags are the flags of the commands that call nodes' peer
// listeners: where the status branch is (the nodes' addresses), which
// node, the gossip key the token derives from.
type peerFlags struct {
	*repoFlags
	fs            *flag.FlagSet
	node, keyFile *string
	port          *int
	portSet       *bool
	insecure      *bool
}

func addPeerFlags(fs *flag.FlagSet) *peerFlags {
	return &peerFlags{
		fs:        fs,
		repoFlags: addRepoFlags(fs, "repository of the status branch (the nodes' addresses)"),
		node:      fs.String("node", "", "only this node (default: every alive node)"),
		keyFile:   fs.String("gossip-key-file", "", "the cluster's gossip key file (the peer token derives from its first key)"),
		port:      fs.Int("peer-port", agent.DefaultPeerPort, "port of the nodes' peer listeners (default: the address each node publishes, else its address and 7481)"),
		portSet:   new(bool),
		insecure:  fs.Bool("insecure-gossip", false, "call without a token (a cluster running with --insecure-gossip)"),
	}
}

type peer struct {
	name, base string
}

// peers are the nodes to call, from the status branch.
func (f *peerFlags) peers(ctx context.Context) ([]peer, string, error) {
	*f.portSet = false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "peer-port" {
			*f.portSet = true
		}
	})
	token := ""
	switch {
	case *f.keyFile != "":
		keys, err := cluster.LoadKeyFile(*f.keyFile)
		if err != nil {
			return nil, "", err
		}
		token = cluster.PeerToken(keys[0])
	case !*f.insecure:
		return nil, "", fmt.Errorf("--gossip-key-file is required (or --insecure-gossip)")
	}
	st, err := status.ReadState(ctx, *f.repo, *f.statusBranch, f.auth)
	if err != nil {
		return nil, "", err
	}
	var out []peer
	for name, n := range st.Nodes {
		if *f.node != "" && name != *f.node {
			continue
		}
		if *f.node == "" && n.State != status.NodeAlive {
			continue
		}
		addr := n.PeerAddress
		if addr == "" || *f.portSet {
			if n.Address == "" {
				return nil, "", fmt.Errorf("node %s has no address on the status branch", name)
			}
			addr = net.JoinHostPort(n.Address, fmt.Sprint(*f.port))
		}
		out = append(out, peer{name: name, base: "http://" + addr})
	}
	if len(out) == 0 {
		if *f.node != "" {
			return nil, "", fmt.Errorf("no node %s on the status branch", *f.node)
		}
		return nil, "", fmt.Errorf("no alive node on the status branch")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, token, nil
}

func peerCall(ctx context.Context, method, u, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// runReconcile is `driftless reconcile`: every node (or one) fetches the
// desired branch and reconciles now; it prints what each node answered.
func runReconcile(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addPeerFlags(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if !f.usable(stderr, fs.NArg() == 0, "usage: driftless reconcile --repo URL --gossip-key-file FILE [--node N]") {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	peers, token, err := f.peers(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "driftless reconcile:", err)
		return 1
	}
	var answers []agent.PeerAnswer
	failed := 0
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if *f.output == "text" {
		fmt.Fprintln(tw, "NODE\tRESULT\tDESIRED\tREPLICAS\tREADY\tDEGRADED")
	}
	for _, p := range peers {
		resp, err := peerCall(ctx, http.MethodPost, p.base+"/peer/v1/reconcile", token)
		var a agent.PeerAnswer
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
		}
		if err != nil {
			failed++
			if *f.output == "text" {
				fmt.Fprintf(tw, "%s\t%s\t\t\t\t\n", p.name, err)
			}
			continue
		}
		answers = append(answers, a)
		result := "reconciled"
		if !a.Waited {
			result = "asked (no pass within 10s)"
		}
		if *f.output == "text" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", a.Node, result, shortID(a.DesiredCommit), a.Replicas, a.Ready, strings.Join(a.Degraded, ","))
		}
	}
	if *f.output == "json" {
		_ = json.NewEncoder(stdout).Encode(answers)
	}
	tw.Flush()
	if failed > 0 {
		return 1
	}
	return 0
}

// runDiff is `driftless diff`: each node's desired replicas against what
// its containerd runs, container by container.
func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addPeerFlags(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if !f.usable(stderr, fs.NArg() == 0, "usage: driftless diff --repo URL --gossip-key-file FILE [--node N]") {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	peers, token, err := f.peers(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "driftless diff:", err)
		return 1
	}
	type nodeDiff struct {
		Node        string                 `json:"node"`
		Desired     int                    `json:"desired"`
		Differences []reconcile.Difference `json:"differences"`
		Error       string                 `json:"error,omitempty"`
	}
	var all []nodeDiff
	code := 0
	for _, p := range peers {
		d := nodeDiff{Node: p.name}
		resp, err := peerCall(ctx, http.MethodGet, p.base+"/peer/v1/diff", token)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
		}
		if err != nil {
			d.Error, code = err.Error(), 1
		}
		if len(d.Differences) > 0 && code == 0 {
			code = 3 // differences found, as diff(1) says 1; 3 keeps 1 for errors
		}
		all = append(all, d)
	}
	if *f.output == "json" {
		_ = json.NewEncoder(stdout).Encode(all)
		return code
	}
	for _, d := range all {
		switch {
		case d.Error != "":
			fmt.Fprintf(stdout, "%s: %s\n", d.Node, d.Error)
		case len(d.Differences) == 0:
			fmt.Fprintf(stdout, "%s: %d desired replica(s), every container as desired\n", d.Node, d.Desired)
		default:
			fmt.Fprintf(stdout, "%s: %d difference(s)\n", d.Node, len(d.Differences))
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  \tWORKLOAD\tREPLICA\tCONTAINER\tDESIRED\tRUNNING\tSTATE")
			for _, x := range d.Differences {
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\t%s\n", x.Kind, x.Workload, x.Index, x.Container, orDash(x.Want), orDash(x.Have), orDash(x.State))
			}
			tw.Flush()
		}
	}
	return code
}

// remoteLogs streams a replica's log from the peer listener of the node
// that runs it.
func remoteLogs(ctx context.Context, f *peerFlags, workload string, replica int, container string, tail int, follow bool, stdout io.Writer) error {
	peers, token, err := f.peers(ctx)
	if err != nil {
		return err
	}
	if len(peers) != 1 {
		return fmt.Errorf("--node names one node")
	}
	q := url.Values{"workload": {workload}, "replica": {fmt.Sprint(replica)}, "tail": {fmt.Sprint(tail)}}
	if container != "" {
		q.Set("container", container)
	}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := peerCall(ctx, http.MethodGet, peers[0].base+"/peer/v1/logs?"+q.Encode(), token)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(stdout, resp.Body)
	return err
}

func shortID(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return orDash(c)
}
