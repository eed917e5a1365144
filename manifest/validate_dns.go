package manifest

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// validatePodNaming checks the fields that name a replica and shape its
// resolver: serviceAccountName, subdomain, dnsPolicy, dnsConfig and
// hostAliases, with Kubernetes' limits.
func validatePodNaming(d *document, s *PodSpec, field string) []Problem {
	var probs []Problem
	for _, sa := range []struct{ f, v string }{{"serviceAccountName", s.ServiceAccountName}, {"serviceAccount", s.DeprecatedServiceAccount}} {
		if sa.v != "" {
			probs = append(probs, invalid(d, field+"."+sa.f, sa.v, validation.IsDNS1123Subdomain(sa.v))...)
		}
	}
	if s.Subdomain != "" {
		probs = append(probs, invalid(d, field+".subdomain", s.Subdomain, validation.IsDNS1123Label(s.Subdomain))...)
	}
	switch s.DNSPolicy {
	case "", DNSClusterFirst, DNSClusterFirstWithHostNet, DNSDefault, DNSNone:
	default:
		probs = append(probs, valueProblem(d, field+".dnsPolicy", s.DNSPolicy, "must be ClusterFirst, ClusterFirstWithHostNet, Default or None"))
	}
	c := s.DNSConfig
	if s.DNSPolicy == DNSNone && (c == nil || len(c.Nameservers) == 0) {
		probs = append(probs, problemAt(d, field+".dnsConfig.nameservers", "required (at least one) with dnsPolicy None"))
	}
	if c != nil {
		if len(c.Nameservers) > 3 {
			probs = append(probs, problemAt(d, field+".dnsConfig.nameservers", "at most 3 nameservers"))
		}
		for i, ns := range c.Nameservers {
			if _, err := netip.ParseAddr(ns); err != nil {
				probs = append(probs, valueProblem(d, fmt.Sprintf("%s.dnsConfig.nameservers[%d]", field, i), ns, "must be an IP address"))
			}
		}
		if len(c.Searches) > 32 {
			probs = append(probs, problemAt(d, field+".dnsConfig.searches", "at most 32 search domains"))
		}
		if n := len(strings.Join(c.Searches, " ")); n > 2048 {
			probs = append(probs, problemAt(d, field+".dnsConfig.searches", fmt.Sprintf("at most 2048 characters in all, got %d", n)))
		}
		for i, sd := range c.Searches {
			if errs := validation.IsDNS1123Subdomain(strings.TrimSuffix(sd, ".")); len(errs) > 0 {
				probs = append(probs, invalid(d, fmt.Sprintf("%s.dnsConfig.searches[%d]", field, i), sd, errs)...)
			}
		}
		for i, o := range c.Options {
			if o.Name == "" {
				probs = append(probs, problemAt(d, fmt.Sprintf("%s.dnsConfig.options[%d].name", field, i), "required"))
			}
		}
	}
	if s.OS != nil && s.OS.Name != "linux" && s.OS.Name != "windows" {
		probs = append(probs, valueProblem(d, field+".os.name", s.OS.Name, "must be linux or windows"))
	}
	for i, h := range s.HostAliases {
		f := fmt.Sprintf("%s.hostAliases[%d]", field, i)
		if _, err := netip.ParseAddr(h.IP); err != nil {
			probs = append(probs, valueProblem(d, f+".ip", h.IP, "must be an IP address"))
		}
		for j, n := range h.Hostnames {
			probs = append(probs, invalid(d, fmt.Sprintf("%s.hostnames[%d]", f, j), n, validation.IsDNS1123Subdomain(n))...)
		}
	}
	return probs
}
