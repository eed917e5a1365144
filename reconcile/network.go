package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"driftless.dev/driftless/internal/atomicfile"
)

// networkRecord is what the agent keeps of a replica's wiring, in the
// replica's directory (DataDir/pods/<replica>/network.json), so that an
// agent restart knows the replica's address and which ports were
// published without asking the network again.
type networkRecord struct {
	ID    string        `json:"id"`
	IP    string        `json:"ip,omitempty"`
	Ports []PortMapping `json:"ports,omitempty"`
}

func (r *Reconciler) networkRecordPath(name string) string {
	return filepath.Join(r.cfg.DataDir, "pods", name, "network.json")
}

// readNetworkRecord returns the replica's record, from the cache or its
// file; ok is false when it has none.
func (r *Reconciler) readNetworkRecord(name string) (networkRecord, bool) {
	r.mu.Lock()
	rec, ok := r.networks[name]
	r.mu.Unlock()
	if ok {
		return rec, true
	}
	b, err := os.ReadFile(r.networkRecordPath(name))
	if err != nil {
		return networkRecord{}, false
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		r.log.Warn("unreadable network record; the replica's network is set up again", "replica", name, "err", err)
		return networkRecord{}, false
	}
	r.mu.Lock()
	r.networks[name] = rec
	r.mu.Unlock()
	return rec, true
}

func (r *Reconciler) writeNetworkRecord(name string, rec networkRecord) error {
	p := r.networkRecordPath(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	r.mu.Lock()
	r.networks[name] = rec
	r.mu.Unlock()
	return nil
}

func (r *Reconciler) forgetNetwork(name string) {
	r.mu.Lock()
	delete(r.networks, name)
	r.mu.Unlock()
	_ = os.Remove(r.networkRecordPath(name))
}

// attachmentID is the replica's name to the network. The node's name is
// part of it: agents sharing a host (a demo, tests) share its networks.
func (r *Reconciler) attachmentID(name string) string {
	id := name
	if r.cfg.Node != "" {
		id = r.cfg.Node + "_" + name
	}
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			return c
		}
		return '-'
	}, id)
}

// hostPorts lists the replica's ports that have a hostPort (manifest's
// HostPorts, the list the scheduler reserved), as the network publishes
// them.
func hostPorts(d DesiredReplica) []PortMapping {
	var out []PortMapping
	for _, p := range d.Pod.HostPorts() {
		out = append(out, PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: strings.ToLower(p.Protocol), HostIP: p.HostIP})
	}
	return out
}

// ensureNetNS returns the replica's network namespace, creating it and
// running the Network's Setup when missing; "" with hostNetwork. An
// existing namespace, from this agent or an earlier one, is adopted; it
// is wired again when the replica's host ports changed or when there is
// no record of its wiring (an agent that crashed during Setup, or one
// from before the namespace had a network).
func (r *Reconciler) ensureNetNS(ctx context.Context, d DesiredReplica) (string, error) {
	if d.Pod.HostNetwork {
		return "", nil
	}
	name := filepath.Base(r.podDir(d.Workload, d.Index))
	path := filepath.Join(r.netnsDir(), name)
	att := Attachment{ID: r.attachmentID(name), NSPath: path, Ports: hostPorts(d)}
	if IsNetNS(path) {
		rec, ok := r.readNetworkRecord(name)
		if ok && slices.Equal(rec.Ports, att.Ports) {
			return path, nil
		}
		if ok {
			r.log.Info("host ports changed; wiring the replica's network again", "replica", name)
			old := Attachment{ID: rec.ID, NSPath: path, Ports: rec.Ports}
			if err := r.cfg.Network.Teardown(ctx, old); err != nil {
				return "", fmt.Errorf("network teardown of %s: %w", name, err)
			}
			r.forgetNetwork(name)
		}
		if err := r.setupNetwork(ctx, name, att); err != nil {
			return "", err
		}
		return path, nil
	}
	if err := CreateNetNS(path); err != nil {
		return "", err
	}
	// A wiring of this replica from before the namespace went (an agent
	// whose data was removed, a host restarted) may still hold an address
	// in the plugins' own state: release it, or the plugin refuses the
	// replica's id ("duplicate allocation").
	_ = r.cfg.Network.Teardown(ctx, att)
	if err := r.setupNetwork(ctx, name, att); err != nil {
		_ = r.cfg.Network.Teardown(ctx, att)
		_ = RemoveNetNS(path)
		return "", err
	}
	r.log.Info("created network namespace", "replica", name, "path", path)
	return path, nil
}

func (r *Reconciler) setupNetwork(ctx context.Context, name string, att Attachment) error {
	ip, err := r.cfg.Network.Setup(ctx, att)
	if err != nil {
		return fmt.Errorf("network setup of %s: %w", name, err)
	}
	if err := r.writeNetworkRecord(name, networkRecord{ID: att.ID, IP: ip, Ports: att.Ports}); err != nil {
		// Without the record a restarted agent would wire the namespace
		// again on top of this wiring: undo it.
		return errors.Join(fmt.Errorf("network record of %s: %w", name, err), r.cfg.Network.Teardown(ctx, att))
	}
	if ip != "" {
		r.log.Info("replica network set up", "replica", name, "ip", ip, "hostPorts", len(att.Ports))
	}
	return nil
}

// teardownNetwork undoes the wiring of a namespace that is going away,
// with what its record says, or what the replica's name gives.
func (r *Reconciler) teardownNetwork(ctx context.Context, name, path string) error {
	att := Attachment{ID: r.attachmentID(name), NSPath: path}
	if rec, ok := r.readNetworkRecord(name); ok {
		att.ID, att.Ports = rec.ID, rec.Ports
	}
	return r.cfg.Network.Teardown(ctx, att)
}

// podIP is the replica's address as its status reports it: the host's
// with hostNetwork, else what its network gave ("" before that).
func (r *Reconciler) podIP(d DesiredReplica) string {
	if d.Pod.HostNetwork {
		return r.hostIP()
	}
	rec, _ := r.readNetworkRecord(filepath.Base(r.podDir(d.Workload, d.Index)))
	return rec.IP
}
