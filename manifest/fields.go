package manifest

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// compatFields renders the field tables of docs/compatibility.md from the
// types and the unsupported/ignored tables, so the document cannot drift
// from the code.
func compatFields() string {
	types := []reflect.Type{
		reflect.TypeOf(ObjectMeta{}), reflect.TypeOf(DeploymentSpec{}), reflect.TypeOf(DaemonSetSpec{}),
		reflect.TypeOf(ReplicaSetSpec{}), reflect.TypeOf(JobSpec{}), reflect.TypeOf(CronJobSpec{}), reflect.TypeOf(PodSpec{}),
		reflect.TypeOf(Container{}), reflect.TypeOf(EnvVar{}), reflect.TypeOf(ContainerPort{}),
		reflect.TypeOf(ResourceRequirements{}), reflect.TypeOf(VolumeMount{}), reflect.TypeOf(Volume{}),
		reflect.TypeOf(EnvVarSource{}), reflect.TypeOf(EnvFromSource{}), reflect.TypeOf(ConfigMapVolumeSource{}),
		reflect.TypeOf(SecretVolumeSource{}), reflect.TypeOf(Probe{}), reflect.TypeOf(HTTPGetAction{}),
		reflect.TypeOf(Lifecycle{}), reflect.TypeOf(LifecycleHandler{}), reflect.TypeOf(SecurityContext{}),
		reflect.TypeOf(PodSecurityContext{}), reflect.TypeOf(SeccompProfile{}), reflect.TypeOf(DownwardAPIVolumeSource{}),
		reflect.TypeOf(DownwardAPIVolumeFile{}), reflect.TypeOf(ProjectedVolumeSource{}), reflect.TypeOf(VolumeProjection{}), reflect.TypeOf(EphemeralVolumeSource{}), reflect.TypeOf(NodeSpec{}),
		reflect.TypeOf(Toleration{}), reflect.TypeOf(Affinity{}), reflect.TypeOf(NodeAffinity{}),
		reflect.TypeOf(NodeSelectorTerm{}), reflect.TypeOf(PodAffinity{}), reflect.TypeOf(PodAffinityTerm{}),
		reflect.TypeOf(TopologySpreadConstraint{}), reflect.TypeOf(PodDNSConfig{}), reflect.TypeOf(HostAlias{}),
		reflect.TypeOf(ServiceSpec{}), reflect.TypeOf(ServicePort{}), reflect.TypeOf(ServiceAccount{}),
	}
	var b strings.Builder
	b.WriteString("\n## Fields\n\nPer type: fields driftless implements, fields accepted with no effect, and real Kubernetes fields it rejects as not supported yet (any other field is an unknown-field error).\n\n")
	b.WriteString("| type | supported | accepted, no effect | not supported yet |\n|---|---|---|---|\n")
	for _, t := range types {
		fields := map[string]fieldInfo{}
		jsonFields(t, fields)
		var sup []string
		for n := range fields {
			sup = append(sup, "`"+n+"`")
		}
		sort.Strings(sup)
		var ign []string
		for n, why := range ignored[t] {
			ign = append(ign, fmt.Sprintf("`%s` (%s)", n, why))
		}
		sort.Strings(ign)
		var uns []string
		for n := range unsupported[t] {
			uns = append(uns, "`"+n+"`")
		}
		sort.Strings(uns)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name(), strings.Join(sup, ", "), strings.Join(ign, ", "), strings.Join(uns, ", "))
	}
	b.WriteString("\nSemantics today: `restartPolicy` with Kubernetes back-off; Jobs are driven by the leader to `completions` succeeded replicas with at most `parallelism` active; a failed replica counts against `backoffLimit` (restartPolicy `Never`: replaced by a new index; `OnFailure`: restarted in place by the node, each restart counted), and more failures than `backoffLimit` fail the Job (`BackoffLimitExceeded`); `activeDeadlineSeconds` fails it (`DeadlineExceeded`) and stops its running replicas; `ttlSecondsAfterFinished` removes a finished Job's replicas from the nodes (its record stays on the status branch); a Job whose template changes starts a new run (counts start over). CronJobs (`batch/v1`) start a Job named `<cronjob>-<scheduled unix minutes>` at each time of `schedule` (5 fields or `@hourly`-style descriptors) in `timeZone` (IANA, default UTC), with `concurrencyPolicy`, `startingDeadlineSeconds` (after an outage at most one missed run is started), `suspend` and the two history limits; a changed Deployment template rolls out as Kubernetes does, driven by the leader one status commit per step: `RollingUpdate` keeps at least `replicas - maxUnavailable` replicas available and places at most `replicas + maxSurge` (integers or percentages, default 25%/25%, surge rounded up, unavailable down), `Recreate` removes every old replica and starts the new ones once no node reports an old one running; a replica is available once ready for `minReadySeconds`; no progress for `progressDeadlineSeconds` marks the rollout `Progressing=False` (`ProgressDeadlineExceeded`) in the placement file and it takes no more replicas down; `paused` freezes it; a DaemonSet's `RollingUpdate` replaces at most `maxUnavailable` nodes' replicas at a time (`maxSurge` other than 0 is not supported yet), `OnDelete` keeps the old template until a replica is placed anew (its node is lost or drained); `revisionHistoryLimit` has no effect (history is in Git); ReplicaSets and Pods replace every replica at once on a template change; each replica has an address of its own from the node's CNI network (by default the agent's bridge, reachable from its node), `containerPort` is informational and `hostPort` is published on the node (CNI portmap; with `hostNetwork` the container's port is the host's); `nodeSelector` is matched against node labels; taints on Node policies repel replicas that do not tolerate them (`NoSchedule` blocks new placements, `NoExecute` also evicts running replicas, those that tolerate it with `tolerationSeconds` once the smallest of them has passed since the leader first saw the taint (or its `timeAdded`), `PreferNoSchedule` lowers a node's score); required node affinity, pod affinity and anti-affinity are checked when a replica is placed, not while it runs (IgnoredDuringExecution), and the required anti-affinity of placed replicas is honoured both ways; `kubernetes.io/hostname` is the node name; `topologySpreadConstraints` count replicas on the nodes a replica may use. ConfigMaps and Secrets referenced by `env.valueFrom`, `envFrom` and `configMap`/`secret` volumes are looked up in the same commit and namespace; one that is missing (or lacks a referenced key) and not marked `optional` is a warning, and the replicas that use it stay Pending (`CreateContainerConfigError`, e.g. `configmap \"cfg\" not found`) until a commit adds it, while the commit's other workloads run; their content is part of the spec hash, so a change rolls the workloads that use them; Secret volumes are tmpfs; a Secret annotated `driftless.dev/sealed: \"age\"` holds one age ciphertext per `data` key (`driftless secret seal`), decrypted by the node that runs a replica using it, and a plain Secret is a warning (an error under `--require-sealed-secrets`). `fieldRef` `status.podIP` is the replica's CNI address, the host's with `hostNetwork`; `downwardAPI` volumes hold `metadata.name`, `namespace`, `uid`, `labels` and `annotations` (whole, as `key=\"value\"` lines, or one key) and containers' limits and requests; their files are written when the replica is created (a label change in Git replaces the replica). The containers of one replica share one network namespace (loopback and the CNI network's interface). Probes (`exec`, `httpGet`, `tcpSocket`, `grpc`) have Kubernetes' defaults and reach the replica on 127.0.0.1 inside its namespace; a named probe port must name a port of the container. Init containers run in order to completion before the app containers; one with `restartPolicy: Always` is a sidecar. `securityContext`: `seccompProfile` `Localhost` is not supported yet; `fsGroup` is added to the containers' groups and given to `emptyDir` volumes. Services get a ClusterIP from the leader (`--service-cidr`, kept for their life) and node ports (30000-32767), endpoints are the ready replicas their selector matches on alive nodes, programmed on every node as kube-proxy's iptables mode does (`sessionAffinity: ClientIP` honoured, `LoadBalancer` served as NodePort, `ExternalName` a DNS CNAME, headless Services by DNS only); every node serves cluster DNS to its pods (`dnsPolicy`, `dnsConfig`, `hostAliases`, `hostname`/`subdomain` as the kubelet writes resolv.conf and /etc/hosts); `enableServiceLinks` gives the Service variables; a ServiceAccount is a name (no token is mounted).\n")
	return b.String()
}
