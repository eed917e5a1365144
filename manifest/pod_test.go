package manifest

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

func withCPU(c Container, req string) Container {
	c.Resources.Requests = ResourceList{"cpu": resource.MustParse(req)}
	return c
}

func TestEffectiveRequestsKubernetesRule(t *testing.T) {
	always := "Always"
	sidecar := Container{Name: "side", RestartPolicy: always}
	cases := []struct {
		name string
		spec PodSpec
		want map[string]int64
	}{
		{"apps sum", PodSpec{Containers: []Container{withCPU(Container{Name: "a"}, "100m"), withCPU(Container{Name: "b"}, "200m")}}, map[string]int64{"cpu": 300}},
		{"big init wins", PodSpec{InitContainers: []Container{withCPU(Container{Name: "i"}, "1")}, Containers: []Container{withCPU(Container{Name: "a"}, "100m")}}, map[string]int64{"cpu": 1000}},
		{"sidecar adds to apps", PodSpec{InitContainers: []Container{withCPU(sidecar, "50m")}, Containers: []Container{withCPU(Container{Name: "a"}, "100m")}}, map[string]int64{"cpu": 150}},
		{"init after a sidecar counts it", PodSpec{InitContainers: []Container{withCPU(sidecar, "300m"), withCPU(Container{Name: "i"}, "500m")}, Containers: []Container{withCPU(Container{Name: "a"}, "100m")}}, map[string]int64{"cpu": 800}},
		{"limit stands in for request", PodSpec{Containers: []Container{{Name: "a", Resources: ResourceRequirements{Limits: ResourceList{"memory": resource.MustParse("1Ki")}}}}}, map[string]int64{"memory": 1024000}},
		{"nothing", PodSpec{Containers: []Container{{Name: "a"}}}, map[string]int64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.spec.EffectiveRequests(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestHostPortsIncludeInitAndSidecars(t *testing.T) {
	s := PodSpec{
		InitContainers: []Container{{Name: "proxy", RestartPolicy: "Always", Ports: []ContainerPort{{ContainerPort: 15001, HostPort: 8081}}}},
		Containers:     []Container{{Name: "app", Ports: []ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, HostPort: 53, Protocol: "udp"}}}},
	}
	got := s.HostPorts()
	want := []ContainerPort{{ContainerPort: 15001, HostPort: 8081, Protocol: "TCP"}, {ContainerPort: 53, HostPort: 53, Protocol: "UDP"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
