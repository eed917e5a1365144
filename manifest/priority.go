package manifest

import (
	"fmt"
	"strings"
)

// PriorityClass is scheduling.k8s.io/v1 PriorityClass: the priority of
// the pods that name it. The scheduler places higher priorities first.
type PriorityClass struct {
	TypeMeta         `json:",inline"`
	Metadata         ObjectMeta `json:"metadata"`
	Value            *int32     `json:"value,omitempty"`
	GlobalDefault    bool       `json:"globalDefault,omitempty"`
	PreemptionPolicy string     `json:"preemptionPolicy,omitempty"`
	Description      string     `json:"description,omitempty"`
}

// Kubernetes' built-in classes, and the highest value a user class may
// have.
var builtinPriorities = map[string]int32{
	"system-cluster-critical": 2000000000,
	"system-node-critical":    2000001000,
}

const maxUserPriority = 1000000000

func (s *Set) addPriorityClass(d *document, o *PriorityClass) []Problem {
	var probs []Problem
	switch {
	case o.Value == nil:
		probs = append(probs, problemAt(d, "value", "required"))
	case *o.Value > maxUserPriority:
		probs = append(probs, valueProblem(d, "value", fmt.Sprint(*o.Value), fmt.Sprintf("must be at most %d (higher values are kept for the built-in classes)", maxUserPriority)))
	}
	if _, ok := builtinPriorities[o.Metadata.Name]; ok {
		probs = append(probs, valueProblem(d, "metadata.name", o.Metadata.Name, "is a built-in class"))
	}
	switch o.PreemptionPolicy {
	case "", "PreemptLowerPriority", "Never":
	default:
		probs = append(probs, valueProblem(d, "preemptionPolicy", o.PreemptionPolicy, "must be PreemptLowerPriority or Never"))
	}
	if o.GlobalDefault {
		for _, c := range s.PriorityClasses {
			if c.GlobalDefault {
				probs = append(probs, valueProblem(d, "globalDefault", "true", "PriorityClass "+c.Metadata.Name+" is the global default already"))
			}
		}
	}
	if len(probs) > 0 {
		return probs
	}
	s.PriorityClasses = append(s.PriorityClasses, *o)
	return nil
}

// resolvePriorities gives every workload the priority of its class (the
// global default's when it names none). A class not in the commit is a
// warning and priority 0.
func (s *Set) resolvePriorities() {
	values := map[string]int32{}
	never := map[string]bool{}
	var def int32
	defNever := false
	for _, c := range s.PriorityClasses {
		values[c.Metadata.Name] = *c.Value
		never[c.Metadata.Name] = c.PreemptionPolicy == "Never"
		if c.GlobalDefault {
			def, defNever = *c.Value, c.PreemptionPolicy == "Never"
		}
	}
	for n, v := range builtinPriorities {
		values[n] = v
	}
	all := make([]*Workload, 0, len(s.Workloads)+len(s.CronJobs))
	for i := range s.Workloads {
		all = append(all, &s.Workloads[i])
	}
	for i := range s.CronJobs {
		all = append(all, &s.CronJobs[i].Template)
	}
	for _, w := range all {
		pc := w.Template.Spec.PriorityClassName
		if pc == "" {
			w.Priority, w.PreemptNever = def, defNever
			continue
		}
		v, ok := values[pc]
		if !ok {
			s.Warnings = append(s.Warnings, valueProblem(w.doc, w.specField+".priorityClassName", pc,
				"PriorityClass not in this commit: its replicas are placed with priority 0 until a commit adds it"))
		}
		w.Priority, w.PreemptNever = v, never[pc]
	}
	for _, w := range all {
		spec := &w.Template.Spec
		if p := spec.PreemptionPolicy; p != nil {
			w.PreemptNever = *p == "Never"
		}
		if p := spec.Priority; p != nil && *p != w.Priority && (spec.PriorityClassName != "" || *p != 0) {
			s.Warnings = append(s.Warnings, valueProblem(w.doc, w.specField+".priority", fmt.Sprint(*p),
				fmt.Sprintf("set by Kubernetes from the PriorityClass: its value %d is used", w.Priority)))
		}
	}
}

// RuntimeClass is node.k8s.io/v1 RuntimeClass: the containerd runtime
// (handler) of the pods that name it.
type RuntimeClass struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Handler  string     `json:"handler"`
}

// RuntimeOf is containerd's runtime name for a RuntimeClass handler: a
// name with dots is taken as it is (io.containerd.kata-qemu.v2), runsc
// is gVisor's io.containerd.runsc.v1, any other io.containerd.<handler>.v2
// (runc, kata, ...), as containerd names its shims.
func RuntimeOf(handler string) string {
	switch {
	case strings.Contains(handler, "."):
		return handler
	case handler == "runsc":
		return "io.containerd.runsc.v1"
	}
	return "io.containerd." + handler + ".v2"
}

func (s *Set) addRuntimeClass(d *document, o *RuntimeClass) []Problem {
	if o.Handler == "" {
		return []Problem{problemAt(d, "handler", "required")}
	}
	if !isDNS1123Label(o.Handler) && !strings.Contains(o.Handler, ".") {
		return []Problem{valueProblem(d, "handler", o.Handler, "must be a DNS-1123 label (runc, runsc, kata) or a containerd runtime name")}
	}
	s.RuntimeClasses = append(s.RuntimeClasses, *o)
	return nil
}

// resolveRuntimes gives each workload the runtime of its RuntimeClass; a
// class not in the commit refuses it, as Kubernetes' admission does.
func (s *Set) resolveRuntimes() []Problem {
	handlers := map[string]string{}
	for _, c := range s.RuntimeClasses {
		handlers[c.Metadata.Name] = c.Handler
	}
	var probs []Problem
	all := make([]*Workload, 0, len(s.Workloads)+len(s.CronJobs))
	for i := range s.Workloads {
		all = append(all, &s.Workloads[i])
	}
	for i := range s.CronJobs {
		all = append(all, &s.CronJobs[i].Template)
	}
	for _, w := range all {
		for ci, c := range w.Template.Spec.Containers {
			if c.Stdin || c.TTY {
				s.Warnings = append(s.Warnings, problemAt(w.doc, fmt.Sprintf("%s.containers[%d]", w.specField, ci),
					"stdin and tty are not attached: the container's stdin is closed and it has no terminal (a shell kept alive by them exits)"))
			}
		}
		if w.Template.Spec.WindowsPod() {
			s.Warnings = append(s.Warnings, problemAt(w.doc, w.specField, "a Windows pod: driftless's nodes run Linux, so its replicas stay Pending"))
		}
		rc := w.Template.Spec.RuntimeClassName
		if rc == "" {
			continue
		}
		h, ok := handlers[rc]
		if !ok {
			probs = append(probs, valueProblem(w.doc, w.specField+".runtimeClassName", rc, "no RuntimeClass of that name in this commit (add a node.k8s.io/v1 RuntimeClass naming its handler)"))
			continue
		}
		w.Runtime = RuntimeOf(h)
	}
	return probs
}
