package reconcile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"driftless.dev/driftless/internal/atomicfile"
	"driftless.dev/driftless/manifest"
)

// DNSConfig is what replicas' resolv.conf is made of.
type DNSConfig struct {
	// Nameserver is the cluster DNS address; empty: no cluster DNS, and
	// ClusterFirst replicas get the host's resolvers as with Default.
	Nameserver string
	// Domain is the cluster domain (cluster.local).
	Domain string
	// HostResolvConf is the host's resolv.conf (default /etc/resolv.conf).
	HostResolvConf string
	// HostHosts is the host's hosts file, the base of a host-network
	// replica's (default /etc/hosts).
	HostHosts string
}

// resolvConf is the parsed content of a resolv.conf.
type resolvConf struct {
	nameservers, search, options []string
}

func readResolvConf(path string) resolvConf {
	var rc resolvConf
	b, err := os.ReadFile(path)
	if err != nil {
		return rc
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			rc.nameservers = append(rc.nameservers, f[1])
		case "search", "domain":
			rc.search = f[1:]
		case "options":
			rc.options = append(rc.options, f[1:]...)
		}
	}
	return rc
}

// ResolvConf is the resolv.conf of a replica, as the kubelet writes it:
// ClusterFirst names the cluster DNS and searches
// <ns>.svc.<domain> svc.<domain> <domain> then the host's domains with
// ndots:5; Default is the host's; None is dnsConfig alone; dnsConfig is
// merged into the others (nameservers appended, searches appended,
// options overriding by name).
func ResolvConf(cfg DNSConfig, pod *manifest.PodSpec, namespace string) []byte {
	host := readResolvConf(orDefault(cfg.HostResolvConf, "/etc/resolv.conf"))
	var rc resolvConf
	switch policy := pod.EffectiveDNSPolicy(); {
	case policy == manifest.DNSNone:
	case policy == manifest.DNSClusterFirst && cfg.Nameserver != "":
		d := strings.TrimSuffix(orDefault(cfg.Domain, "cluster.local"), ".")
		rc.nameservers = []string{cfg.Nameserver}
		rc.search = append([]string{namespace + ".svc." + d, "svc." + d, d}, host.search...)
		rc.options = []string{"ndots:5"}
	default:
		rc = host
	}
	if c := pod.DNSConfig; c != nil {
		rc.nameservers = append(rc.nameservers, c.Nameservers...)
		rc.search = append(rc.search, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			rc.options = slices.DeleteFunc(rc.options, func(s string) bool {
				n, _, _ := strings.Cut(s, ":")
				return n == o.Name
			})
			rc.options = append(rc.options, opt)
		}
	}
	// The resolver reads at most 3 nameservers and 32 search domains.
	rc.nameservers = dedup(rc.nameservers)
	if len(rc.nameservers) > 3 {
		rc.nameservers = rc.nameservers[:3]
	}
	rc.search = dedup(rc.search)
	if len(rc.search) > 32 {
		rc.search = rc.search[:32]
	}
	var b bytes.Buffer
	for _, n := range rc.nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", n)
	}
	if len(rc.search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(rc.search, " "))
	}
	if len(rc.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(rc.options, " "))
	}
	return b.Bytes()
}

// EtcHosts is the hosts file of a replica as the kubelet writes it: the
// loopback names, the replica's own address and name (with its FQDN when
// it sets a subdomain), then the hostAliases. A host-network replica
// gets the host's file with the aliases appended.
func EtcHosts(cfg DNSConfig, pod *manifest.PodSpec, namespace, hostname, podIP string) []byte {
	var b bytes.Buffer
	if pod.HostNetwork {
		host, _ := os.ReadFile(orDefault(cfg.HostHosts, "/etc/hosts"))
		b.Write(host)
		if len(host) > 0 && !bytes.HasSuffix(host, []byte("\n")) {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString("# Kubernetes-managed hosts file.\n" +
			"127.0.0.1\tlocalhost\n" +
			"::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::0\tip6-localnet\n" +
			"fe00::0\tip6-mcastprefix\n" +
			"fe00::1\tip6-allnodes\n" +
			"fe00::2\tip6-allrouters\n")
		if podIP != "" {
			if pod.Subdomain != "" {
				d := strings.TrimSuffix(orDefault(cfg.Domain, "cluster.local"), ".")
				fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", podIP, hostname, pod.Subdomain, namespace, d, hostname)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", podIP, hostname)
			}
		}
	}
	if len(pod.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, h := range pod.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", h.IP, strings.Join(h.Hostnames, "\t"))
		}
	}
	return b.Bytes()
}

// podFiles writes the replica's /etc/hosts, /etc/hostname and
// /etc/resolv.conf in its directory and returns their mounts.
func (r *Reconciler) podFiles(d DesiredReplica, hostname string) ([]Mount, error) {
	dir := filepath.Join(r.podDir(d.Workload, d.Index), "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("replica files: %w", err)
	}
	ip := r.podIP(d)
	if d.Pod.HostNetwork {
		hostname, _ = os.Hostname()
	}
	files := []struct {
		name, dest string
		data       []byte
	}{
		{"hosts", "/etc/hosts", EtcHosts(r.cfg.DNS, &d.Pod, d.Workload.Namespace, hostname, ip)},
		{"hostname", "/etc/hostname", []byte(hostname + "\n")},
		{"resolv.conf", "/etc/resolv.conf", ResolvConf(r.cfg.DNS, &d.Pod, d.Workload.Namespace)},
	}
	var out []Mount
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := atomicfile.WriteFile(p, f.data, 0o644); err != nil {
			return nil, fmt.Errorf("replica files: %w", err)
		}
		out = append(out, Mount{Source: p, Destination: f.dest})
	}
	return out, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	out := s[:0:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
