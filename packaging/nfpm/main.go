// Command nfpm builds the driftless Debian package with nfpm used as a
// library (`make deb` runs it from packaging/): it reads nfpm.yaml, fills
// in the version, architecture and binary, and writes
// OUT/driftless_<version>_<arch>.deb, whose path it prints.
//
// It lives in a module of its own (packaging/go.mod) so that the root
// module does not depend on nfpm.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

func main() {
	version := flag.String("version", "", "version as the Makefile has it (git describe: v1.2.3, v1.2.3-4-gabcdef0, dev)")
	arch := flag.String("arch", "", "GOARCH of the binary (amd64, arm64, ...)")
	binary := flag.String("binary", "", "the driftless binary to package")
	out := flag.String("out", "dist", "directory the package is written to")
	config := flag.String("config", "nfpm.yaml", "nfpm configuration")
	flag.Parse()
	path, err := build(*config, *version, *arch, *binary, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nfpm:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

func build(config, version, arch, binary, out string) (string, error) {
	if version == "" || arch == "" || binary == "" {
		return "", fmt.Errorf("-version, -arch and -binary are required")
	}
	if st, err := os.Stat(binary); err != nil {
		return "", err
	} else if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s: not an executable file", binary)
	}
	abs, err := filepath.Abs(binary)
	if err != nil {
		return "", err
	}
	vars := map[string]string{"VERSION": DebVersion(version), "ARCH": arch, "BINARY": abs}
	var unknown []string
	cfg, err := nfpm.ParseFileWithEnvMapping(config, func(name string) string {
		v, ok := vars[name]
		if !ok && !strings.HasPrefix(name, "NFPM_") { // NFPM_*PASSPHRASE: no signing
			unknown = append(unknown, name)
		}
		return v
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", config, err)
	}
	if len(unknown) > 0 {
		return "", fmt.Errorf("%s: unknown variables %v", config, unknown)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	if err := nfpm.Validate(info); err != nil {
		return "", err
	}
	pkg := deb.Default
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	target := filepath.Join(out, pkg.ConventionalFileName(info))
	f, err := os.CreateTemp(out, ".driftless-*.deb")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return target, os.Rename(f.Name(), target)
}

var (
	describeRE = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]+)$`)
	hashRE     = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
	invalidRE  = regexp.MustCompile(`[^A-Za-z0-9.+~]+`)
)

// DebVersion turns the Makefile's version (`git describe --tags --always
// --dirty`, or "dev") into a Debian version that starts with a digit and
// sorts as the releases do: v1.2.3 is 1.2.3, v1.2.3-rc1 is 1.2.3~rc1
// (before 1.2.3), v1.2.3-4-gabcdef0 (4 commits after the tag) is
// 1.2.3+4.gabcdef0 (after it), a bare commit id is 0.0.0~gitabcdef0,
// dev is 0.0.0~dev, and -dirty adds +dirty (or .dirty).
func DebVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	dirty := strings.HasSuffix(v, "-dirty")
	v = strings.TrimSuffix(v, "-dirty")
	var out string
	switch m := describeRE.FindStringSubmatch(v); {
	case m != nil:
		out = upstream(m[1]) + "+" + m[2] + ".g" + m[3]
	case hashRE.MatchString(v) && !strings.Contains(v, "."):
		out = "0.0.0~git" + v
	default:
		out = upstream(v)
	}
	if out == "" || out[0] < '0' || out[0] > '9' {
		out = "0.0.0~" + out
	}
	if dirty {
		if strings.Contains(out, "+") {
			out += ".dirty"
		} else {
			out += "+dirty"
		}
	}
	return strings.TrimSuffix(out, "~")
}

// upstream makes v a Debian upstream version without a revision: a
// hyphen (a pre-release) becomes ~, anything else not allowed a dot.
func upstream(v string) string {
	v = strings.ReplaceAll(v, "-", "~")
	return strings.Trim(invalidRE.ReplaceAllString(v, "."), ".")
}
