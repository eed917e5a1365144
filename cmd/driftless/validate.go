package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"driftless.dev/driftless/manifest"
)

// validateReport is the JSON output of `driftless validate -o json`.
type validateReport struct {
	Valid     bool               `json:"valid"`
	Problems  []manifest.Problem `json:"problems"`
	Skipped   []manifest.Skipped `json:"skipped"`
	Warnings  []manifest.Problem `json:"warnings"`
	Workloads []string           `json:"workloads"`
	// Services are the Services of the commit (namespace/Service/name).
	Services []string `json:"services"`
	// Claims are the PersistentVolumeClaim documents of the commit.
	Claims []validateClaim `json:"claims"`
}

// validateClaim is one claim of `driftless validate -o json`.
type validateClaim struct {
	Namespace    string   `json:"namespace"`
	Name         string   `json:"name"`
	Storage      string   `json:"storage"`
	AccessModes  []string `json:"accessModes"`
	StorageClass string   `json:"storageClass"`
	// SharedPath is the shared directory of a host-path class's claim.
	SharedPath string `json:"sharedPath,omitempty"`
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "output format: text or json")
	requireSealed := fs.Bool("require-sealed-secrets", false, "a plain (unsealed) Secret is a problem, not a warning")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: driftless validate [-o text|json] [--require-sealed-secrets] PATH...\n\nLints manifest files or directories as the agent would load them: exit 0 when valid, 1 when not, 2 on usage errors.")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 || (*output != "text" && *output != "json") {
		fs.Usage()
		return 2
	}
	var files []manifest.File
	for _, p := range fs.Args() {
		fl, err := manifest.ReadDir(p)
		if err != nil {
			fmt.Fprintf(stderr, "driftless validate: %v\n", err)
			return 2
		}
		// Paths are reported as given on the command line.
		for i := range fl {
			if fl[i].Path != filepath.ToSlash(p) {
				fl[i].Path = filepath.ToSlash(filepath.Join(p, fl[i].Path))
			}
		}
		files = append(files, fl...)
	}
	rep := validateReport{Problems: []manifest.Problem{}, Skipped: []manifest.Skipped{}, Warnings: []manifest.Problem{}, Workloads: []string{}, Services: []string{}, Claims: []validateClaim{}}
	set, err := manifest.LoadWith(files, manifest.LoadOptions{RequireSealedSecrets: *requireSealed})
	if err != nil {
		var perrs manifest.Errors
		if !errors.As(err, &perrs) {
			fmt.Fprintf(stderr, "driftless validate: %v\n", err)
			return 1
		}
		rep.Problems = perrs
	} else {
		rep.Valid = true
		rep.Skipped = append(rep.Skipped, set.Skipped...)
		rep.Warnings = append(rep.Warnings, set.Warnings...)
		for _, w := range set.Workloads {
			rep.Workloads = append(rep.Workloads, w.Ref.String())
		}
		for _, c := range set.CronJobs {
			rep.Workloads = append(rep.Workloads, c.Ref.String())
		}
		for _, sv := range set.Services {
			rep.Services = append(rep.Services, sv.Ref().String())
		}
		for _, c := range set.Claims {
			rep.Claims = append(rep.Claims, validateClaim{Namespace: c.Namespace, Name: c.Name, Storage: c.Storage.String(),
				AccessModes: append([]string{}, c.AccessModes...), StorageClass: c.StorageClass, SharedPath: c.SharedPath})
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		for _, s := range rep.Skipped {
			fmt.Fprintf(stdout, "skipped: %s\n", s)
		}
		for _, w := range rep.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		for _, c := range rep.Claims {
			fmt.Fprintf(stdout, "claim %s/%s %s %s class=%s\n", c.Namespace, c.Name, c.Storage, shortModes(c.AccessModes), orDash(c.StorageClass))
		}
		if rep.Valid {
			fmt.Fprintf(stdout, "valid: %d file(s), %d workload(s), %d service(s), %d skipped\n", len(files), len(rep.Workloads), len(rep.Services), len(rep.Skipped))
		} else {
			fmt.Fprintf(stdout, "invalid: %d problem(s) in %d file(s)\n", len(rep.Problems), len(files))
		}
	}
	if !rep.Valid {
		return 1
	}
	return 0
}
