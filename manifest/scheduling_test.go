package manifest

import (
	"reflect"
	"strings"
	"testing"
)

const schedulingDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      tolerations:
        - key: dedicated
          operator: Equal
          value: web
          effect: NoSchedule
        - operator: Exists
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - {key: topology.kubernetes.io/zone, operator: In, values: [a, b]}
                  - {key: cores, operator: Gt, values: ["4"]}
                matchFields:
                  - {key: metadata.name, operator: NotIn, values: [n1]}
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 50
              preference:
                matchExpressions:
                  - {key: disk, operator: Exists}
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - labelSelector: {matchLabels: {app: web}}
              topologyKey: kubernetes.io/hostname
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 10
              podAffinityTerm:
                labelSelector: {matchExpressions: [{key: app, operator: In, values: [db]}]}
                namespaces: [data]
                topologyKey: topology.kubernetes.io/zone
        podAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 5
              podAffinityTerm:
                labelSelector: {matchLabels: {app: cache}}
                topologyKey: topology.kubernetes.io/zone
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: DoNotSchedule
          labelSelector: {matchLabels: {app: web}}
      containers:
        - name: main
          image: busybox:1.36
`

func TestSchedulingFieldsDecode(t *testing.T) {
	set, errs := load(t, "apps/web.yaml", schedulingDeployment)
	if errs != nil {
		t.Fatalf("rejected: %v", errs)
	}
	s := set.Workloads[0].Template.Spec
	if len(s.Tolerations) != 2 || s.Tolerations[1].Operator != "Exists" || s.Tolerations[0].Value != "web" {
		t.Fatalf("tolerations = %+v", s.Tolerations)
	}
	req := s.Affinity.NodeAffinity.Required.NodeSelectorTerms[0]
	if !reflect.DeepEqual(req.MatchExpressions[1], NodeSelectorRequirement{Key: "cores", Operator: "Gt", Values: []string{"4"}}) || req.MatchFields[0].Values[0] != "n1" {
		t.Fatalf("node affinity = %+v", req)
	}
	if s.Affinity.PodAntiAffinity.Required[0].TopologyKey != "kubernetes.io/hostname" || s.Affinity.PodAntiAffinity.Preferred[0].PodAffinityTerm.Namespaces[0] != "data" {
		t.Fatalf("pod anti-affinity = %+v", s.Affinity.PodAntiAffinity)
	}
	if s.Affinity.PodAffinity.Preferred[0].Weight != 5 || s.TopologySpreadConstraints[0].MaxSkew != 1 {
		t.Fatalf("pod affinity or spread lost: %+v %+v", s.Affinity.PodAffinity, s.TopologySpreadConstraints)
	}
	// Scheduling fields are part of what a replica is, so of its hash.
	other := strings.Replace(schedulingDeployment, "weight: 50", "weight: 51", 1)
	set2, errs := load(t, "apps/web.yaml", other)
	if errs != nil {
		t.Fatalf("rejected: %v", errs)
	}
	if set.Workloads[0].SpecHash == set2.Workloads[0].SpecHash {
		t.Fatalf("a changed preference kept the spec hash")
	}
}

func TestSchedulingFieldsValidate(t *testing.T) {
	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"toleration operator", "operator: Equal", "operator: Like",
			[]string{`apps/web.yaml:15: spec.template.spec.tolerations[0].operator: "Like": must be Equal or Exists`}},
		{"toleration effect", "effect: NoSchedule", "effect: Never",
			[]string{`apps/web.yaml:17: spec.template.spec.tolerations[0].effect: "Never": must be NoSchedule, PreferNoSchedule or NoExecute`}},
		{"exists with value", "        - operator: Exists", "        - {operator: Exists, value: x}",
			[]string{`apps/web.yaml:18: spec.template.spec.tolerations[1].value: "x": must be empty when operator is Exists`}},
		{"empty key needs Exists", "        - operator: Exists", "        - {value: x}",
			[]string{`apps/web.yaml:18: spec.template.spec.tolerations[1].operator: must be Exists when key is empty`}},
		{"node affinity operator", "operator: Gt", "operator: Ge",
			[]string{`apps/web.yaml:25: spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].operator: "Ge": must be In, NotIn, Exists, DoesNotExist, Gt or Lt`}},
		{"Gt value", `values: ["4"]`, `values: ["four"]`,
			[]string{`apps/web.yaml:25: spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values[0]: "four": must be an integer for Gt and Lt`}},
		{"In without values", "operator: In, values: [a, b]", "operator: In",
			[]string{`apps/web.yaml:24: spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: required for In and NotIn`}},
		{"match field key", "key: metadata.name", "key: metadata.uid",
			[]string{`apps/web.yaml:27: spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key: "metadata.uid": must be metadata.name`}},
		{"weight", "weight: 50", "weight: 101",
			[]string{`apps/web.yaml:29: spec.template.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "101": must be in the range 1-100`}},
		{"pod weight", "weight: 10", "weight: 0",
			[]string{`apps/web.yaml:38: spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "0": must be in the range 1-100`}},
		{"topology key", "              topologyKey: kubernetes.io/hostname", "              topologyKey: ''",
			[]string{`apps/web.yaml:36: spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: required`}},
		{"namespace selector", "                namespaces: [data]", "                namespaceSelector: {}",
			[]string{`apps/web.yaml:41: spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.namespaceSelector: not supported by driftless yet`}},
		{"max skew", "maxSkew: 1", "maxSkew: 0",
			[]string{`apps/web.yaml:50: spec.template.spec.topologySpreadConstraints[0].maxSkew: "0": must be greater than 0`}},
		{"when unsatisfiable", "whenUnsatisfiable: DoNotSchedule", "whenUnsatisfiable: Never",
			[]string{`apps/web.yaml:52: spec.template.spec.topologySpreadConstraints[0].whenUnsatisfiable: "Never": must be DoNotSchedule or ScheduleAnyway`}},
		{"min domains", "        - maxSkew: 1", "        - maxSkew: 1\n          minDomains: 2",
			[]string{`apps/web.yaml:51: spec.template.spec.topologySpreadConstraints[0].minDomains: not supported by driftless yet`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(schedulingDeployment, tc.old, tc.new, 1)
			if in == schedulingDeployment {
				t.Fatalf("%q not in the manifest", tc.old)
			}
			_, got := load(t, "apps/web.yaml", in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
