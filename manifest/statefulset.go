package manifest

import (
	"fmt"
)

// StatefulSet is apps/v1 StatefulSet: replicas with stable ordinal
// identities (<name>-0, <name>-1, ...) as pod name and hostname, each with
// claims of its own from volumeClaimTemplates.
type StatefulSet struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     StatefulSetSpec `json:"spec"`
}

// StatefulSetSpec is the desired state of a StatefulSet.
type StatefulSetSpec struct {
	Replicas             *int32                    `json:"replicas,omitempty"`
	Selector             *LabelSelector            `json:"selector,omitempty"`
	Template             PodTemplateSpec           `json:"template"`
	VolumeClaimTemplates []ClaimTemplate           `json:"volumeClaimTemplates,omitempty"`
	ServiceName          string                    `json:"serviceName,omitempty"`
	PodManagementPolicy  string                    `json:"podManagementPolicy,omitempty"`
	UpdateStrategy       StatefulSetUpdateStrategy `json:"updateStrategy,omitempty"`
	RevisionHistoryLimit *int32                    `json:"revisionHistoryLimit,omitempty"`
	MinReadySeconds      int32                     `json:"minReadySeconds,omitempty"`
	// PersistentVolumeClaimRetentionPolicy is accepted; claims are always
	// retained (a Delete is a warning).
	PersistentVolumeClaimRetentionPolicy *ClaimRetentionPolicy `json:"persistentVolumeClaimRetentionPolicy,omitempty"`
	Ordinals                             *StatefulSetOrdinals  `json:"ordinals,omitempty"`
}

// ClaimTemplate is one of a StatefulSet's volumeClaimTemplates.
type ClaimTemplate struct {
	APIVersion string                    `json:"apiVersion,omitempty"`
	Kind       string                    `json:"kind,omitempty"`
	Metadata   ObjectMeta                `json:"metadata"`
	Spec       PersistentVolumeClaimSpec `json:"spec"`
}

// StatefulSetUpdateStrategy is how a StatefulSet replaces replicas.
type StatefulSetUpdateStrategy struct {
	Type          string                            `json:"type,omitempty"` // RollingUpdate (default) or OnDelete
	RollingUpdate *RollingUpdateStatefulSetStrategy `json:"rollingUpdate,omitempty"`
}

// RollingUpdateStatefulSetStrategy bounds a StatefulSet rolling update.
type RollingUpdateStatefulSetStrategy struct {
	Partition      *int32       `json:"partition,omitempty"`
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
}

// ClaimRetentionPolicy is what happens to the claims of a StatefulSet
// deleted or scaled down.
type ClaimRetentionPolicy struct {
	WhenDeleted string `json:"whenDeleted,omitempty"`
	WhenScaled  string `json:"whenScaled,omitempty"`
}

// StatefulSetOrdinals sets the first ordinal.
type StatefulSetOrdinals struct {
	Start int32 `json:"start,omitempty"`
}

// Pod management policies.
const (
	OrderedReady = "OrderedReady"
	Parallel     = "Parallel"
)

// StatefulSpec is what makes a workload a StatefulSet.
type StatefulSpec struct {
	// ServiceName is the governing headless Service (the replicas'
	// subdomain).
	ServiceName string `json:"serviceName,omitempty"`
	// PodManagementPolicy is OrderedReady or Parallel.
	PodManagementPolicy string `json:"podManagementPolicy"`
	// OrdinalStart is the first ordinal (ordinals.start).
	OrdinalStart int `json:"ordinalStart,omitempty"`
	// Partition: ordinals below it keep their template on an update.
	Partition int `json:"partition,omitempty"`
	// WhenScaled is Retain or Delete: the claims of ordinals scaled away
	// (persistentVolumeClaimRetentionPolicy; whenDeleted is the claims'
	// ReclaimPolicy).
	WhenScaled string `json:"whenScaled,omitempty"`
}

// Ordinals are the replica indexes a StatefulSet of n replicas has.
func (s *StatefulSpec) Ordinals(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = s.OrdinalStart + i
	}
	return out
}

func (s *Set) addStatefulSet(d *document, o *StatefulSet) []Problem {
	sp := &o.Spec
	if sp.Replicas == nil {
		sp.Replicas = ptr[int32](1)
	}
	if sp.PodManagementPolicy == "" {
		sp.PodManagementPolicy = OrderedReady
	}
	if sp.UpdateStrategy.Type == "" {
		sp.UpdateStrategy.Type = "RollingUpdate"
	}
	if sp.UpdateStrategy.Type == "RollingUpdate" {
		if sp.UpdateStrategy.RollingUpdate == nil {
			sp.UpdateStrategy.RollingUpdate = &RollingUpdateStatefulSetStrategy{}
		}
		ru := sp.UpdateStrategy.RollingUpdate
		if ru.Partition == nil {
			ru.Partition = ptr[int32](0)
		}
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = &IntOrString{IntVal: 1}
		}
	}
	defaultPodSpec(&sp.Template.Spec, RestartAlways)
	// As Kubernetes' StatefulSet controller: the replicas' subdomain is
	// the governing Service, and a claim template replaces a template
	// volume of its name.
	if sp.ServiceName != "" {
		sp.Template.Spec.Subdomain = sp.ServiceName
	}
	var probs []Problem
	tmplNames := map[string]bool{}
	pending := map[string]pendingClaim{}
	for i, ct := range sp.VolumeClaimTemplates {
		f := fmt.Sprintf("spec.volumeClaimTemplates[%d]", i)
		n := ct.Metadata.Name
		switch {
		case n == "":
			probs = append(probs, problemAt(d, f+".metadata.name", "required"))
			continue
		case !isDNS1123Label(n):
			probs = append(probs, valueProblem(d, f+".metadata.name", n, "must be a DNS-1123 label (it names a volume)"))
			continue
		case tmplNames[n]:
			probs = append(probs, valueProblem(d, f+".metadata.name", n, "duplicate claim template name"))
			continue
		}
		tmplNames[n] = true
		meta := ct.Metadata
		meta.Namespace = o.Metadata.Namespace
		if meta.Namespace == "" {
			meta.Namespace = "default"
		}
		c, cp := claimOf(d, meta, &ct.Spec, f+".spec")
		probs = append(probs, cp...)
		pending[n] = pendingClaim{claim: c, class: ct.Spec.StorageClassName, d: d, field: f + ".spec"}
	}
	if len(tmplNames) > 0 {
		vols := sp.Template.Spec.Volumes[:0:0]
		for _, v := range sp.Template.Spec.Volumes {
			if !tmplNames[v.Name] {
				vols = append(vols, v)
			}
		}
		for _, ct := range sp.VolumeClaimTemplates {
			if tmplNames[ct.Metadata.Name] {
				vols = append(vols, Volume{Name: ct.Metadata.Name, PersistentVolumeClaim: &PersistentVolumeClaimVolumeSource{ClaimName: ct.Metadata.Name}})
			}
		}
		sp.Template.Spec.Volumes = vols
	}
	probs = append(probs, validateController(d, sp.Selector, &sp.Template, "spec")...)
	probs = append(probs, validateReplicas(d, sp.Replicas, "spec.replicas")...)
	if sp.ServiceName != "" && !isDNS1123Label(sp.ServiceName) {
		probs = append(probs, valueProblem(d, "spec.serviceName", sp.ServiceName, "must be a DNS-1123 label (the name of a Service)"))
	}
	switch sp.PodManagementPolicy {
	case OrderedReady, Parallel:
	default:
		probs = append(probs, valueProblem(d, "spec.podManagementPolicy", sp.PodManagementPolicy, "must be OrderedReady or Parallel"))
	}
	switch sp.UpdateStrategy.Type {
	case "RollingUpdate":
		ru := sp.UpdateStrategy.RollingUpdate
		if *ru.Partition < 0 {
			probs = append(probs, valueProblem(d, "spec.updateStrategy.rollingUpdate.partition", fmt.Sprint(*ru.Partition), "must be >= 0"))
		}
		if mu := ru.MaxUnavailable; mu.IsString {
			if _, err := mu.ScaledValue(100, false); err != nil {
				probs = append(probs, valueProblem(d, "spec.updateStrategy.rollingUpdate.maxUnavailable", mu.StrVal, "must be an integer or a percentage"))
			}
		} else if mu.IntVal < 1 {
			probs = append(probs, valueProblem(d, "spec.updateStrategy.rollingUpdate.maxUnavailable", fmt.Sprint(mu.IntVal), "must be at least 1"))
		}
	case "OnDelete":
		if sp.UpdateStrategy.RollingUpdate != nil {
			probs = append(probs, problemAt(d, "spec.updateStrategy.rollingUpdate", "only with type RollingUpdate"))
		}
	default:
		probs = append(probs, valueProblem(d, "spec.updateStrategy.type", sp.UpdateStrategy.Type, "must be RollingUpdate or OnDelete"))
	}
	if sp.MinReadySeconds < 0 {
		probs = append(probs, valueProblem(d, "spec.minReadySeconds", fmt.Sprint(sp.MinReadySeconds), "must be >= 0"))
	}
	if o := sp.Ordinals; o != nil && o.Start < 0 {
		probs = append(probs, valueProblem(d, "spec.ordinals.start", fmt.Sprint(o.Start), "must be >= 0"))
	}
	whenDeleted, whenScaled := "Retain", "Retain"
	if rp := sp.PersistentVolumeClaimRetentionPolicy; rp != nil {
		for _, f := range []struct {
			field, v string
			to       *string
		}{{"whenDeleted", rp.WhenDeleted, &whenDeleted}, {"whenScaled", rp.WhenScaled, &whenScaled}} {
			switch f.v {
			case "":
			case "Retain", "Delete":
				*f.to = f.v
			default:
				probs = append(probs, valueProblem(d, "spec.persistentVolumeClaimRetentionPolicy."+f.field, f.v, "must be Retain or Delete"))
			}
		}
	}
	for n, pc := range pending {
		pc.claim.ReclaimPolicy = whenDeleted
		pending[n] = pc
	}
	if len(probs) > 0 {
		return probs
	}
	w := s.workload(d, "StatefulSet", o.Metadata, sp.Template, int(*sp.Replicas))
	st := &StatefulSpec{ServiceName: sp.ServiceName, PodManagementPolicy: sp.PodManagementPolicy, WhenScaled: whenScaled}
	if sp.Ordinals != nil {
		st.OrdinalStart = int(sp.Ordinals.Start)
	}
	w.Rollout = &RolloutSpec{Strategy: sp.UpdateStrategy.Type, MinReadySeconds: int(sp.MinReadySeconds)}
	if ru := sp.UpdateStrategy.RollingUpdate; ru != nil {
		st.Partition = int(*ru.Partition)
		w.Rollout.MaxUnavailable = *ru.MaxUnavailable
	}
	w.Stateful = st
	w.claimTemplates = pending
	s.Workloads = append(s.Workloads, w)
	return nil
}
