package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
)

// TestCommandsDispatched: completion's list of commands is run's.
func TestCommandsDispatched(t *testing.T) {
	for _, c := range commands {
		code, out, errs := runCmd(c.name, "-h")
		if code != 0 || strings.Contains(errs, "unknown command") || strings.Contains(out, "unknown command") {
			t.Errorf("%s -h: %d %s", c.name, code, errs)
		}
		if !strings.Contains(usage, "driftless "+c.name+" ") && !strings.Contains(usage, "driftless "+c.name+"\n") {
			t.Errorf("usage does not list %s", c.name)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range shells {
		code, out, errs := runCmd("completion", sh)
		if code != 0 {
			t.Fatalf("completion %s: %d %s", sh, code, errs)
		}
		for _, c := range commands {
			if !strings.Contains(out, c.name) {
				t.Errorf("%s script lacks command %s", sh, c.name)
			}
			for _, s := range c.subs {
				if !strings.Contains(out, s) {
					t.Errorf("%s script lacks %s %s", sh, c.name, s)
				}
			}
		}
		// Flags come from the commands' flag sets: the agent's, history's,
		// events' and get's own, -o with its formats.
		for _, w := range []string{"gossip-key-file", "allowed-signers", "since", "status-branch", "text wide json yaml", "require-sealed-secrets", "tail"} {
			if !strings.Contains(out, w) {
				t.Errorf("%s script lacks %q", sh, w)
			}
		}
		// Each shell parses its script (bash must be there; zsh and fish
		// are checked when installed).
		if sh == "bash" {
			testenv.Require(t, "bash")
		}
		if path, err := exec.LookPath(sh); err == nil {
			f := filepath.Join(t.TempDir(), "driftless."+sh)
			os.WriteFile(f, []byte(out), 0o644)
			if b, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, b)
			}
		}
	}
	if code, _, errs := runCmd("completion", "tcsh"); code != 2 || !strings.Contains(errs, "usage: driftless completion") {
		t.Errorf("tcsh: %d %s", code, errs)
	}
	if code, _, errs := runCmd("completion"); code != 2 || !strings.Contains(errs, "source <(driftless completion bash)") {
		t.Errorf("no shell: %d %s", code, errs)
	}
}

// TestBashCompletes runs the bash function on a few command lines.
func TestBashCompletes(t *testing.T) {
	testenv.Require(t, "bash")
	_, script, _ := runCmd("completion", "bash")
	f := filepath.Join(t.TempDir(), "driftless.bash")
	os.WriteFile(f, []byte(script), 0o644)
	for _, c := range []struct{ line, want string }{
		{"driftless ev", "events"},
		{"driftless ", "agent validate status get events plan verify history suspend resume logs reconcile diff secret completion version"},
		{"driftless get ", "nodes workloads replicas services volumes"},
		{"driftless get replicas -o ", "text wide json yaml"},
		{"driftless status -o ", "text json"},
		{"driftless events --si", "--since"},
		{"driftless history --repo ", ""},
		{"driftless secret ", "seal unseal keygen"},
		{"driftless logs --fo", "--follow"},
	} {
		words := strings.Split(c.line, " ")
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + f + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_driftless\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command("bash", "-c", prog).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != c.want {
			t.Errorf("%q: %q (%v), want %q", c.line, got, err, c.want)
		}
	}
}
