package pkg

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/pause"
)

// testVersion is the VERSION the tests build with: a `git describe` form,
// whose Debian form is debVersion.
const (
	testVersion = "v1.2.3-4-gabcdef0"
	debVersion  = "1.2.3+4.gabcdef0"
)

// debArch is dpkg's name of GOARCH (nfpm's mapping).
var debArch = map[string]string{"386": "i386", "ppc64le": "ppc64el", "mips64le": "mips64el", "mipsle": "mipsel", "arm": "armhf"}

var ci = os.Getenv("CI") == "true"

// need returns the path of tool, or fails (CI=true) or skips the test.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if ci {
			t.Fatalf("%s is missing (scripts/install-deps.sh installs it): %v", tool, err)
		}
		t.Skipf("%s is missing: %v", tool, err)
	}
	return p
}

// needRoot: dpkg installs (even into a private root) as root only.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("dpkg -i needs root (make test runs as root)")
		}
		t.Skip("dpkg -i into a private root needs root")
	}
}

// run runs name args in dir and returns its combined output, failing the
// test when it fails. The environment is the test's, without the make
// variables of an enclosing `make test`.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := command(dir, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func command(dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// fileState is what the test must leave untouched on the host.
func fileState(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "absent"
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestDebPackage builds the package with `make deb`, checks its metadata
// and files with dpkg-deb, installs, upgrades, removes and purges it with
// dpkg into a private root (the host's dpkg database and files are not
// touched: DPKG_ROOT keeps the scripts off its systemd), runs the
// installed binary, and verifies the unit with systemd-analyze when there.
func TestDebPackage(t *testing.T) {
	need(t, "make")
	need(t, "go")
	need(t, "dpkg-deb")
	root := repoRoot(t)
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")
	out := run(t, root, "make", "deb", "VERSION="+testVersion, "BIN="+filepath.Join(tmp, "bin"), "DIST="+dist)

	arch := runtime.GOARCH
	if a, ok := debArch[arch]; ok {
		arch = a
	}
	deb := filepath.Join(dist, "driftless_"+debVersion+"_"+arch+".deb")
	if !strings.Contains(out, deb) {
		t.Errorf("make deb does not print %s:\n%s", deb, out)
	}
	if debs, _ := filepath.Glob(filepath.Join(dist, "*")); len(debs) != 1 || debs[0] != deb {
		t.Fatalf("make deb made %v, want only %s", debs, deb)
	}

	// Metadata.
	fields := map[string]string{}
	for _, line := range strings.Split(run(t, tmp, "dpkg-deb", "--field", deb), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			fields[k] = v
		}
	}
	for k, want := range map[string]string{
		"Package":      "driftless",
		"Version":      debVersion,
		"Architecture": arch,
		"Maintainer":   "driftless maintainers",
		"Depends":      "containerd, runc, iptables, git",
		"Recommends":   "containernetworking-plugins",
	} {
		if fields[k] != want {
			t.Errorf("%s: %q, want %q", k, fields[k], want)
		}
	}
	if fields["Description"] == "" {
		t.Error("no Description")
	}
	info := run(t, tmp, "dpkg-deb", "--info", deb)
	for _, s := range []string{"conffiles", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, s) {
			t.Errorf("dpkg-deb --info lists no %s:\n%s", s, info)
		}
	}
	control := filepath.Join(tmp, "control")
	run(t, tmp, "dpkg-deb", "--control", deb, control)
	if b, _ := os.ReadFile(filepath.Join(control, "conffiles")); strings.TrimSpace(string(b)) != "/etc/driftless/agent.yaml" {
		t.Errorf("conffiles: %q, want /etc/driftless/agent.yaml", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		run(t, tmp, "sh", "-n", filepath.Join(control, s))
	}

	// Files: path -> mode and owner.
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, tmp, "dpkg-deb", "--contents", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: %q", line)
		}
		files[f[len(f)-1]] = f[0] + " " + f[1]
	}
	var regular []string
	for p, m := range files {
		if !strings.HasPrefix(m, "d") {
			regular = append(regular, p)
		}
	}
	sort.Strings(regular)
	if want := []string{"./etc/driftless/agent.yaml", "./lib/systemd/system/driftless.service", "./usr/bin/driftless"}; strings.Join(regular, " ") != strings.Join(want, " ") {
		t.Errorf("files %v, want %v", regular, want)
	}
	for p, want := range map[string]string{
		"./usr/bin/driftless":                    "-rwxr-xr-x root/root",
		"./lib/systemd/system/driftless.service": "-rw-r--r-- root/root",
		"./etc/driftless/agent.yaml":             "-rw-r--r-- root/root",
		"./var/lib/driftless/":                   "drwx------ root/root",
	} {
		if files[p] != want {
			t.Errorf("%s: %q, want %q", p, files[p], want)
		}
	}

	// Install into a private root.
	need(t, "dpkg")
	needRoot(t)
	host := map[string]string{}
	for _, p := range []string{"/var/lib/dpkg/status", "/usr/bin/driftless", "/etc/driftless/agent.yaml", "/lib/systemd/system/driftless.service"} {
		host[p] = fileState(p)
	}
	r := filepath.Join(tmp, "root")
	admin := filepath.Join(r, "var/lib/dpkg")
	for _, d := range []string{"info", "updates", "triggers"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) string {
		t.Helper()
		return run(t, tmp, "dpkg", append([]string{"--root=" + r, "--log=" + filepath.Join(r, "dpkg.log"),
			"--force-depends", "--force-script-chrootless", "--force-confold"}, args...)...)
	}
	out = dpkg("-i", deb)
	if !strings.Contains(out, "systemctl enable --now driftless") {
		t.Errorf("postinst does not say how to enable the agent:\n%s", out)
	}
	if s := dpkg("-s", "driftless"); !strings.Contains(s, "Status: install ok installed") || !strings.Contains(s, "Version: "+debVersion) {
		t.Errorf("dpkg -s:\n%s", s)
	}
	// The binary is its own pause process, which runs in an empty root.
	if err := pause.CheckStatic(filepath.Join(r, "usr/bin/driftless")); err != nil {
		t.Error(err)
	}
	if got := run(t, tmp, filepath.Join(r, "usr/bin/driftless"), "version"); strings.TrimSpace(got) != "driftless "+testVersion {
		t.Errorf("driftless version: %q, want %q", got, "driftless "+testVersion)
	}
	if st, err := os.Stat(filepath.Join(r, "var/lib/driftless")); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/driftless: %v %v, want a directory of mode 0700", st.Mode(), err)
	}
	for inst, src := range map[string]string{"etc/driftless/agent.yaml": "packaging/agent.yaml", "lib/systemd/system/driftless.service": "packaging/driftless.service"} {
		a, _ := os.ReadFile(filepath.Join(r, inst))
		b, _ := os.ReadFile(filepath.Join(root, src))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("/%s is not %s", inst, src)
		}
	}
	// The installed configuration is read, and the agent refuses to start
	// until it names a repository.
	cmd := command(tmp, filepath.Join(r, "usr/bin/driftless"), "agent", "--config", filepath.Join(r, "etc/driftless/agent.yaml"))
	if b, err := cmd.CombinedOutput(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(b), "repository URL is required") {
		t.Errorf("driftless agent with the example config: %v, want exit 2 for the missing repository:\n%s", err, b)
	}
	checkUnit(t, filepath.Join(r, "lib/systemd/system/driftless.service"))

	// Upgrade (the same package again): an edited conffile is kept, and
	// the first-install notice is not repeated.
	conf := filepath.Join(r, "etc/driftless/agent.yaml")
	edited := "repo: file:///srv/fleet.git\n"
	if err := os.WriteFile(conf, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := dpkg("-i", deb); strings.Contains(out, "systemctl enable") {
		t.Errorf("upgrade repeats the first-install notice:\n%s", out)
	}
	if b, _ := os.ReadFile(conf); string(b) != edited {
		t.Errorf("upgrade replaced the edited config: %q", b)
	}

	// Remove keeps the config; purge removes it.
	dpkg("-r", "driftless")
	if _, err := os.Stat(filepath.Join(r, "usr/bin/driftless")); !os.IsNotExist(err) {
		t.Errorf("after dpkg -r, /usr/bin/driftless: %v", err)
	}
	if b, _ := os.ReadFile(conf); string(b) != edited {
		t.Errorf("dpkg -r removed the config: %q", b)
	}
	dpkg("--purge", "driftless")
	if _, err := os.Stat(conf); !os.IsNotExist(err) {
		t.Errorf("after dpkg --purge, /etc/driftless/agent.yaml: %v", err)
	}

	for p, before := range host {
		if fileState(p) != before {
			t.Errorf("the host's %s changed", p)
		}
	}
}

// checkUnit checks the systemd unit's settings and, when systemd-analyze
// is there, verifies it; a complaint that /usr/bin/driftless is missing
// (it is in the private root, not on the host) is ignored.
func checkUnit(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = append(unit[k], v)
		}
	}
	for k, want := range map[string]string{
		"ExecStart":   "/usr/bin/driftless agent --config /etc/driftless/agent.yaml",
		"KillMode":    "process",
		"Restart":     "always",
		"RestartSec":  "2",
		"LimitNOFILE": "1048576",
		"Type":        "simple",
		"WantedBy":    "multi-user.target",
	} {
		if strings.Join(unit[k], " ") != want {
			t.Errorf("unit %s=%q, want %q", k, unit[k], want)
		}
	}
	after := strings.Join(unit["After"], " ")
	for _, u := range []string{"network-online.target", "containerd.service"} {
		if !strings.Contains(after, u) {
			t.Errorf("unit After=%q lacks %s", after, u)
		}
	}
	if !strings.Contains(strings.Join(unit["Wants"], " "), "network-online.target") {
		t.Errorf("unit Wants=%q lacks network-online.target", unit["Wants"])
	}
	for _, k := range []string{"Requires", "BindsTo", "PartOf", "Requisite", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateNetwork", "PrivateDevices", "PrivateMounts", "ProtectKernelTunables", "MountFlags"} {
		if v, ok := unit[k]; ok {
			t.Errorf("unit sets %s=%q: a containerd restart would stop the agent, or its mounts and sysctls would not reach the host", k, v)
		}
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze missing: unit not verified")
		return
	}
	out, err := command(filepath.Dir(path), "systemd-analyze", "verify", path).CombinedOutput()
	if err == nil {
		return
	}
	var other []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.Contains(line, "/usr/bin/driftless") {
			other = append(other, line)
		}
	}
	if len(other) > 0 || len(out) == 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMakeInstall installs with `make install` into a DESTDIR, for the
// default PREFIX (/usr/local) and PREFIX=/usr: the binary, the unit run
// from PREFIX, the example config, which a second install keeps.
func TestMakeInstall(t *testing.T) {
	need(t, "make")
	need(t, "go")
	root := repoRoot(t)
	tmp := t.TempDir()
	bin := "BIN=" + filepath.Join(tmp, "bin")
	for _, c := range []struct{ prefix, arg string }{{"/usr/local", ""}, {"/usr", "PREFIX=/usr"}} {
		dest := filepath.Join(tmp, "dest"+strings.ReplaceAll(c.prefix, "/", "-"))
		args := []string{"install", "VERSION=" + testVersion, bin, "DESTDIR=" + dest}
		if c.arg != "" {
			args = append(args, c.arg)
		}
		run(t, root, "make", args...)
		exe := filepath.Join(dest, c.prefix, "bin/driftless")
		if got := run(t, tmp, exe, "version"); strings.TrimSpace(got) != "driftless "+testVersion {
			t.Errorf("%s version: %q", exe, got)
		}
		unit, err := os.ReadFile(filepath.Join(dest, c.prefix, "lib/systemd/system/driftless.service"))
		if err != nil {
			t.Fatal(err)
		}
		if want := "ExecStart=" + c.prefix + "/bin/driftless agent --config /etc/driftless/agent.yaml\n"; !strings.Contains(string(unit), want) {
			t.Errorf("PREFIX=%s: the unit has no %q:\n%s", c.prefix, want, unit)
		}
		conf := filepath.Join(dest, "etc/driftless/agent.yaml")
		a, _ := os.ReadFile(conf)
		b, _ := os.ReadFile(filepath.Join(root, "packaging/agent.yaml"))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s is not packaging/agent.yaml", conf)
		}
		if st, err := os.Stat(filepath.Join(dest, "var/lib/driftless")); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("/var/lib/driftless: %v, want mode 0700", err)
		}
		edited := []byte("repo: file:///srv/fleet.git\n")
		if err := os.WriteFile(conf, edited, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, root, "make", args...)
		if got, _ := os.ReadFile(conf); !bytes.Equal(got, edited) {
			t.Errorf("a second make install replaced %s", conf)
		}
	}
}
