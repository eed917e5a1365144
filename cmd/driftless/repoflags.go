package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

// repoFlags are the flags shared by the commands that read the
// repository with no agent running (status, verify, plan, history).
type repoFlags struct {
	repo, statusBranch, output *string
	auth                       git.Auth
	// outputs are the -o values usable accepts (text and json unless
	// told otherwise).
	outputs []string
}

// addRepoFlags registers --repo (described as repoHelp), --status-branch,
// -o text|json and the credential flags.
func addRepoFlags(fs *flag.FlagSet, repoHelp string) *repoFlags {
	f := &repoFlags{
		repo:         fs.String("repo", "", repoHelp),
		statusBranch: fs.String("status-branch", status.DefaultBranch, "status branch"),
		output:       fs.String("o", "text", outputUsagePrefix+"text or json"),
		outputs:      []string{"text", "json"},
	}
	f.auth.RegisterFlags(fs)
	return f
}

// parseFlags parses args for every command; done means it ends now with code (0
// after -h, 2 for a bad flag: the flag package has said why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	// Completion learns a command's flags by running it with a collector
	// as its stderr: the command ends here, before doing anything.
	if c, ok := fs.Output().(*flagCollector); ok {
		c.sets = append(c.sets, fs)
		return 0, true
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}

// acceptOutputs makes -o take these formats (the first is the default).
func (f *repoFlags) acceptOutputs(fs *flag.FlagSet, formats ...string) {
	f.outputs = formats
	o := fs.Lookup("o")
	o.Usage = outputUsagePrefix + orList(formats)
	o.DefValue = formats[0]
	_ = o.Value.Set(formats[0])
}

// outputUsagePrefix starts the help of every -o that takes a format:
// completion offers the formats listed after it.
const outputUsagePrefix = "output format: "

// orList renders "a", "a or b", "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// usable reports whether --repo is set and -o is one of the accepted
// formats (text or json unless told), else prints usage to stderr.
func (f *repoFlags) usable(stderr io.Writer, ok bool, usage string) bool {
	if *f.repo == "" || !ok || !slices.Contains(f.outputs, *f.output) {
		fmt.Fprintln(stderr, usage)
		return false
	}
	return true
}
