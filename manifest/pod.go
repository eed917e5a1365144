package manifest

import "strings"

// Restart policies of a pod (and, Always only, of a sidecar init
// container), as Kubernetes spells them.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// The facts of a pod that validation, the scheduler and the node must
// agree on are computed here, once: the ports it publishes on its node
// and the resources it asks for.

// HostPorts lists the ports of the pod that publish a hostPort: init
// containers first (sidecars and the others, which hold the port while
// they run), then app containers, each in spec order. Protocol is
// upper-case and defaulted to TCP; HostIP is as written ("" is every
// address). The scheduler keeps two pods publishing one of them off a
// node; the node publishes exactly these.
func (s *PodSpec) HostPorts() []ContainerPort {
	var out []ContainerPort
	add := func(cs []Container) {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.HostPort == 0 {
					continue
				}
				p.Protocol = strings.ToUpper(p.Protocol)
				if p.Protocol == "" {
					p.Protocol = "TCP"
				}
				out = append(out, p)
			}
		}
	}
	add(s.InitContainers)
	add(s.Containers)
	return out
}

// EffectiveRequests is what the pod asks of its node, in milli-units per
// resource, by Kubernetes' rule: the larger of (a) the sum over app
// containers and sidecars and (b) for each ordinary init container, its
// own request plus those of the sidecars started before it. A limit
// stands in for an unset request, as Kubernetes defaults it.
func (s *PodSpec) EffectiveRequests() map[string]int64 {
	sum := map[string]int64{}
	sidecars := map[string]int64{}
	initMax := map[string]int64{}
	for _, c := range s.InitContainers {
		r := containerRequests(c)
		if c.IsSidecar() {
			for k, v := range r {
				sidecars[k] += v
			}
			continue
		}
		for k, v := range r {
			initMax[k] = max(initMax[k], v+sidecars[k])
		}
	}
	for _, c := range s.Containers {
		for k, v := range containerRequests(c) {
			sum[k] += v
		}
	}
	for k, v := range sidecars {
		sum[k] += v
	}
	for k, v := range initMax {
		sum[k] = max(sum[k], v)
	}
	for k, v := range sum {
		if v == 0 {
			delete(sum, k)
		}
	}
	return sum
}

func containerRequests(c Container) map[string]int64 {
	out := map[string]int64{}
	for k, q := range c.Resources.Requests {
		out[k] += q.MilliValue()
	}
	for k, q := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[k]; !ok {
			out[k] += q.MilliValue()
		}
	}
	return out
}
