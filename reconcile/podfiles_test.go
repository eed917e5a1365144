package reconcile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"driftless.dev/driftless/manifest"
)

func TestResolvConfPolicies(t *testing.T) {
	host := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(host, []byte("# host\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"), 0o644)
	cfg := DNSConfig{Nameserver: "10.96.0.10", Domain: "cluster.local", HostResolvConf: host}
	two := "2"
	for _, tc := range []struct {
		name string
		pod  manifest.PodSpec
		cfg  DNSConfig
		want string
	}{
		{"ClusterFirst", manifest.PodSpec{}, cfg,
			"nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n"},
		{"ClusterFirst without cluster DNS", manifest.PodSpec{}, DNSConfig{HostResolvConf: host},
			"nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"},
		{"Default", manifest.PodSpec{DNSPolicy: manifest.DNSDefault}, cfg,
			"nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"},
		{"host network", manifest.PodSpec{HostNetwork: true}, cfg,
			"nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"},
		{"ClusterFirstWithHostNet", manifest.PodSpec{HostNetwork: true, DNSPolicy: manifest.DNSClusterFirstWithHostNet}, cfg,
			"nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n"},
		{"None with dnsConfig", manifest.PodSpec{DNSPolicy: manifest.DNSNone, DNSConfig: &manifest.PodDNSConfig{
			Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"}, Options: []manifest.PodDNSConfigOption{{Name: "ndots", Value: &two}}}}, cfg,
			"nameserver 1.1.1.1\nsearch a.example\noptions ndots:2\n"},
		{"dnsConfig merged", manifest.PodSpec{DNSConfig: &manifest.PodDNSConfig{
			Nameservers: []string{"1.1.1.1"}, Options: []manifest.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}}}}, cfg,
			"nameserver 10.96.0.10\nnameserver 1.1.1.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:2 edns0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(ResolvConf(tc.cfg, &tc.pod, "shop")); got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestEtcHosts(t *testing.T) {
	pod := &manifest.PodSpec{Subdomain: "db", HostAliases: []manifest.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}}}
	got := string(EtcHosts(DNSConfig{Domain: "cluster.local"}, pod, "shop", "db-0", "10.244.1.5"))
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.244.1.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n", "10.1.2.3\tfoo.local\tbar.local\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	hostFile := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hostFile, []byte("127.0.0.1 localhost\n192.0.2.7 build-host"), 0o644)
	got = string(EtcHosts(DNSConfig{HostHosts: hostFile}, &manifest.PodSpec{HostNetwork: true}, "shop", "x", "192.0.2.7"))
	if !strings.HasPrefix(got, "127.0.0.1 localhost\n192.0.2.7 build-host\n") {
		t.Errorf("host network: the host's file first, got:\n%s", got)
	}
}
