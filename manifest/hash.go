package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// HashTemplate is the stable hash of a defaulted pod template: canonical
// JSON (encoding/json sorts map keys) → sha256 → first 10 hex digits.
func HashTemplate(t PodTemplateSpec) string {
	// Termination message settings equal to Kubernetes' defaults (as
	// exported manifests spell them out) hash as if absent: a template
	// that states them is the same template.
	t.Spec.InitContainers = withoutDefaultTermination(t.Spec.InitContainers)
	t.Spec.Containers = withoutDefaultTermination(t.Spec.Containers)
	b, err := json.Marshal(t)
	if err != nil {
		panic(fmt.Sprintf("hash template: %v", err)) // only plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

func withoutDefaultTermination(cs []Container) []Container {
	var out []Container
	for i, c := range cs {
		if c.TerminationMessagePath != DefaultTerminationMessagePath && c.TerminationMessagePolicy != TerminationMessageFile {
			continue
		}
		if out == nil {
			out = append([]Container(nil), cs...)
		}
		if c.TerminationMessagePath == DefaultTerminationMessagePath {
			out[i].TerminationMessagePath = ""
		}
		if c.TerminationMessagePolicy == TerminationMessageFile {
			out[i].TerminationMessagePolicy = ""
		}
	}
	if out == nil {
		return cs
	}
	return out
}

// hashWithRefs hashes the template together with the content of the
// ConfigMaps and Secrets it uses (the hash is public; it reveals nothing of
// the values).
func hashWithRefs(t PodTemplateSpec, cms map[string]ConfigMap, secs map[string]Secret, missingSA string) string {
	type cm struct {
		Data       map[string]string
		BinaryData map[string][]byte
	}
	refs := struct {
		Template   PodTemplateSpec
		ConfigMaps map[string]cm
		Secrets    map[string]map[string][]byte
		// MissingServiceAccount changes the hash once the commit adds it.
		MissingServiceAccount string `json:",omitempty"`
	}{Template: t, ConfigMaps: map[string]cm{}, Secrets: map[string]map[string][]byte{}, MissingServiceAccount: missingSA}
	for n, c := range cms {
		refs.ConfigMaps[n] = cm{c.Data, c.BinaryData}
	}
	for n, c := range secs {
		refs.Secrets[n] = c.Data
	}
	b, err := json.Marshal(refs)
	if err != nil {
		panic(fmt.Sprintf("hash template: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

// generatedAlphabet is the letters Kubernetes uses for generated names
// (no vowels, no look-alike digits).
const generatedAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// GeneratedName is a Job's or Pod's name from its generateName: the
// prefix and five letters from a hash of the document's content. Every
// leader derives the same one from the same commit, a commit that does
// not change the document keeps it (the run is not started again), and
// a change gives a new name: a new run, the old one in history.
func GeneratedName(prefix string, doc *yaml.Node) string {
	b, err := yaml.Marshal(doc)
	if err != nil {
		b = []byte(prefix)
	}
	h := sha256.Sum256(b)
	suffix := make([]byte, 5)
	for i := range suffix {
		suffix[i] = generatedAlphabet[int(h[i])%len(generatedAlphabet)]
	}
	return prefix + string(suffix)
}
