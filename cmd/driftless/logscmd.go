package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"driftless.dev/driftless/containerlog"
)

func runLogs(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return logsCommand(ctx, args, stdout, stderr)
}

// logsCommand prints a container's log from this node's data dir; with
// -f it follows until ctx is done.
func logsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: driftless logs [NAMESPACE/][KIND/]NAME [--namespace NS] [--kind KIND] [--replica N] [-c CONTAINER] [-f] [--tail N] [--previous] [--timestamps] [--data-dir DIR]")
		fs.PrintDefaults()
	}
	ns := fs.String("namespace", "default", "namespace of the workload (or WORKLOAD as namespace/name)")
	fs.StringVar(ns, "n", "default", "short for --namespace")
	kind := fs.String("kind", "", "kind of the workload (deployment, pod, job, ...) when several kinds share its name")
	replica := fs.Int("replica", -1, "replica index (needed when several replicas run on this node)")
	var container string
	fs.StringVar(&container, "container", "", "container name (needed when the replica has several)")
	fs.StringVar(&container, "c", "", "short for --container")
	var follow, previous bool
	fs.BoolVar(&follow, "follow", false, "print new lines as they are written, across rotations and restarts")
	fs.BoolVar(&follow, "f", false, "short for --follow")
	fs.BoolVar(&previous, "previous", false, "the log of the container's previous run")
	fs.BoolVar(&previous, "p", false, "short for --previous")
	tail := fs.Int("tail", -1, "only the last N lines (-1: all)")
	timestamps := fs.Bool("timestamps", false, "prefix each line with the time it was written")
	dataDir := fs.String("data-dir", "/var/lib/driftless", "the agent's data dir")
	// --node: through that node's peer listener instead of local files.
	pf := addPeerFlags(fs)
	// Flags may come before or after WORKLOAD, as with kubectl.
	var pos []string
	for {
		if code, done := parseFlags(fs, args); done {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	name := pos[0]
	switch parts := strings.Split(name, "/"); len(parts) {
	case 2:
		// KIND/NAME as kubectl writes it, else NAMESPACE/NAME.
		if k, ok := kindAliases[strings.ToLower(parts[0])]; ok {
			*kind, name = k, parts[1]
		} else {
			*ns, name = parts[0], parts[1]
		}
	case 3:
		*ns, *kind, name = parts[0], parts[1], parts[2]
	}
	if k, ok := kindAliases[strings.ToLower(*kind)]; ok {
		*kind = k
	}
	if *pf.node != "" {
		if *kind == "" || *pf.repo == "" {
			fmt.Fprintln(stderr, "driftless logs --node: say the kind (KIND/NAME or --kind) and --repo (the status branch names the node's address)")
			return 2
		}
		idx := *replica
		if idx < 0 {
			idx = 0
		}
		if err := remoteLogs(ctx, pf, *ns+"/"+canonicalKind(*kind)+"/"+name, idx, container, *tail, follow, stdout); err != nil {
			fmt.Fprintln(stderr, "driftless logs:", err)
			return 1
		}
		return 0
	}
	path, err := logPath(*dataDir, *ns, *kind, name, *replica, container, previous)
	if err != nil {
		fmt.Fprintln(stderr, "driftless logs:", err)
		return 1
	}
	if follow && !previous {
		err = containerlog.Follow(ctx, path, *tail, func(e containerlog.Entry) error {
			_, err := stdout.Write(containerlog.Format(nil, e, *timestamps))
			return err
		})
	} else {
		if previous {
			path = containerlog.PreviousPath(path)
		}
		err = printLog(stdout, path, *tail, *timestamps)
	}
	if err != nil {
		fmt.Fprintln(stderr, "driftless logs:", err)
		return 1
	}
	return 0
}

func printLog(stdout io.Writer, path string, tail int, timestamps bool) error {
	files, err := containerlog.Files(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(stdout)
	var buf []byte
	emit := func(e containerlog.Entry) error {
		buf = containerlog.Format(buf[:0], e, timestamps)
		_, err := bw.Write(buf)
		return err
	}
	if tail < 0 {
		err = containerlog.Read(files, emit)
	} else {
		var es []containerlog.Entry
		if es, err = containerlog.Tail(files, tail); err == nil {
			for _, e := range es {
				if err = emit(e); err != nil {
					break
				}
			}
		}
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// kindAliases maps the names kubectl accepts for a kind to the kind's
// directory in the log layout (containerlog.WorkloadDir).
var kindAliases = map[string]string{
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
	"replicaset": "replicaset", "replicasets": "replicaset", "rs": "replicaset",
	"replicationcontroller": "replicationcontroller", "replicationcontrollers": "replicationcontroller", "rc": "replicationcontroller",
	"job": "job", "jobs": "job", "cronjob": "cronjob", "cronjobs": "cronjob", "cj": "cronjob",
	"pod": "pod", "pods": "pod", "po": "pod",
}

// logPath finds the current log file of one container of a workload
// replica on this node, with errors that say what to choose from. An
// empty kind is found from the name, unless several kinds share it.
func logPath(dataDir, ns, kind, name string, replica int, container string, previous bool) (string, error) {
	var kinds []string
	for _, k := range dirNames(containerlog.NamespaceDir(dataDir, ns)) {
		if kind == "" || k == kind {
			if _, err := os.Stat(containerlog.WorkloadDir(dataDir, ns, k, name)); err == nil {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) > 1 {
		return "", fmt.Errorf("%d workloads named %s/%s have logs on this node (%s): choose one as KIND/NAME or with --kind", len(kinds), ns, name, strings.Join(kinds, ", "))
	}
	label := ns + "/" + name
	if kind != "" {
		label = ns + "/" + kind + "/" + name
	}
	if len(kinds) == 1 {
		kind = kinds[0]
	}
	wdir := containerlog.WorkloadDir(dataDir, ns, kind, name)
	reps, err := replicas(wdir)
	if kind == "" || err != nil || len(reps) == 0 {
		msg := fmt.Sprintf("workload %s has no logs on this node (%s): it is not placed here, or has not started yet", label, containerlog.NamespaceDir(dataDir, ns))
		var others []string
		for _, k := range dirNames(containerlog.NamespaceDir(dataDir, ns)) {
			for _, w := range dirNames(filepath.Join(containerlog.NamespaceDir(dataDir, ns), k)) {
				others = append(others, k+"/"+w)
			}
		}
		if len(others) > 0 {
			msg += fmt.Sprintf("; workloads of namespace %s with logs here: %s", ns, strings.Join(others, ", "))
		}
		return "", errors.New(msg)
	}
	name = kind + "/" + name // for the messages below
	if replica < 0 {
		if len(reps) > 1 {
			return "", fmt.Errorf("workload %s/%s has replicas %s on this node: choose one with --replica", ns, name, joinInts(reps))
		}
		replica = reps[0]
	} else if !slices.Contains(reps, replica) {
		return "", fmt.Errorf("workload %s/%s has no replica %d on this node; replicas here: %s", ns, name, replica, joinInts(reps))
	}
	rdir := filepath.Join(wdir, strconv.Itoa(replica))
	cs := containers(rdir)
	where := fmt.Sprintf("%s/%s replica %d", ns, name, replica)
	switch {
	case container != "":
		if !slices.Contains(cs, container) {
			return "", fmt.Errorf("container %q not found in %s; containers: [%s]", container, where, strings.Join(cs, " "))
		}
	case len(cs) == 1:
		container = cs[0]
	case len(cs) == 0:
		return "", fmt.Errorf("%s has no container logs in %s", where, rdir)
	default:
		return "", fmt.Errorf("a container name must be specified for %s, choose one of: [%s]", where, strings.Join(cs, " "))
	}
	p := filepath.Join(rdir, container+".log")
	if previous {
		if files, _ := containerlog.Files(containerlog.PreviousPath(p)); len(files) == 0 {
			return "", fmt.Errorf("container %q of %s has no previous run on this node", container, where)
		}
	}
	return p, nil
}

func replicas(dir string) ([]int, error) {
	var out []int
	for _, n := range dirNames(dir) {
		if i, err := strconv.Atoi(n); err == nil && i >= 0 {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out, nil
}

func dirNames(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// containers are the names with a log file in a replica's dir (a current
// one, or only a previous one).
func containers(dir string) []string {
	entries, _ := os.ReadDir(dir)
	seen := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.Contains(n, ".log") {
			continue
		}
		base := n[:strings.Index(n, ".log")]
		base = strings.TrimSuffix(base, ".previous")
		seen[base] = true
	}
	var out []string
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, strconv.Itoa(x))
	}
	return strings.Join(s, ", ")
}

// canonicalKind is a kind alias as manifests spell the kind.
func canonicalKind(k string) string {
	for _, kk := range []string{"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "Pod"} {
		if strings.EqualFold(kk, k) {
			return kk
		}
	}
	return k
}
