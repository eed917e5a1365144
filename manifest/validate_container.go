package manifest

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

var capabilityName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// Probe defaults, as the Kubernetes API server sets them.
const (
	DefaultProbeTimeoutSeconds   = 1
	DefaultProbePeriodSeconds    = 10
	DefaultProbeSuccessThreshold = 1
	DefaultProbeFailureThreshold = 3
)

// defaultContainer fills the defaults of one container.
func defaultContainer(c *Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	for j := range c.Ports {
		if c.Ports[j].Protocol == "" {
			c.Ports[j].Protocol = "TCP"
		}
	}
	// Requests default to limits, as the API server does.
	for k, q := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[k]; !ok {
			if c.Resources.Requests == nil {
				c.Resources.Requests = ResourceList{}
			}
			c.Resources.Requests[k] = q
		}
	}
	for _, p := range []*Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p == nil {
			continue
		}
		if p.TimeoutSeconds == 0 {
			p.TimeoutSeconds = DefaultProbeTimeoutSeconds
		}
		if p.PeriodSeconds == 0 {
			p.PeriodSeconds = DefaultProbePeriodSeconds
		}
		if p.SuccessThreshold == 0 {
			p.SuccessThreshold = DefaultProbeSuccessThreshold
		}
		if p.FailureThreshold == 0 {
			p.FailureThreshold = DefaultProbeFailureThreshold
		}
		defaultHTTPGet(p.HTTPGet)
	}
	if l := c.Lifecycle; l != nil {
		for _, h := range []*LifecycleHandler{l.PostStart, l.PreStop} {
			if h != nil {
				defaultHTTPGet(h.HTTPGet)
			}
		}
	}
}

func defaultHTTPGet(h *HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = "HTTP"
	}
}

// IsSidecar reports whether an init container is a sidecar (restartPolicy
// Always): started in order before the app containers and kept running.
func (c Container) IsSidecar() bool { return c.RestartPolicy == RestartAlways }

// validateContainerExtras checks probes, lifecycle hooks, security
// context and restartPolicy of one container.
func validateContainerExtras(d *document, c *Container, p string, init bool) []Problem {
	var probs []Problem
	switch c.TerminationMessagePolicy {
	case "", TerminationMessageFile, TerminationMessageFallback:
	default:
		probs = append(probs, valueProblem(d, p+".terminationMessagePolicy", c.TerminationMessagePolicy, "must be File or FallbackToLogsOnError"))
	}
	if tp := c.TerminationMessagePath; tp != "" && (!path.IsAbs(tp) || len(tp) > 4096) {
		probs = append(probs, valueProblem(d, p+".terminationMessagePath", tp, "must be an absolute path of at most 4096 characters"))
	}
	switch {
	case c.RestartPolicy == "":
	case !init:
		probs = append(probs, problemAt(d, p+".restartPolicy", "only init containers may set restartPolicy"))
	case c.RestartPolicy != RestartAlways:
		probs = append(probs, valueProblem(d, p+".restartPolicy", c.RestartPolicy, "must be Always (a sidecar) or unset"))
	}
	if init && !c.IsSidecar() {
		for name, set := range map[string]bool{"livenessProbe": c.LivenessProbe != nil, "readinessProbe": c.ReadinessProbe != nil,
			"startupProbe": c.StartupProbe != nil, "lifecycle": c.Lifecycle != nil} {
			if set {
				probs = append(probs, problemAt(d, p+"."+name, "may not be set for init containers without restartPolicy: Always"))
			}
		}
	}
	for _, pr := range []struct {
		name  string
		probe *Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
		if pr.probe == nil {
			continue
		}
		pp := p + "." + pr.name
		probs = append(probs, validateHandler(d, c, pp, false, pr.probe.Exec, pr.probe.HTTPGet, pr.probe.TCPSocket, pr.probe.GRPC)...)
		for _, f := range []struct {
			name string
			v    int32
			min  int32
		}{{"initialDelaySeconds", pr.probe.InitialDelaySeconds, 0}, {"timeoutSeconds", pr.probe.TimeoutSeconds, 1},
			{"periodSeconds", pr.probe.PeriodSeconds, 1}, {"successThreshold", pr.probe.SuccessThreshold, 1},
			{"failureThreshold", pr.probe.FailureThreshold, 1}} {
			if f.v < f.min {
				probs = append(probs, valueProblem(d, pp+"."+f.name, fmt.Sprint(f.v), fmt.Sprintf("must be >= %d", f.min)))
			}
		}
		if pr.name != "readinessProbe" && pr.probe.SuccessThreshold > 1 {
			probs = append(probs, valueProblem(d, pp+".successThreshold", fmt.Sprint(pr.probe.SuccessThreshold), "must be 1"))
		}
		if g := pr.probe.TerminationGracePeriodSeconds; g != nil {
			if pr.name == "readinessProbe" {
				probs = append(probs, problemAt(d, pp+".terminationGracePeriodSeconds", "may not be set for readiness probes"))
			} else if *g < 1 {
				probs = append(probs, valueProblem(d, pp+".terminationGracePeriodSeconds", fmt.Sprint(*g), "must be >= 1"))
			}
		}
	}
	if l := c.Lifecycle; l != nil {
		for _, h := range []struct {
			name string
			h    *LifecycleHandler
		}{{"postStart", l.PostStart}, {"preStop", l.PreStop}} {
			if h.h != nil {
				probs = append(probs, validateHandler(d, c, p+".lifecycle."+h.name, true, h.h.Exec, h.h.HTTPGet, nil, nil)...)
			}
		}
	}
	if sc := c.SecurityContext; sc != nil {
		sp := p + ".securityContext"
		probs = append(probs, validateIDs(d, sp, sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot)...)
		if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			probs = append(probs, problemAt(d, sp+".allowPrivilegeEscalation", "cannot be false with privileged: true"))
		}
		if cp := sc.Capabilities; cp != nil {
			// Kubernetes passes the names to the runtime as they are
			// written, and runtimes read them without regard to case
			// ("all", "net_raw").
			for i, n := range cp.Add {
				if !capabilityName.MatchString(strings.TrimPrefix(strings.ToUpper(n), "CAP_")) {
					probs = append(probs, valueProblem(d, fmt.Sprintf("%s.capabilities.add[%d]", sp, i), n, "must be ALL or a capability name such as NET_ADMIN"))
				}
			}
			for i, n := range cp.Drop {
				if !capabilityName.MatchString(strings.TrimPrefix(strings.ToUpper(n), "CAP_")) {
					probs = append(probs, valueProblem(d, fmt.Sprintf("%s.capabilities.drop[%d]", sp, i), n, "must be ALL or a capability name such as NET_RAW"))
				}
			}
		}
		probs = append(probs, validateSeccomp(d, sc.SeccompProfile, sp+".seccompProfile")...)
	}
	return probs
}

func validateIDs(d *document, p string, uid, gid *int64, nonRoot *bool) []Problem {
	var probs []Problem
	if uid != nil && (*uid < 0 || *uid > 2147483647) {
		probs = append(probs, valueProblem(d, p+".runAsUser", fmt.Sprint(*uid), "must be between 0 and 2147483647"))
	}
	if gid != nil && (*gid < 0 || *gid > 2147483647) {
		probs = append(probs, valueProblem(d, p+".runAsGroup", fmt.Sprint(*gid), "must be between 0 and 2147483647"))
	}
	if uid != nil && *uid == 0 && nonRoot != nil && *nonRoot {
		probs = append(probs, problemAt(d, p+".runAsNonRoot", "runAsUser 0 is root"))
	}
	return probs
}

func validateSeccomp(d *document, sp *SeccompProfile, p string) []Problem {
	if sp == nil {
		return nil
	}
	switch sp.Type {
	case "RuntimeDefault", "Unconfined":
		return nil
	case "Localhost":
		return []Problem{valueProblem(d, p+".type", sp.Type, "not supported by driftless yet (RuntimeDefault or Unconfined)")}
	}
	return []Problem{valueProblem(d, p+".type", sp.Type, "must be RuntimeDefault or Unconfined")}
}

func validatePodSecurity(d *document, sc *PodSecurityContext, p string) []Problem {
	if sc == nil {
		return nil
	}
	probs := validateIDs(d, p, sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot)
	if g := sc.FSGroup; g != nil && (*g < 0 || *g > 2147483647) {
		probs = append(probs, valueProblem(d, p+".fsGroup", fmt.Sprint(*g), "must be between 0 and 2147483647"))
	}
	return append(probs, validateSeccomp(d, sc.SeccompProfile, p+".seccompProfile")...)
}

// validateHandler checks that exactly one action is set and its ports.
func validateHandler(d *document, c *Container, p string, hook bool, ex *ExecAction, hg *HTTPGetAction, tcp *TCPSocketAction, g *GRPCAction) []Problem {
	var probs []Problem
	n := 0
	if ex != nil {
		n++
		if len(ex.Command) == 0 {
			probs = append(probs, problemAt(d, p+".exec.command", "required"))
		}
	}
	if hg != nil {
		n++
		probs = append(probs, validatePort(d, c, hg.Port, p+".httpGet.port")...)
		if hg.Scheme != "HTTP" && hg.Scheme != "HTTPS" {
			probs = append(probs, valueProblem(d, p+".httpGet.scheme", hg.Scheme, "must be HTTP or HTTPS"))
		}
		if !strings.HasPrefix(hg.Path, "/") {
			probs = append(probs, valueProblem(d, p+".httpGet.path", hg.Path, "must start with /"))
		}
		for i, h := range hg.HTTPHeaders {
			if h.Name == "" || strings.ContainsAny(h.Name, " :\r\n") {
				probs = append(probs, valueProblem(d, fmt.Sprintf("%s.httpGet.httpHeaders[%d].name", p, i), h.Name, "must be an HTTP header name"))
			}
		}
	}
	if tcp != nil {
		n++
		probs = append(probs, validatePort(d, c, tcp.Port, p+".tcpSocket.port")...)
	}
	if g != nil {
		n++
		if g.Port < 1 || g.Port > 65535 {
			probs = append(probs, valueProblem(d, p+".grpc.port", fmt.Sprint(g.Port), "must be between 1 and 65535"))
		}
	}
	switch {
	case n == 0 && hook:
		probs = append(probs, problemAt(d, p, "must specify exec or httpGet"))
	case n == 0:
		probs = append(probs, problemAt(d, p, "must specify one of exec, httpGet, tcpSocket and grpc"))
	case n > 1:
		probs = append(probs, problemAt(d, p, "may not specify more than one handler"))
	}
	return probs
}

// validatePort accepts a port number or the name of one of the
// container's ports.
func validatePort(d *document, c *Container, port IntOrString, p string) []Problem {
	if !port.IsString {
		if port.IntVal < 1 || port.IntVal > 65535 {
			return []Problem{valueProblem(d, p, fmt.Sprint(port.IntVal), "must be between 1 and 65535")}
		}
		return nil
	}
	if _, ok := c.PortNumber(port); !ok {
		return []Problem{valueProblem(d, p, port.StrVal, "no port of that name in the container")}
	}
	return nil
}

// PortNumber resolves a port given by number or by the name of one of the
// container's ports.
func (c Container) PortNumber(port IntOrString) (int32, bool) {
	if !port.IsString {
		return port.IntVal, port.IntVal > 0
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}
