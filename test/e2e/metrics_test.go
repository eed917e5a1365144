package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricValue scrapes api's /metrics and returns the value of the series
// of name whose labels include want.
func metricValue(api, name string, want map[string]string) (float64, bool, error) {
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, false, err
	}
	f, ok := fams[name]
	if !ok {
		return 0, false, nil
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			return metricNumber(m), true, nil
		}
	}
	return 0, false, nil
}

func metricNumber(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// The agent's metrics follow real events: a replica running, a refused
// commit, a container restarted; and a real Prometheus scrapes them.
func TestMetricsFollowEventsAndPrometheusScrapes(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, trapSleep))
	e.work.Commit("web")
	e.work.Push()
	o := e.opts(t, "node-1")
	ag := startAgent(t, o)
	running := map[string]string{"workload": "web", "phase": "Running", "ready": "true"}
	waitFor(t, "driftless_replicas of web running", 60*time.Second, func() (bool, string) {
		v, ok, err := metricValue(ag.api, "driftless_replicas", running)
		return err == nil && ok && v == 1, fmt.Sprint(v, ok, err)
	})
	if v, ok, _ := metricValue(ag.api, "driftless_cluster_replicas", map[string]string{"workload": "web", "node": "node-1"}); !ok || v != 1 {
		t.Fatalf("cluster replicas of web: %v %v", v, ok)
	}
	if v, _, _ := metricValue(ag.api, "driftless_rejections_total", map[string]string{"reason": "invalid_manifests"}); v != 0 {
		t.Fatalf("rejections before any: %v", v)
	}

	// A broken commit: one rejection.
	e.work.WriteFile("broken.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec: {replicas: -1}\n")
	e.work.Commit("broken")
	e.work.Push()
	waitFor(t, "the rejection counted", 60*time.Second, func() (bool, string) {
		v, _, err := metricValue(ag.api, "driftless_rejections_total", map[string]string{"reason": "invalid_manifests"})
		return err == nil && v == 1, fmt.Sprint(v, err)
	})

	// A crash: one restart.
	ts := listTasks(t, e.client, "web")
	if len(ts) != 1 {
		t.Fatalf("tasks %+v", ts)
	}
	killTask(t, e.client, ts[0].ID)
	waitFor(t, "the restart counted", 60*time.Second, func() (bool, string) {
		v, _, err := metricValue(ag.api, "driftless_container_restarts_total", map[string]string{"workload": "web"})
		return err == nil && v >= 1, fmt.Sprint(v, err)
	})

	// Prometheus itself scrapes the agent.
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus not found (Debian's prometheus package)")
		}
		t.Skip("prometheus not found: install Debian's prometheus package")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: driftless\n  static_configs: [{targets: [%q]}]\n", ag.api)), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	cmd := exec.Command(prom, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "Prometheus answers driftless_replicas", 90*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + listen + "/api/v1/query?query=" + url.QueryEscape(`driftless_replicas{workload="web"}`))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return false, string(b)
		}
		return len(r.Data.Result) > 0 && r.Data.Result[0].Metric["job"] == "driftless", string(b) + tail(logs.String(), 5)
	})
	if strings.Contains(logs.String(), "level=error") && t.Failed() {
		t.Log(logs.String())
	}
}
