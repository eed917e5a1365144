package manifest

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Service is v1 Service: a stable virtual address (and DNS name) in front
// of the ready replicas whose labels match its selector.
type Service struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     ServiceSpec `json:"spec"`

	// File and Line locate the document (for cross-document problems).
	File string `json:"-"`
	Line int    `json:"-"`
	doc  *document
}

// Ref names the Service.
func (s *Service) Ref() Ref {
	return Ref{Namespace: s.Metadata.Namespace, Kind: "Service", Name: s.Metadata.Name}
}

// Service types.
const (
	ServiceClusterIP    = "ClusterIP"
	ServiceNodePort     = "NodePort"
	ServiceLoadBalancer = "LoadBalancer"
	ServiceExternalName = "ExternalName"
	// ClusterIPNone makes a Service headless: no virtual address, its DNS
	// name resolves to the ready replicas' own addresses.
	ClusterIPNone = "None"
)

// ServiceSpec is the part of a Service's spec driftless serves.
type ServiceSpec struct {
	Type     string            `json:"type,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
	Ports    []ServicePort     `json:"ports,omitempty"`
	// ClusterIP is the virtual address asked for ("" lets the leader
	// allocate one from --service-cidr; None: headless).
	ClusterIP  string   `json:"clusterIP,omitempty"`
	ClusterIPs []string `json:"clusterIPs,omitempty"`
	// SessionAffinity ClientIP sends one client to one endpoint for
	// sessionAffinityConfig.clientIP.timeoutSeconds (default 10800).
	SessionAffinity       string                 `json:"sessionAffinity,omitempty"`
	SessionAffinityConfig *SessionAffinityConfig `json:"sessionAffinityConfig,omitempty"`
	ExternalName          string                 `json:"externalName,omitempty"`
	// PublishNotReadyAddresses puts replicas in the endpoints before they
	// are ready (headless Services of clustered software use it).
	PublishNotReadyAddresses bool     `json:"publishNotReadyAddresses,omitempty"`
	IPFamilies               []string `json:"ipFamilies,omitempty"`
	// The load balancer and traffic policy fields are accepted and have
	// no effect (manifest/decode.go's ignored table says why).
}

// SessionAffinityConfig holds the ClientIP affinity timeout.
type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `json:"clientIP,omitempty"`
}

// ClientIPConfig is sessionAffinityConfig.clientIP.
type ClientIPConfig struct {
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name        string  `json:"name,omitempty"`
	Protocol    string  `json:"protocol,omitempty"` // TCP (default), UDP
	AppProtocol *string `json:"appProtocol,omitempty"`
	Port        int32   `json:"port"`
	// TargetPort is the replicas' port, by number or by the name of a
	// containerPort; default: Port.
	TargetPort *IntOrString `json:"targetPort,omitempty"`
	// NodePort is the port on every node's addresses (NodePort and
	// LoadBalancer Services); 0 lets the leader allocate one.
	NodePort int32 `json:"nodePort,omitempty"`
}

// Target is the port's target as given (Port when none is).
func (p ServicePort) Target() IntOrString {
	if p.TargetPort == nil || (!p.TargetPort.IsString && p.TargetPort.IntVal == 0) {
		return IntOrString{IntVal: p.Port}
	}
	return *p.TargetPort
}

// Headless reports whether the Service has no virtual address.
func (s *ServiceSpec) Headless() bool { return s.ClusterIP == ClusterIPNone }

// NeedsNodePorts reports whether the Service is served on the nodes'
// addresses.
func (s *ServiceSpec) NeedsNodePorts() bool {
	return s.Type == ServiceNodePort || s.Type == ServiceLoadBalancer
}

// AffinityTimeout is the ClientIP affinity timeout in seconds.
func (s *ServiceSpec) AffinityTimeout() int32 {
	if c := s.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		return *c.ClientIP.TimeoutSeconds
	}
	return 10800
}

// NodePortRange is the range NodePorts are given from, as Kubernetes'
// default --service-node-port-range.
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

func defaultService(o *Service) {
	sp := &o.Spec
	if sp.Type == "" {
		sp.Type = ServiceClusterIP
	}
	if sp.SessionAffinity == "" {
		sp.SessionAffinity = "None"
	}
	if sp.ClusterIP == "" && len(sp.ClusterIPs) > 0 {
		sp.ClusterIP = sp.ClusterIPs[0]
	}
	for i := range sp.Ports {
		if sp.Ports[i].Protocol == "" {
			sp.Ports[i].Protocol = "TCP"
		}
	}
}

func (s *Set) addService(d *document, o *Service) []Problem {
	defaultService(o)
	sp := &o.Spec
	var probs []Problem
	switch sp.Type {
	case ServiceClusterIP, ServiceNodePort, ServiceExternalName:
	case ServiceLoadBalancer:
		s.Warnings = append(s.Warnings, Problem{File: d.file, Line: d.lineOf("spec.type"), Field: "spec.type", Value: sp.Type, HasValue: true,
			Message: "there is no external load balancer: served as a NodePort Service on every node's addresses"})
	default:
		probs = append(probs, valueProblem(d, "spec.type", sp.Type, "must be ClusterIP, NodePort, LoadBalancer or ExternalName"))
	}
	switch sp.SessionAffinity {
	case "None", "ClientIP":
	default:
		probs = append(probs, valueProblem(d, "spec.sessionAffinity", sp.SessionAffinity, "must be None or ClientIP"))
	}
	if t := sp.AffinityTimeout(); t <= 0 || t > 86400 {
		probs = append(probs, valueProblem(d, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", strconv.Itoa(int(t)), "must be between 1 and 86400"))
	}
	if sp.Type == ServiceExternalName {
		if sp.ExternalName == "" {
			probs = append(probs, problemAt(d, "spec.externalName", "required for type ExternalName"))
		} else if errs := validation.IsDNS1123Subdomain(strings.TrimSuffix(sp.ExternalName, ".")); len(errs) > 0 {
			probs = append(probs, invalid(d, "spec.externalName", sp.ExternalName, errs)...)
		}
	} else if sp.ExternalName != "" {
		probs = append(probs, valueProblem(d, "spec.externalName", sp.ExternalName, "only for type ExternalName"))
	}
	if sp.ClusterIP != "" && sp.ClusterIP != ClusterIPNone {
		if a, err := netip.ParseAddr(sp.ClusterIP); err != nil || !a.Is4() {
			probs = append(probs, valueProblem(d, "spec.clusterIP", sp.ClusterIP, "must be an IPv4 address, None or empty"))
		}
	}
	if sp.Headless() && sp.NeedsNodePorts() {
		probs = append(probs, valueProblem(d, "spec.clusterIP", sp.ClusterIP, "a headless Service cannot be of type "+sp.Type))
	}
	for k, v := range sp.Selector {
		probs = append(probs, invalid(d, "spec.selector."+k, k, validation.IsQualifiedName(k))...)
		probs = append(probs, invalid(d, "spec.selector."+k, v, validation.IsValidLabelValue(v))...)
	}
	if len(sp.Ports) == 0 && sp.Type != ServiceExternalName && !sp.Headless() {
		probs = append(probs, problemAt(d, "spec.ports", "required: at least one port"))
	}
	names := map[string]bool{}
	type portKey struct {
		port  int32
		proto string
	}
	seen := map[portKey]bool{}
	for i, p := range sp.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		switch {
		case p.Name == "" && len(sp.Ports) > 1:
			probs = append(probs, problemAt(d, f+".name", "required when a Service has more than one port"))
		case p.Name != "":
			if errs := validation.IsDNS1123Label(p.Name); len(errs) > 0 {
				probs = append(probs, invalid(d, f+".name", p.Name, errs)...)
			}
			if names[p.Name] {
				probs = append(probs, valueProblem(d, f+".name", p.Name, "duplicate port name"))
			}
			names[p.Name] = true
		}
		if p.Protocol != "TCP" && p.Protocol != "UDP" {
			probs = append(probs, valueProblem(d, f+".protocol", p.Protocol, "must be TCP or UDP (SCTP is not supported)"))
		}
		if p.Port < 1 || p.Port > 65535 {
			probs = append(probs, valueProblem(d, f+".port", strconv.Itoa(int(p.Port)), "must be between 1 and 65535"))
		}
		if seen[portKey{p.Port, p.Protocol}] {
			probs = append(probs, valueProblem(d, f+".port", strconv.Itoa(int(p.Port)), "duplicate port and protocol"))
		}
		seen[portKey{p.Port, p.Protocol}] = true
		if t := p.Target(); t.IsString {
			if errs := validation.IsValidPortName(t.StrVal); len(errs) > 0 {
				probs = append(probs, invalid(d, f+".targetPort", t.StrVal, errs)...)
			}
		} else if t.IntVal < 1 || t.IntVal > 65535 {
			probs = append(probs, valueProblem(d, f+".targetPort", t.String(), "must be between 1 and 65535"))
		}
		if p.NodePort != 0 {
			switch {
			case !sp.NeedsNodePorts():
				probs = append(probs, valueProblem(d, f+".nodePort", strconv.Itoa(int(p.NodePort)), "only for type NodePort or LoadBalancer"))
			case p.NodePort < NodePortMin || p.NodePort > NodePortMax:
				probs = append(probs, valueProblem(d, f+".nodePort", strconv.Itoa(int(p.NodePort)), fmt.Sprintf("must be between %d and %d", NodePortMin, NodePortMax)))
			}
		}
	}
	for _, fam := range sp.IPFamilies {
		if fam != "IPv4" {
			probs = append(probs, valueProblem(d, "spec.ipFamilies", fam, "only IPv4 is supported"))
		}
	}
	if len(probs) > 0 {
		return probs
	}
	o.File, o.Line, o.doc = d.file, d.line, d
	s.Services = append(s.Services, *o)
	return nil
}

// checkServiceAddresses refuses a Service asking for a clusterIP or a
// nodePort that an earlier one (in file order) already asked for.
func (s *Set) checkServiceAddresses() []Problem {
	var probs []Problem
	ips := map[string]string{}
	ports := map[string]string{}
	for i := range s.Services {
		sv := &s.Services[i]
		here := fmt.Sprintf("%s/%s (%s:%d)", sv.Metadata.Namespace, sv.Metadata.Name, sv.File, sv.Line)
		if ip := sv.Spec.ClusterIP; ip != "" && ip != ClusterIPNone {
			if prev, ok := ips[ip]; ok {
				probs = append(probs, valueProblem(sv.doc, "spec.clusterIP", ip, "already asked for by Service "+prev))
			} else {
				ips[ip] = here
			}
		}
		for j, p := range sv.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			k := p.Protocol + "/" + strconv.Itoa(int(p.NodePort))
			if prev, ok := ports[k]; ok {
				probs = append(probs, valueProblem(sv.doc, fmt.Sprintf("spec.ports[%d].nodePort", j), strconv.Itoa(int(p.NodePort)), "already asked for by Service "+prev))
			} else {
				ports[k] = here
			}
		}
	}
	return probs
}

// ServiceAccount is v1 ServiceAccount. There is no API server to
// authenticate to: it is a name pods may refer to, and no token is
// mounted.
type ServiceAccount struct {
	TypeMeta                     `json:",inline"`
	Metadata                     ObjectMeta        `json:"metadata"`
	AutomountServiceAccountToken *bool             `json:"automountServiceAccountToken,omitempty"`
	Secrets                      []ObjectReference `json:"secrets,omitempty"`
	ImagePullSecrets             []ObjectReference `json:"imagePullSecrets,omitempty"`
}

// ObjectReference names another object (only its name is used).
type ObjectReference struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Kind      string `json:"kind,omitempty"`
}

func (s *Set) addServiceAccount(d *document, o *ServiceAccount) []Problem {
	s.ServiceAccounts = append(s.ServiceAccounts, *o)
	return nil
}
