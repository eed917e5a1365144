package manifest

import (
	"strings"
	"testing"
)

func TestDownwardAPIVolumes(t *testing.T) {
	pod := func(items string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: p}\nspec:\n" +
			"  containers:\n  - name: a\n    image: x:1\n    volumeMounts: [{name: info, mountPath: /etc/info}]\n" +
			"  volumes:\n  - name: info\n    downwardAPI:\n      defaultMode: 0444\n      items:\n" + items
	}
	good := pod(`      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: labels, fieldRef: {fieldPath: metadata.labels}, mode: 0400}
      - {path: sub/app, fieldRef: {fieldPath: "metadata.labels['app']"}}
      - {path: mem, resourceFieldRef: {containerName: a, resource: limits.memory, divisor: 1Mi}}
`)
	set, probs := load(t, "p.yaml", good)
	if probs != nil {
		t.Fatalf("valid downwardAPI volume refused: %v", probs)
	}
	v := set.Workloads[0].Template.Spec.Volumes[0].DownwardAPI
	if v == nil || len(v.Items) != 4 || *v.DefaultMode != 0o444 || *v.Items[1].Mode != 0o400 || v.Items[3].ResourceFieldRef.Divisor.String() != "1Mi" {
		t.Fatalf("decoded %+v", v)
	}
	for _, c := range []struct{ name, items, want string }{
		{"env-only field", "      - {path: node, fieldRef: {fieldPath: spec.nodeName}}\n", `p.yaml:16: spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: "spec.nodeName": not a supported field`},
		{"container required", "      - {path: cpu, resourceFieldRef: {resource: limits.cpu}}\n", `items[0].resourceFieldRef.containerName: required in a volume`},
		{"unknown container", "      - {path: cpu, resourceFieldRef: {containerName: b, resource: limits.cpu}}\n", `"b": no container of that name in the pod`},
		{"both sources", "      - {path: x, fieldRef: {fieldPath: metadata.name}, resourceFieldRef: {containerName: a, resource: limits.cpu}}\n", `items[0]: must name exactly one of fieldRef and resourceFieldRef`},
		{"path outside", "      - {path: ../x, fieldRef: {fieldPath: metadata.name}}\n", `items[0].path: "../x": must be a relative path inside the volume`},
		{"duplicate path", "      - {path: x, fieldRef: {fieldPath: metadata.name}}\n      - {path: x, fieldRef: {fieldPath: metadata.namespace}}\n", `items[1].path: "x": duplicate path`},
		{"unknown field", "      - {path: x, fieldRef: {fieldPath: metadata.name}, format: json}\n", `items[0].format: unknown field`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, got := load(t, "p.yaml", pod(c.items))
			if !strings.Contains(strings.Join(got, "\n"), c.want) {
				t.Fatalf("got %q, want a line containing %q", got, c.want)
			}
		})
	}
}
