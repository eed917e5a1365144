package netproxy

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"driftless.dev/driftless/services"
)

// Proxy applies rendered rules to this network namespace's iptables.
// Safe for one caller at a time.
type Proxy struct {
	mu sync.Mutex
	// last is, per table, the chains the previous Sync left in the
	// kernel; nil until a full sync succeeded (and after any failure).
	last map[string]chainSet
	// Restores counts the iptables-restore calls, Partial those that
	// wrote only the chains that changed (for tests and benchmarks).
	Restores, Partial int
}

// hooks are the jumps from the built-in chains into driftless's, added
// once (checked with -C first, so never twice).
var hooks = []struct{ table, chain, rule string }{
	{"nat", "PREROUTING", "-m comment --comment driftless-services -j " + ChainServices},
	{"nat", "OUTPUT", "-m comment --comment driftless-services -j " + ChainServices},
	{"nat", "POSTROUTING", "-m comment --comment driftless-postrouting -j " + ChainPostrouting},
	{"filter", "INPUT", "-m comment --comment driftless-reject -j " + ChainReject},
	{"filter", "FORWARD", "-m comment --comment driftless-reject -j " + ChainReject},
	{"filter", "OUTPUT", "-m comment --comment driftless-reject -j " + ChainReject},
}

// Sync makes the kernel's driftless chains exactly those of recs, one
// iptables-restore per table and change. After a first full write it
// writes only the chains whose rules changed (a readiness change rewrites
// one Service's chains, not every Service's), and deletes the chains of
// Services that are gone in the same transaction. A Sync that changes
// nothing reads the chains back and rewrites the table whole when the
// kernel differs, whoever changed it: level-triggered.
func (p *Proxy) Sync(ctx context.Context, cfg Config, recs []services.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := Render(cfg, recs)
	if p.last == nil {
		p.last = map[string]chainSet{}
	}
	checked := false
	for _, t := range []struct{ name, text string }{{"nat", want.NAT}, {"filter", want.Filter}} {
		wc := parseChains(t.text)
		last, ok := p.last[t.name]
		if ok {
			if text, changed := wc.diff(t.name, last); changed {
				p.Restores++
				p.Partial++
				if err := restore(ctx, text); err != nil {
					delete(p.last, t.name) // write it whole next time
					return fmt.Errorf("iptables-restore (%s table): %w", t.name, err)
				}
				p.last[t.name] = wc
				continue
			}
		}
		checked = true
		have, err := save(ctx, t.name)
		if err != nil {
			return err
		}
		if ok && sameRules(t.text, have) {
			continue
		}
		p.Restores++
		if err := restore(ctx, withStaleRemoved(t.text, have)); err != nil {
			delete(p.last, t.name)
			return fmt.Errorf("iptables-restore (%s table): %w", t.name, err)
		}
		p.last[t.name] = wc
	}
	if !checked {
		return nil // the jumps were checked with the last full look
	}
	return p.hook(ctx)
}

// chainSet is the driftless chains of one table's restore text: their
// order of declaration and each one's rules.
type chainSet struct {
	order []string
	rules map[string][]string
}

func parseChains(text string) chainSet {
	c := chainSet{rules: map[string][]string{}}
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			if _, dup := c.rules[name]; !dup {
				c.order = append(c.order, name)
				c.rules[name] = nil
			}
		case strings.HasPrefix(l, "-A "):
			f := strings.SplitN(l, " ", 3)
			c.rules[f[1]] = append(c.rules[f[1]], l)
		}
	}
	return c
}

// diff is the restore text turning last into c: the chains whose rules
// differ (declared, so flushed, then written), those gone (flushed, then
// deleted). changed is false when there is nothing to write.
func (c chainSet) diff(table string, last chainSet) (text string, changed bool) {
	var decl, body, del strings.Builder
	for _, name := range c.order {
		if old, ok := last.rules[name]; ok && slices.Equal(old, c.rules[name]) {
			continue
		}
		changed = true
		decl.WriteString(":" + name + " - [0:0]\n")
		for _, r := range c.rules[name] {
			body.WriteString(r + "\n")
		}
	}
	for _, name := range last.order {
		if _, ok := c.rules[name]; !ok {
			changed = true
			decl.WriteString(":" + name + " - [0:0]\n")
			del.WriteString("-X " + name + "\n")
		}
	}
	return "*" + table + "\n" + decl.String() + body.String() + del.String() + "COMMIT\n", changed
}

// hook adds the jumps into driftless's chains that are missing.
func (p *Proxy) hook(ctx context.Context) error {
	for _, h := range hooks {
		args := append([]string{"-w", "5", "-t", h.table, "-C", h.chain}, strings.Fields(h.rule)...)
		if err := run(ctx, "iptables", nil, args...); err == nil {
			continue
		}
		args[4] = "-I"
		if err := run(ctx, "iptables", nil, args...); err != nil {
			return fmt.Errorf("hook %s %s: %w", h.table, h.chain, err)
		}
	}
	return nil
}

// Cleanup removes every driftless chain and hook (for --service-proxy
// off and tests).
func Cleanup(ctx context.Context) error {
	for _, h := range hooks {
		args := append([]string{"-w", "5", "-t", h.table, "-D", h.chain}, strings.Fields(h.rule)...)
		for run(ctx, "iptables", nil, args...) == nil {
		}
	}
	for _, table := range []string{"nat", "filter"} {
		have, err := save(ctx, table)
		if err != nil {
			return err
		}
		text := withStaleRemoved("*"+table+"\nCOMMIT\n", have)
		if err := restore(ctx, text); err != nil {
			return err
		}
	}
	return nil
}

// owned reports whether a chain is driftless's.
func owned(chain string) bool {
	return strings.HasPrefix(chain, "DRIFTLESS-") || strings.HasPrefix(chain, SvcPrefix) || strings.HasPrefix(chain, SepPrefix)
}

// ownedLines is the chains driftless owns in an iptables-save or
// -restore text, sorted, and the number of rules in each.
func ownedLines(text string) (chains []string, rules map[string]int) {
	c := parseChains(text)
	rules = map[string]int{}
	for _, name := range c.order {
		if !owned(name) {
			continue
		}
		chains = append(chains, name)
		if n := len(c.rules[name]); n > 0 {
			rules[name] = n
		}
	}
	slices.Sort(chains)
	return chains, rules
}

// sameRules reports whether the kernel (have, iptables-save output) holds
// driftless's chains as want has them: the same chains with as many
// rules each (iptables-save spells rules its own way, so the text is
// not compared; what was last applied is, by Sync).
func sameRules(want, have string) bool {
	wc, wr := ownedLines(want)
	hc, hr := ownedLines(have)
	return slices.Equal(wc, hc) && maps.Equal(wr, hr)
}

// withStaleRemoved adds to want (one table's restore text) the deletion
// of driftless chains the kernel has and want does not: flushed by their
// declaration, then deleted, in the same transaction.
func withStaleRemoved(want, have string) string {
	wc, _ := ownedLines(want)
	hc, _ := ownedLines(have)
	keep := map[string]bool{}
	for _, c := range wc {
		keep[c] = true
	}
	var stale []string
	for _, c := range hc {
		if !keep[c] {
			stale = append(stale, c)
		}
	}
	if len(stale) == 0 {
		return want
	}
	i := strings.LastIndex(want, "COMMIT")
	var b strings.Builder
	head, _, _ := strings.Cut(want[:i], "\n")
	b.WriteString(head + "\n")
	for _, c := range stale {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	b.WriteString(want[len(head)+1 : i])
	for _, c := range stale {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func save(ctx context.Context, table string) (string, error) {
	var out bytes.Buffer
	if err := run(ctx, "iptables-save", &out, "-t", table); err != nil {
		return "", fmt.Errorf("iptables-save -t %s: %w", table, err)
	}
	return out.String(), nil
}

func restore(ctx context.Context, text string) error {
	cmd := exec.CommandContext(ctx, "iptables-restore", "--noflush", "-w", "5")
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func run(ctx context.Context, name string, stdout *bytes.Buffer, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// EnableBridgeFilter makes bridged traffic pass through iptables (as
// kube-proxy requires), so that a replica reaching a Service whose
// endpoint is on its own bridge gets its reply un-NATed. It reports
// whether that is in effect.
func EnableBridgeFilter() bool {
	const p = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "1" {
		return true
	}
	return os.WriteFile(p, []byte("1"), 0o644) == nil
}
