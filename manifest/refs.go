package manifest

import (
	"fmt"
)

// resolveRefs finds the ConfigMaps and Secrets each workload refers to in
// the same commit and namespace and folds their content into the spec
// hash. As in Kubernetes, a reference to a missing one (or to a missing
// key) that is not marked optional does not make the commit invalid: the
// replicas that use it stay Pending (CreateContainerConfigError) until a
// commit adds it, which changes the spec hash. It is a warning here.
func (s *Set) resolveRefs() {
	cms := map[string]ConfigMap{}
	for _, c := range s.ConfigMaps {
		cms[c.Metadata.Namespace+"/"+c.Metadata.Name] = c
	}
	secs := map[string]Secret{}
	for _, c := range s.Secrets {
		secs[c.Metadata.Namespace+"/"+c.Metadata.Name] = c
	}
	sas := map[string]bool{}
	saAutomount := map[string]*bool{}
	for _, a := range s.ServiceAccounts {
		sas[a.Metadata.Namespace+"/"+a.Metadata.Name] = true
		saAutomount[a.Metadata.Namespace+"/"+a.Metadata.Name] = a.AutomountServiceAccountToken
	}
	seen := map[string]bool{}
	add := func(p Problem) {
		if !seen[p.String()] {
			seen[p.String()] = true
			s.Warnings = append(s.Warnings, p)
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
		d, spec := w.doc, w.Template.Spec
		missing := func(field, kind, name string) {
			add(valueProblem(d, field, name, fmt.Sprintf("%s not found in namespace %s of this commit: its replicas stay Pending (CreateContainerConfigError) until a commit adds it (mark it optional: true if it may be absent)", kind, w.Namespace)))
		}
		useCM := func(field, name, key string, optional *bool) {
			c, ok := cms[w.Namespace+"/"+name]
			if !ok {
				if optional == nil || !*optional {
					missing(field+".name", "ConfigMap", name)
				}
				return
			}
			if key != "" {
				_, inData := c.Data[key]
				_, inBin := c.BinaryData[key]
				if !inData && !inBin && (optional == nil || !*optional) {
					add(valueProblem(d, field+".key", key, fmt.Sprintf("no such key in ConfigMap %s: its replicas stay Pending (CreateContainerConfigError) until a commit adds it", name)))
				}
			}
			if w.ConfigMaps == nil {
				w.ConfigMaps = map[string]ConfigMap{}
			}
			w.ConfigMaps[name] = c
		}
		useSecret := func(field, nameField, name, key string, optional *bool) {
			c, ok := secs[w.Namespace+"/"+name]
			if !ok {
				if optional == nil || !*optional {
					missing(field+"."+nameField, "Secret", name)
				}
				return
			}
			if _, in := c.Data[key]; key != "" && !in && (optional == nil || !*optional) {
				add(valueProblem(d, field+".key", key, fmt.Sprintf("no such key in Secret %s: its replicas stay Pending (CreateContainerConfigError) until a commit adds it", name)))
			}
			if w.Secrets == nil {
				w.Secrets = map[string]Secret{}
			}
			w.Secrets[name] = c
		}
		all := make([]Container, 0, len(spec.InitContainers)+len(spec.Containers))
		all = append(append(all, spec.InitContainers...), spec.Containers...)
		for ci, c := range all {
			cp := fmt.Sprintf("%s.containers[%d]", w.specField, ci-len(spec.InitContainers))
			if ci < len(spec.InitContainers) {
				cp = fmt.Sprintf("%s.initContainers[%d]", w.specField, ci)
			}
			for ei, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				ep := fmt.Sprintf("%s.env[%d].valueFrom", cp, ei)
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					useCM(ep+".configMapKeyRef", r.Name, r.Key, r.Optional)
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					useSecret(ep+".secretKeyRef", "name", r.Name, r.Key, r.Optional)
				}
			}
			for ei, e := range c.EnvFrom {
				ep := fmt.Sprintf("%s.envFrom[%d]", cp, ei)
				if r := e.ConfigMapRef; r != nil {
					useCM(ep+".configMapRef", r.Name, "", r.Optional)
				}
				if r := e.SecretRef; r != nil {
					useSecret(ep+".secretRef", "name", r.Name, "", r.Optional)
				}
			}
		}
		for vi, v := range spec.Volumes {
			vp := fmt.Sprintf("%s.volumes[%d]", w.specField, vi)
			if v.ConfigMap != nil {
				for _, it := range v.ConfigMap.Items {
					useCM(vp+".configMap", v.ConfigMap.Name, it.Key, v.ConfigMap.Optional)
				}
				useCM(vp+".configMap", v.ConfigMap.Name, "", v.ConfigMap.Optional)
			}
			if v.Secret != nil {
				for _, it := range v.Secret.Items {
					useSecret(vp+".secret", "secretName", v.Secret.SecretName, it.Key, v.Secret.Optional)
				}
				useSecret(vp+".secret", "secretName", v.Secret.SecretName, "", v.Secret.Optional)
			}
			if pr := v.Projected; pr != nil {
				for si, src := range pr.Sources {
					sp := fmt.Sprintf("%s.projected.sources[%d]", vp, si)
					if c := src.ConfigMap; c != nil {
						for _, it := range c.Items {
							useCM(sp+".configMap", c.Name, it.Key, c.Optional)
						}
						useCM(sp+".configMap", c.Name, "", c.Optional)
					}
					if c := src.Secret; c != nil {
						for _, it := range c.Items {
							useSecret(sp+".secret", "name", c.Name, it.Key, c.Optional)
						}
						useSecret(sp+".secret", "name", c.Name, "", c.Optional)
					}
					if src.ServiceAccountToken != nil {
						add(problemAt(d, sp+".serviceAccountToken", "no token file is written: there is no Kubernetes API server to issue one"))
					}
				}
			}
		}
		sa := spec.ServiceAccount()
		if sa != "default" && !sas[w.Namespace+"/"+sa] {
			w.MissingServiceAccount = sa
			f := w.specField + ".serviceAccountName"
			if spec.ServiceAccountName == "" {
				f = w.specField + ".serviceAccount"
			}
			add(valueProblem(d, f, sa, fmt.Sprintf("ServiceAccount not found in namespace %s of this commit: its replicas stay Pending (CreateContainerConfigError) until a commit adds it", w.Namespace)))
		}
		for i, ps := range spec.ImagePullSecrets {
			f := fmt.Sprintf("%s.imagePullSecrets[%d].name", w.specField, i)
			c, ok := secs[w.Namespace+"/"+ps.Name]
			if !ok {
				add(valueProblem(d, f, ps.Name, fmt.Sprintf("Secret not found in namespace %s of this commit: the pod's images are pulled without it (with --registry-config's credentials)", w.Namespace)))
				continue
			}
			_, cfgJSON := c.Data[".dockerconfigjson"]
			_, cfg := c.Data[".dockercfg"]
			if !cfgJSON && !cfg {
				add(valueProblem(d, f, ps.Name, "Secret has no .dockerconfigjson (type kubernetes.io/dockerconfigjson): it gives no credentials"))
			}
			if w.Secrets == nil {
				w.Secrets = map[string]Secret{}
			}
			w.Secrets[ps.Name] = c
		}
		// A pod that names its ServiceAccount is one that may talk to the
		// API with its token: say that none is mounted (a pod left on
		// "default" is not warned about, most never read it).
		if sa != "default" && automountToken(spec, saAutomount[w.Namespace+"/"+sa]) {
			add(Problem{File: d.file, Line: d.lineOf(w.specField), Field: w.specField + ".automountServiceAccountToken",
				Message: "no service account token is mounted (there is no Kubernetes API server); set automountServiceAccountToken: false to say the pod needs none"})
		}
		if len(w.ConfigMaps)+len(w.Secrets) > 0 || w.MissingServiceAccount != "" {
			w.SpecHash = hashWithRefs(w.Template, w.ConfigMaps, w.Secrets, w.MissingServiceAccount)
		}
	}
}

// automountToken reports whether Kubernetes would mount a token into the
// pod: unless the pod, or else its ServiceAccount, says false.
func automountToken(spec PodSpec, sa *bool) bool {
	if spec.AutomountServiceAccountToken != nil {
		return *spec.AutomountServiceAccountToken
	}
	return sa == nil || *sa
}
