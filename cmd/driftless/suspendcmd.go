package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	yaml "sigs.k8s.io/yaml/goyaml.v3"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/sources/git"
)

// runSuspend is `driftless suspend|resume WORKLOAD --repo URL`: one commit
// on the desired branch that sets (or removes) the workload's
// driftless.dev/suspended annotation, pushed with the git CLI, so the
// user's identity, credentials and signing configuration apply and
// history shows who did it; --ssh-key, --known-hosts, --token-file and
// --basic-auth-file give it the credentials the agent uses instead.
func runSuspend(verb string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", "", "desired repository URL (pushed to)")
	branch := fs.String("branch", git.DefaultBranch, "desired branch")
	author := fs.String("author", "", `commit author "Name <email>" (default: git config user.name/user.email)`)
	var auth git.Auth
	auth.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: driftless %s WORKLOAD --repo URL [--branch B] [--author \"Name <email>\"]\n\nWORKLOAD is name, namespace/name or namespace/Kind/name.\n\n", verb)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, reorderFlags(fs, args)); done {
		return code
	}
	if *repo == "" || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds, err := auth.CLIEnv(*repo)
	if err != nil {
		fmt.Fprintf(stderr, "driftless %s: %v (nothing committed)\n", verb, err)
		return 1
	}
	msg, err := setSuspended(ctx, *repo, *branch, fs.Arg(0), *author, verb == "suspend", creds)
	if err != nil {
		fmt.Fprintf(stderr, "driftless %s: %v (nothing committed)\n", verb, err)
		return 1
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

// setSuspended clones, edits, commits and pushes; creds is the git CLI's
// environment for the credential flags (none: the user's own setup).
func setSuspended(ctx context.Context, repo, branch, workload, author string, suspend bool, creds []string) (string, error) {
	dir, err := os.MkdirTemp("", "driftless-suspend-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if out, err := gitCmd(ctx, "", creds, "clone", "--quiet", "--depth", "1", "--branch", branch, "--single-branch", repo, dir); err != nil {
		return "", fmt.Errorf("clone %s: %s", branch, out)
	}
	doc, err := findWorkload(dir, workload)
	if err != nil {
		return "", err
	}
	verb := "suspend"
	if !suspend {
		verb = "resume"
	}
	b, err := os.ReadFile(doc.path)
	if err != nil {
		return "", err
	}
	changed, err := setAnnotation(b, doc.line, suspend)
	if err != nil {
		return "", fmt.Errorf("%s:%d: %w", doc.rel, doc.line, err)
	}
	if changed == nil {
		state := "suspended"
		if !suspend {
			state = "not suspended"
		}
		return fmt.Sprintf("%s is %s already; nothing committed", doc.ref, state), nil
	}
	if err := os.WriteFile(doc.path, changed, 0o644); err != nil {
		return "", err
	}
	env, authorArg := identity(ctx, dir, author, verb)
	commitArgs := []string{"commit", "--quiet", "-m", fmt.Sprintf("%s %s\n\nBy driftless %s: %s", verb, doc.ref, verb, suspendNote(suspend)), "--", doc.rel}
	if authorArg != "" {
		commitArgs = append([]string{"commit", "--quiet", "--author", authorArg}, commitArgs[2:]...)
	}
	if out, err := gitCmd(ctx, dir, env, commitArgs...); err != nil {
		return "", fmt.Errorf("commit: %s", out)
	}
	if out, err := gitCmd(ctx, dir, append(env, creds...), "push", "--quiet", "origin", "HEAD:refs/heads/"+branch); err != nil {
		return "", fmt.Errorf("push to %s: %s", branch, out)
	}
	head, _ := gitCmd(ctx, dir, nil, "rev-parse", "--short", "HEAD")
	return fmt.Sprintf("%s %s: commit %s pushed to %s", verb, doc.ref, strings.TrimSpace(head), branch), nil
}

func suspendNote(suspend bool) string {
	if suspend {
		return "the leader keeps its placement and templates as they are until it is resumed."
	}
	return "the leader applies its manifest again."
}

// identity is how the commit is authored: --author, else the user's git
// identity, else one naming the command and the host (never a failure
// for lack of an identity).
func identity(ctx context.Context, dir, author, verb string) (env []string, authorArg string) {
	if author != "" {
		name, email := author, ""
		if i := strings.Index(author, "<"); i > 0 && strings.HasSuffix(author, ">") {
			name, email = strings.TrimSpace(author[:i]), author[i+1:len(author)-1]
		}
		return []string{"GIT_COMMITTER_NAME=" + name, "GIT_COMMITTER_EMAIL=" + email}, fmt.Sprintf("%s <%s>", name, email)
	}
	n, _ := gitCmd(ctx, dir, nil, "config", "user.name")
	e, _ := gitCmd(ctx, dir, nil, "config", "user.email")
	if strings.TrimSpace(n) != "" && strings.TrimSpace(e) != "" {
		return nil, ""
	}
	host, _ := os.Hostname()
	name, email := "driftless "+verb, "driftless@"+host
	return []string{"GIT_AUTHOR_NAME=" + name, "GIT_AUTHOR_EMAIL=" + email, "GIT_COMMITTER_NAME=" + name, "GIT_COMMITTER_EMAIL=" + email}, ""
}

func gitCmd(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GIT_TERMINAL_PROMPT=0"), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// workloadDoc is where a workload's document starts.
type workloadDoc struct {
	ref       manifest.Ref
	path, rel string
	line      int
}

var workloadKinds = map[string]bool{"Deployment": true, "DaemonSet": true, "StatefulSet": true, "ReplicaSet": true, "ReplicationController": true, "Job": true, "CronJob": true, "Pod": true}

// findWorkload finds the one document of a workload among the manifests
// of dir, whether or not the commit validates (a broken commit may be
// why the user suspends).
func findWorkload(dir, workload string) (workloadDoc, error) {
	files, err := manifest.ReadDir(dir)
	if err != nil {
		return workloadDoc{}, err
	}
	var found []workloadDoc
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader(f.Data))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); err != nil {
				if !errors.Is(err, io.EOF) {
					break // a file that does not parse holds no workload we can edit
				}
				break
			}
			var h struct {
				Kind     string `yaml:"kind"`
				Metadata struct {
					Name, Namespace string
				} `yaml:"metadata"`
			}
			if n.Decode(&h) != nil || !workloadKinds[h.Kind] {
				continue
			}
			ns := h.Metadata.Namespace
			if ns == "" {
				ns = "default"
			}
			ref := manifest.Ref{Namespace: ns, Kind: h.Kind, Name: h.Metadata.Name}
			if matchWorkload(workload, ref) {
				found = append(found, workloadDoc{ref: ref, path: filepath.Join(dir, filepath.FromSlash(f.Path)), rel: f.Path, line: n.Line})
			}
		}
	}
	switch len(found) {
	case 0:
		return workloadDoc{}, fmt.Errorf("no workload %q in the repository", workload)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, d := range found {
		names = append(names, d.ref.String())
	}
	sort.Strings(names)
	return workloadDoc{}, fmt.Errorf("%q names several workloads (%s): say namespace/Kind/name", workload, strings.Join(names, ", "))
}

// setAnnotation sets (or removes) driftless.dev/suspended in the
// metadata of the document starting at line of a file, by editing lines
// so that the rest of the file stays as the user wrote it. It returns nil
// when nothing changes.
func setAnnotation(file []byte, line int, suspend bool) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(file))
	var doc *yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return nil, fmt.Errorf("document not found again: %v", err)
		}
		if n.Line == line {
			doc = &n
			break
		}
	}
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	meta := mapValue(root, "metadata")
	if meta == nil || meta.Kind != yaml.MappingNode {
		return nil, errors.New("no metadata mapping")
	}
	if meta.Style&yaml.FlowStyle != 0 {
		return nil, errors.New("metadata is written in flow style ({...}); write it as a block to suspend it this way, or add the annotation driftless.dev/suspended: \"true\" by hand")
	}
	lines := strings.SplitAfter(string(file), "\n")
	ann := mapValue(meta, "annotations")
	key := manifest.AnnotationSuspended
	if ann != nil && ann.Kind == yaml.MappingNode && ann.Style&yaml.FlowStyle != 0 {
		return nil, errors.New("metadata.annotations is written in flow style ({...}); write it as a block, or edit the annotation by hand")
	}
	var cur *yaml.Node
	if ann != nil && ann.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(ann.Content); i += 2 {
			if ann.Content[i].Value == key {
				cur = ann.Content[i]
			}
		}
	}
	if suspend {
		if cur != nil {
			if v := mapValue(ann, key); v != nil && v.Value == "true" {
				return nil, nil
			}
			// Another value: replace its line.
			indent := strings.Repeat(" ", cur.Column-1)
			lines[cur.Line-1] = fmt.Sprintf("%s%s: \"true\"\n", indent, key)
			return []byte(strings.Join(lines, "")), nil
		}
		if ann != nil && ann.Kind == yaml.MappingNode && len(ann.Content) > 0 {
			first := ann.Content[0]
			insert := fmt.Sprintf("%s%s: \"true\"\n", strings.Repeat(" ", first.Column-1), key)
			return insertLine(lines, first.Line-1, insert), nil
		}
		// No annotations yet: a block under metadata, at its keys'
		// indentation, right after the metadata: line.
		keyNode := meta.Content[0]
		indent := strings.Repeat(" ", keyNode.Column-1)
		block := fmt.Sprintf("%sannotations:\n%s  %s: \"true\"\n", indent, indent, key)
		if ann != nil { // annotations: with no value (null)
			for i := 0; i+1 < len(meta.Content); i += 2 {
				if meta.Content[i].Value == "annotations" {
					lines[meta.Content[i].Line-1] = ""
				}
			}
		}
		return insertLine(lines, keyNode.Line-1, block), nil
	}
	if cur == nil {
		return nil, nil
	}
	lines[cur.Line-1] = ""
	if len(ann.Content) == 2 {
		// It was the only annotation: the annotations: line goes too.
		for i := 0; i+1 < len(meta.Content); i += 2 {
			if meta.Content[i].Value == "annotations" {
				lines[meta.Content[i].Line-1] = ""
			}
		}
	}
	return []byte(strings.Join(lines, "")), nil
}

func insertLine(lines []string, at int, text string) []byte {
	out := append([]string{}, lines[:at]...)
	out = append(out, text)
	out = append(out, lines[at:]...)
	return []byte(strings.Join(out, ""))
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
