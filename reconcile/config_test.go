package reconcile

import (
	"strings"
	"testing"

	"driftless.dev/driftless/manifest"
)

// A required ConfigMap, Secret or key missing from the commit is an error
// in Kubernetes' words; an optional one is skipped.
func TestMissingConfigReferenceMessages(t *testing.T) {
	yes := true
	d := DesiredReplica{
		Workload:   manifest.Ref{Namespace: "ns", Kind: "Deployment", Name: "app"},
		ConfigMaps: map[string]manifest.ConfigMap{"cfg": {Data: map[string]string{"a": "1"}}},
		Secrets:    map[string]manifest.Secret{"sec": {Data: map[string][]byte{"p": []byte("x")}}},
	}
	r := &Reconciler{}
	env := func(src manifest.EnvVarSource) manifest.Container {
		return manifest.Container{Name: "c", Env: []manifest.EnvVar{{Name: "E", ValueFrom: &src}}}
	}
	envCases := []struct {
		name string
		c    manifest.Container
		want string
	}{
		{"configMapKeyRef, no ConfigMap", env(manifest.EnvVarSource{ConfigMapKeyRef: &manifest.KeySelector{Name: "gone", Key: "a"}}), `container c: env E: configmap "gone" not found`},
		{"configMapKeyRef, no key", env(manifest.EnvVarSource{ConfigMapKeyRef: &manifest.KeySelector{Name: "cfg", Key: "b"}}), `container c: env E: couldn't find key b in ConfigMap ns/cfg`},
		{"secretKeyRef, no Secret", env(manifest.EnvVarSource{SecretKeyRef: &manifest.KeySelector{Name: "gone", Key: "p"}}), `container c: env E: secret "gone" not found`},
		{"secretKeyRef, no key", env(manifest.EnvVarSource{SecretKeyRef: &manifest.KeySelector{Name: "sec", Key: "q"}}), `container c: env E: couldn't find key q in Secret ns/sec`},
		{"envFrom ConfigMap", manifest.Container{Name: "c", EnvFrom: []manifest.EnvFromSource{{ConfigMapRef: &manifest.LocalObjectRef{Name: "gone"}}}}, `container c: configmap "gone" not found`},
		{"envFrom Secret", manifest.Container{Name: "c", EnvFrom: []manifest.EnvFromSource{{SecretRef: &manifest.LocalObjectRef{Name: "gone"}}}}, `container c: secret "gone" not found`},
		{"optional", env(manifest.EnvVarSource{ConfigMapKeyRef: &manifest.KeySelector{Name: "gone", Key: "a", Optional: &yes}}), ""},
		{"present", env(manifest.EnvVarSource{ConfigMapKeyRef: &manifest.KeySelector{Name: "cfg", Key: "a"}}), ""},
	}
	for _, tc := range envCases {
		_, err := r.resolveEnv(d, tc.c)
		if got := errString(err); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	volCases := []struct {
		name string
		v    manifest.Volume
		want string
	}{
		{"configMap volume, no ConfigMap", manifest.Volume{Name: "v", ConfigMap: &manifest.ConfigMapVolumeSource{Name: "gone"}}, `configmap "gone" not found`},
		{"secret volume, no Secret", manifest.Volume{Name: "v", Secret: &manifest.SecretVolumeSource{SecretName: "gone"}}, `secret "gone" not found`},
		{"configMap item, no key", manifest.Volume{Name: "v", ConfigMap: &manifest.ConfigMapVolumeSource{Name: "cfg", Items: []manifest.KeyToPath{{Key: "b", Path: "b"}}}}, `couldn't find key b in ConfigMap ns/cfg`},
		{"secret item, no key", manifest.Volume{Name: "v", Secret: &manifest.SecretVolumeSource{SecretName: "sec", Items: []manifest.KeyToPath{{Key: "q", Path: "q"}}}}, `couldn't find key q in Secret ns/sec`},
		{"optional item", manifest.Volume{Name: "v", ConfigMap: &manifest.ConfigMapVolumeSource{Name: "cfg", Optional: &yes, Items: []manifest.KeyToPath{{Key: "b", Path: "b"}}}}, ""},
		{"optional volume", manifest.Volume{Name: "v", Secret: &manifest.SecretVolumeSource{SecretName: "gone", Optional: &yes}}, ""},
	}
	for _, tc := range volCases {
		_, _, err := projectedFiles(d, tc.v)
		if got := errString(err); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimSpace(err.Error())
}
