package manifest

import (
	"fmt"

	"driftless.dev/driftless/internal/sealed"
	"k8s.io/apimachinery/pkg/util/validation"
)

func (s *Set) addConfigMap(d *document, o *ConfigMap) []Problem {
	var probs []Problem
	for k := range o.Data {
		if !isConfigKey(k) {
			probs = append(probs, valueProblem(d, "data."+k, k, "must be a valid config key ([-._a-zA-Z0-9]+)"))
		}
		if _, dup := o.BinaryData[k]; dup {
			probs = append(probs, valueProblem(d, "binaryData."+k, k, "duplicates a key of data"))
		}
	}
	for k := range o.BinaryData {
		if !isConfigKey(k) {
			probs = append(probs, valueProblem(d, "binaryData."+k, k, "must be a valid config key ([-._a-zA-Z0-9]+)"))
		}
	}
	if len(probs) > 0 {
		return probs
	}
	s.ConfigMaps = append(s.ConfigMaps, *o)
	return nil
}

func (s *Set) addSecret(d *document, o *Secret) []Problem {
	var probs []Problem
	if _, ok := o.Metadata.Annotations[sealed.Annotation]; ok {
		o.Sealed = true
		probs = append(probs, checkSealed(d, o)...)
	}
	for k := range o.Data {
		if !isConfigKey(k) {
			probs = append(probs, valueProblem(d, "data."+k, k, "must be a valid secret key ([-._a-zA-Z0-9]+)"))
		}
	}
	for k := range o.StringData {
		if !isConfigKey(k) {
			probs = append(probs, valueProblem(d, "stringData."+k, k, "must be a valid secret key ([-._a-zA-Z0-9]+)"))
		}
	}
	if len(probs) > 0 {
		return probs
	}
	if o.Type == "" {
		o.Type = "Opaque"
	}
	// stringData is merged into data, as the API server does.
	if len(o.StringData) > 0 {
		if o.Data == nil {
			o.Data = map[string][]byte{}
		}
		for k, v := range o.StringData {
			o.Data[k] = []byte(v)
		}
		o.StringData = nil
	}
	if o.Sealed {
		s.Secrets = append(s.Secrets, *o)
		return nil
	}
	plain := Problem{File: d.file, Line: d.line, Field: "kind", Message: fmt.Sprintf("Secret %s/%s is stored in plain text in Git (seal it: driftless secret seal)", o.Metadata.Namespace, o.Metadata.Name)}
	if s.opts.RequireSealedSecrets {
		plain.Message += "; sealed Secrets are required"
		return []Problem{plain}
	}
	s.Secrets = append(s.Secrets, *o)
	s.Warnings = append(s.Warnings, plain)
	return nil
}

// checkSealed validates the structure of a sealed Secret: the scheme, no
// stringData, and every data value a well-formed age ciphertext. It
// needs no key.
func checkSealed(d *document, o *Secret) []Problem {
	field := "metadata.annotations." + sealed.Annotation
	if v := o.Metadata.Annotations[sealed.Annotation]; v != sealed.Scheme {
		return []Problem{valueProblem(d, field, v, fmt.Sprintf("unknown sealing scheme (want %q)", sealed.Scheme))}
	}
	var probs []Problem
	for k := range o.StringData {
		probs = append(probs, Problem{File: d.file, Line: d.lineOf("stringData." + k), Field: "stringData." + k,
			Message: "a sealed Secret holds its values as age ciphertexts under data (driftless secret seal); a plain value here would be in Git"})
	}
	if len(o.Data) == 0 {
		probs = append(probs, Problem{File: d.file, Line: d.lineOf(field), Field: "data", Message: "a sealed Secret needs at least one sealed value"})
	}
	for k, v := range o.Data {
		if _, err := sealed.Recipients(v); err != nil {
			probs = append(probs, Problem{File: d.file, Line: d.lineOf("data." + k), Field: "data." + k, Message: err.Error()})
		}
	}
	return probs
}

func (s *Set) addNode(d *document, o *Node) []Problem {
	var probs []Problem
	for i, t := range o.Spec.Taints {
		p := fmt.Sprintf("spec.taints[%d]", i)
		probs = append(probs, invalid(d, p+".key", t.Key, validation.IsQualifiedName(t.Key))...)
		switch t.Effect {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			probs = append(probs, valueProblem(d, p+".effect", t.Effect, "must be NoSchedule, PreferNoSchedule or NoExecute"))
		}
	}
	probs = append(probs, validateLabels(d, o.Spec.Labels, "spec.labels")...)
	if len(probs) > 0 {
		return probs
	}
	s.Nodes = append(s.Nodes, *o)
	return nil
}
