package manifest

import (
	"fmt"
	"path"
	"sort"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// PersistentVolumeClaim is v1 PersistentVolumeClaim: storage a replica
// keeps across restarts, template changes and rescheduling. driftless
// binds it, on first use, to a directory on the node the replica is
// placed on (or to a directory of a shared host path, see StorageClass).
type PersistentVolumeClaim struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta                `json:"metadata"`
	Spec     PersistentVolumeClaimSpec `json:"spec"`
}

// PersistentVolumeClaimSpec is what a claim asks for.
type PersistentVolumeClaimSpec struct {
	AccessModes      []string                   `json:"accessModes,omitempty"`
	Resources        VolumeResourceRequirements `json:"resources,omitempty"`
	StorageClassName *string                    `json:"storageClassName,omitempty"`
	VolumeMode       *string                    `json:"volumeMode,omitempty"`
}

// VolumeResourceRequirements is a claim's size.
type VolumeResourceRequirements struct {
	Requests ResourceList `json:"requests,omitempty"`
	Limits   ResourceList `json:"limits,omitempty"`
}

// StorageClass is storage.k8s.io/v1 StorageClass. Two provisioners
// exist: ProvisionerLocal (a directory under the node's volumes
// directory; the single-node hostpath provisioners of local clusters,
// rancher.io/local-path and kubernetes.io/no-provisioner mean the same) and ProvisionerHostPath (parameters.path, a directory
// every node mounts from shared storage, such as NFS: the only class
// whose claims may be ReadWriteMany or ReadOnlyMany).
type StorageClass struct {
	TypeMeta             `json:",inline"`
	Metadata             ObjectMeta        `json:"metadata"`
	Provisioner          string            `json:"provisioner"`
	Parameters           map[string]string `json:"parameters,omitempty"`
	ReclaimPolicy        *string           `json:"reclaimPolicy,omitempty"`
	VolumeBindingMode    *string           `json:"volumeBindingMode,omitempty"`
	AllowVolumeExpansion *bool             `json:"allowVolumeExpansion,omitempty"`
}

// Provisioners of StorageClasses.
const (
	ProvisionerLocal    = "driftless.dev/local"
	ProvisionerHostPath = "driftless.dev/host-path"
)

// localProvisioners are the provisioner names that mean a node-local
// directory, as driftless provides it.
var localProvisioners = map[string]bool{
	ProvisionerLocal:               true,
	"rancher.io/local-path":        true,
	"kubernetes.io/no-provisioner": true,
	"k8s.io/minikube-hostpath":     true,
	"microk8s.io/hostpath":         true,
	"docker.io/hostpath":           true,
	"openebs.io/local":             true,
}

// Access modes of claims.
const (
	ReadWriteOnce    = "ReadWriteOnce"
	ReadOnlyMany     = "ReadOnlyMany"
	ReadWriteMany    = "ReadWriteMany"
	ReadWriteOncePod = "ReadWriteOncePod"
)

// Annotations of claims.
const (
	// AnnotationReclaimOnNodeLoss "true" lets a replica whose claim is on
	// a node that stays dead past the node grace start elsewhere with a
	// new, empty volume (the old directory is left on the old node).
	AnnotationReclaimOnNodeLoss = "driftless.dev/reclaim-on-node-loss"
	// AnnotationReclaimPolicy "Delete" deletes the claim's data once the
	// claim is gone from Git and no replica uses it; "Retain" (the
	// default) keeps it, listed as Released.
	AnnotationReclaimPolicy = "driftless.dev/reclaim-policy"
	// AnnotationDefaultClass is Kubernetes' mark of the default class.
	AnnotationDefaultClass = "storageclass.kubernetes.io/is-default-class"
)

// Claim is one persistent volume claim, validated and resolved against
// its StorageClass: a claim document, or a StatefulSet ordinal's claim
// from its volumeClaimTemplates.
type Claim struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	// AccessModes as given (ReadWriteOnce when none).
	AccessModes []string `json:"accessModes"`
	// Storage is the size requested (resources.requests.storage).
	Storage resource.Quantity `json:"storage"`
	// StorageClass is the class name ("" when the commit has none).
	StorageClass string `json:"storageClass,omitempty"`
	// SharedPath is the root of a host-path class's claims (the same
	// directory on every node); empty for node-local claims.
	SharedPath string `json:"sharedPath,omitempty"`
	// ReclaimOnNodeLoss: see AnnotationReclaimOnNodeLoss.
	ReclaimOnNodeLoss bool `json:"reclaimOnNodeLoss,omitempty"`
	// ReclaimPolicy is Retain or Delete: what becomes of the data when
	// the claim is gone (AnnotationReclaimPolicy; a StatefulSet's
	// persistentVolumeClaimRetentionPolicy.whenDeleted for its claims).
	ReclaimPolicy string `json:"reclaimPolicy,omitempty"`
}

// Key names a claim as "namespace/name".
func (c Claim) Key() string { return c.Namespace + "/" + c.Name }

// ReplicaClaim is one persistentVolumeClaim volume of one replica.
type ReplicaClaim struct {
	// Volume is the pod volume's name.
	Volume string
	// Claim is the claim it mounts; only Namespace and Name are set when
	// Missing.
	Claim    Claim
	ReadOnly bool
	// Missing: the commit has no such claim (the replica stays Pending).
	Missing bool
}

// ReplicaClaims lists the claims replica index of w mounts, in volume
// order: a StatefulSet's claim templates give ordinal i the claim
// <template>-<statefulset>-<i>; any other persistentVolumeClaim volume
// names a claim of the commit.
func (w *Workload) ReplicaClaims(index int) []ReplicaClaim {
	var out []ReplicaClaim
	for _, v := range w.Template.Spec.Volumes {
		src := v.PersistentVolumeClaim
		if src == nil {
			continue
		}
		if t, ok := w.ClaimTemplates[v.Name]; ok {
			c := t
			c.Name = fmt.Sprintf("%s-%s-%d", t.Name, w.Name, index)
			out = append(out, ReplicaClaim{Volume: v.Name, Claim: c, ReadOnly: src.ReadOnly})
			continue
		}
		c, ok := w.Claims[src.ClaimName]
		if !ok {
			c = Claim{Namespace: w.Namespace, Name: src.ClaimName}
		}
		out = append(out, ReplicaClaim{Volume: v.Name, Claim: c, ReadOnly: src.ReadOnly, Missing: !ok})
	}
	return out
}

// HasClaims reports whether w's replicas mount any claim.
func (w *Workload) HasClaims() bool {
	for _, v := range w.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return true
		}
	}
	return false
}

func (s *Set) addPersistentVolumeClaim(d *document, o *PersistentVolumeClaim) []Problem {
	c, probs := claimOf(d, o.Metadata, &o.Spec, "spec")
	if len(probs) > 0 {
		return probs
	}
	c.File, c.Line = d.file, d.line
	s.claimDocs = append(s.claimDocs, pendingClaim{claim: c, class: o.Spec.StorageClassName, modesGiven: len(o.Spec.AccessModes) > 0, d: d, field: "spec"})
	return nil
}

// claimOf validates a claim spec (a document's, or a claim template's at
// field) and returns the claim, its class not resolved yet.
func claimOf(d *document, meta ObjectMeta, sp *PersistentVolumeClaimSpec, field string) (Claim, []Problem) {
	var probs []Problem
	c := Claim{Namespace: meta.Namespace, Name: meta.Name, ReclaimOnNodeLoss: meta.Annotations[AnnotationReclaimOnNodeLoss] == "true"}
	if v, ok := meta.Annotations[AnnotationReclaimOnNodeLoss]; ok && v != "true" && v != "false" {
		probs = append(probs, valueProblem(d, "metadata.annotations."+AnnotationReclaimOnNodeLoss, v, `must be "true" or "false"`))
	}
	c.ReclaimPolicy = "Retain"
	if v, ok := meta.Annotations[AnnotationReclaimPolicy]; ok {
		if v != "Retain" && v != "Delete" {
			probs = append(probs, valueProblem(d, "metadata.annotations."+AnnotationReclaimPolicy, v, "must be Retain or Delete"))
		}
		c.ReclaimPolicy = v
	}
	if len(sp.AccessModes) == 0 {
		probs = append(probs, problemAt(d, field+".accessModes", "at least 1 access mode is required"))
	}
	for i, m := range sp.AccessModes {
		switch m {
		case ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod:
		default:
			probs = append(probs, valueProblem(d, fmt.Sprintf("%s.accessModes[%d]", field, i), m, "must be ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod"))
		}
	}
	c.AccessModes = append([]string(nil), sp.AccessModes...)
	q, ok := sp.Resources.Requests["storage"]
	switch {
	case !ok:
		probs = append(probs, problemAt(d, field+".resources.requests.storage", "required"))
	case q.Sign() <= 0:
		probs = append(probs, valueProblem(d, field+".resources.requests.storage", q.String(), "must be greater than zero"))
	}
	c.Storage = q
	for k := range sp.Resources.Requests {
		if k != "storage" {
			probs = append(probs, valueProblem(d, field+".resources.requests."+k, k, "only storage may be requested by a claim"))
		}
	}
	if l, ok := sp.Resources.Limits["storage"]; ok && q.Cmp(l) > 0 {
		probs = append(probs, valueProblem(d, field+".resources.limits.storage", l.String(), "must be at least the request"))
	}
	if m := sp.VolumeMode; m != nil && *m != "Filesystem" {
		if *m == "Block" {
			probs = append(probs, valueProblem(d, field+".volumeMode", *m, "raw block volumes are not supported by driftless yet (claims are directories)"))
		} else {
			probs = append(probs, valueProblem(d, field+".volumeMode", *m, "must be Filesystem or Block"))
		}
	}
	if sp.StorageClassName != nil {
		c.StorageClass = *sp.StorageClassName
	}
	return c, probs
}

// pendingClaim is a claim waiting for the commit's StorageClasses.
type pendingClaim struct {
	claim      Claim
	class      *string
	modesGiven bool
	d          *document
	field      string
}

func (s *Set) addStorageClass(d *document, o *StorageClass) []Problem {
	var probs []Problem
	switch {
	case localProvisioners[o.Provisioner]:
	case o.Provisioner == ProvisionerHostPath:
		p := o.Parameters["path"]
		if p == "" {
			probs = append(probs, problemAt(d, "parameters.path", "required for "+ProvisionerHostPath+": the directory of shared storage every node mounts at the same path"))
		} else if !path.IsAbs(p) {
			probs = append(probs, valueProblem(d, "parameters.path", p, "must be an absolute path"))
		}
	case o.Provisioner == "":
		probs = append(probs, problemAt(d, "provisioner", "required"))
	default:
		probs = append(probs, valueProblem(d, "provisioner", o.Provisioner,
			fmt.Sprintf("not available here: driftless provisions node-local directories (%s) and directories of a shared host path (%s); cloud disks need their cloud's provisioner", ProvisionerLocal, ProvisionerHostPath)))
	}
	if p := o.ReclaimPolicy; p != nil && *p != "Retain" && *p != "Delete" {
		probs = append(probs, valueProblem(d, "reclaimPolicy", *p, "must be Retain or Delete"))
	}
	if m := o.VolumeBindingMode; m != nil && *m != "Immediate" && *m != "WaitForFirstConsumer" {
		probs = append(probs, valueProblem(d, "volumeBindingMode", *m, "must be Immediate or WaitForFirstConsumer"))
	}
	if len(probs) > 0 {
		return probs
	}
	if p := o.ReclaimPolicy; p != nil && *p == "Delete" {
		s.Warnings = append(s.Warnings, valueProblem(d, "reclaimPolicy", *p, "data of a released claim is kept (Retain) unless the claim is annotated "+AnnotationReclaimPolicy+": Delete"))
	}
	s.StorageClasses = append(s.StorageClasses, *o)
	return nil
}

// resolveClaims resolves every claim's class, checks the access modes
// against it, and gives each workload the claims its volumes name. A
// missing claim is a warning: the replicas that use it stay Pending.
func (s *Set) resolveClaims() []Problem {
	classes := map[string]*StorageClass{}
	var def *StorageClass
	for i := range s.StorageClasses {
		c := &s.StorageClasses[i]
		classes[c.Metadata.Name] = c
		if c.Metadata.Annotations[AnnotationDefaultClass] == "true" && def == nil {
			def = c
		}
	}
	var probs []Problem
	resolve := func(pc pendingClaim) (Claim, bool) {
		c := pc.claim
		var cls *StorageClass
		switch {
		case pc.class == nil:
			cls = def
			if def != nil {
				c.StorageClass = def.Metadata.Name
			}
		case *pc.class == "":
			// No class: a node-local directory.
		default:
			cls = classes[*pc.class]
			if cls == nil {
				s.Warnings = append(s.Warnings, valueProblem(pc.d, pc.field+".storageClassName", *pc.class,
					"StorageClass not in this commit: the claim gets a node-local directory ("+ProvisionerLocal+")"))
			}
		}
		if cls != nil && cls.Provisioner == ProvisionerHostPath {
			c.SharedPath = cls.Parameters["path"]
		}
		ok := true
		for i, m := range c.AccessModes {
			if (m == ReadWriteMany || m == ReadOnlyMany) && c.SharedPath == "" {
				probs = append(probs, valueProblem(pc.d, fmt.Sprintf("%s.accessModes[%d]", pc.field, i), m,
					"needs storage every node shares: name a StorageClass with provisioner "+ProvisionerHostPath+" (node-local claims are ReadWriteOnce)"))
				ok = false
			}
		}
		return c, ok
	}
	claims := map[string]Claim{}
	for _, pc := range s.claimDocs {
		if c, ok := resolve(pc); ok {
			s.Claims = append(s.Claims, c)
			claims[c.Key()] = c
		}
	}
	s.claimDocs = nil
	sort.Slice(s.Claims, func(i, j int) bool { return s.Claims[i].Key() < s.Claims[j].Key() })
	for i := range s.Workloads {
		w := &s.Workloads[i]
		for name, pc := range w.claimTemplates {
			if c, ok := resolve(pc); ok {
				if w.ClaimTemplates == nil {
					w.ClaimTemplates = map[string]Claim{}
				}
				w.ClaimTemplates[name] = c
			}
		}
		w.claimTemplates = nil
	}
	// A StatefulSet's governing Service is looked up at run time, as
	// Kubernetes does: one missing is a warning.
	svcs := map[string]*Service{}
	for i := range s.Services {
		svcs[s.Services[i].Metadata.Namespace+"/"+s.Services[i].Metadata.Name] = &s.Services[i]
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.Stateful == nil || w.Stateful.ServiceName == "" {
			continue
		}
		switch svc := svcs[w.Namespace+"/"+w.Stateful.ServiceName]; {
		case svc == nil:
			s.Warnings = append(s.Warnings, valueProblem(w.doc, "spec.serviceName", w.Stateful.ServiceName,
				fmt.Sprintf("Service not found in namespace %s of this commit: the replicas get no DNS names of their own (<pod>.%s.%s.svc) until a commit adds it", w.Namespace, w.Stateful.ServiceName, w.Namespace)))
		case svc.Spec.ClusterIP != "None":
			s.Warnings = append(s.Warnings, valueProblem(w.doc, "spec.serviceName", w.Stateful.ServiceName,
				"the Service is not headless (clusterIP: None): the replicas get no DNS names of their own"))
		}
	}
	all := make([]*Workload, 0, len(s.Workloads)+len(s.CronJobs))
	for i := range s.Workloads {
		all = append(all, &s.Workloads[i])
	}
	for i := range s.CronJobs {
		all = append(all, &s.CronJobs[i].Template)
	}
	for _, w := range all {
		for vi, v := range w.Template.Spec.Volumes {
			src := v.PersistentVolumeClaim
			if src == nil {
				continue
			}
			if _, ok := w.ClaimTemplates[v.Name]; ok {
				continue
			}
			c, ok := claims[w.Namespace+"/"+src.ClaimName]
			if !ok {
				s.Warnings = append(s.Warnings, valueProblem(w.doc, fmt.Sprintf("%s.volumes[%d].persistentVolumeClaim.claimName", w.specField, vi), src.ClaimName,
					fmt.Sprintf("PersistentVolumeClaim not found in namespace %s of this commit: its replicas stay Pending until a commit adds it", w.Namespace)))
				continue
			}
			if w.Claims == nil {
				w.Claims = map[string]Claim{}
			}
			w.Claims[src.ClaimName] = c
		}
	}
	return probs
}

// validateClaimVolume checks a persistentVolumeClaim volume source.
func validateClaimVolume(d *document, v *Volume, p string) []Problem {
	if v.PersistentVolumeClaim.ClaimName == "" {
		return []Problem{problemAt(d, p+".persistentVolumeClaim.claimName", "required")}
	}
	return invalid(d, p+".persistentVolumeClaim.claimName", v.PersistentVolumeClaim.ClaimName, validation.IsDNS1123Subdomain(v.PersistentVolumeClaim.ClaimName))
}
