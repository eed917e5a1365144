package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// repoFlags are the flags shared by the commands that read the
// repository with no agent running (status, verify, plan, history).
type repoFlags struct {
	repo, statusBranch, output *string
	auth                       git.Auth
}

// addRepoFlags registers --repo (described as repoHelp), --status-branch,
// -o text|json and the credential flags.
func addRepoFlags(fs *flag.FlagSet, repoHelp string) *repoFlags {
	f := &repoFlags{
		repo:         fs.String("repo", "", repoHelp),
		statusBranch: fs.String("status-branch", status.DefaultBranch, "status branch"),
		output:       fs.String("o", "text", "output format: text or json"),
	}
	f.auth.RegisterFlags(fs)
	return f
}

// parseFlags parses args for every command; done means it ends now with code (0
// after -h, 2 for a bad flag: the flag package has said why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}

// usable reports whether --repo is set and -o is text or json, else
// prints usage to stderr.
func (f *repoFlags) usable(stderr io.Writer, ok bool, usage string) bool {
	if *f.repo == "" || !ok || (*f.output != "text" && *f.output != "json") {
		fmt.Fprintln(stderr, usage)
		return false
	}
	return true
}
