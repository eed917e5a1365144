package agent

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/internal/peerauth"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

//go:embed ui
var uiFiles embed.FS

// maxWatchers bounds the dashboards (Server-Sent Events streams) one
// agent serves at once; more are refused with 503, so browsers left open
// cannot grow the agent.
const maxWatchers = 64

// watchers tells the open dashboards that the agent's state changed.
type watchers struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
	last []byte // the snapshot last announced
}

func (w *watchers) subscribe() (chan struct{}, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = map[chan struct{}]struct{}{}
	}
	if len(w.subs) >= maxWatchers {
		return nil, false
	}
	ch := make(chan struct{}, 1)
	w.subs[ch] = struct{}{}
	return ch, true
}

func (w *watchers) unsubscribe(ch chan struct{}) {
	w.mu.Lock()
	delete(w.subs, ch)
	w.mu.Unlock()
}

func (w *watchers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.subs)
}

// changed announces sig when it differs from the last one announced.
// Never blocks: a dashboard that has not read the previous one gets one.
func (w *watchers) changed(sig []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Equal(sig, w.last) {
		return
	}
	w.last = sig
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// ClusterView is /api/v1/cluster: this node's snapshot and the status
// branch as it last read it, in lists (for the dashboard and scripts).
type ClusterView struct {
	Snapshot   Snapshot             `json:"snapshot"`
	Cluster    status.Cluster       `json:"cluster"`
	Nodes      []status.NodeStatus  `json:"nodes"`
	Placements []manifest.Placement `json:"placements"`
	Services   []services.Record    `json:"services"`
	Volumes    []volumes.Binding    `json:"volumes"`
}

func (a *Agent) clusterView() ClusterView {
	v := ClusterView{Snapshot: a.Snapshot(), Nodes: []status.NodeStatus{}, Placements: []manifest.Placement{}, Services: []services.Record{}, Volumes: []volumes.Binding{}}
	a.mu.Lock()
	st := a.snapState
	a.mu.Unlock()
	if st == nil {
		return v
	}
	v.Cluster = st.Cluster
	v.Nodes = sortedNodes(st.Nodes)
	for ref, p := range st.Placements {
		p.Workload = ref
		v.Placements = append(v.Placements, p)
	}
	sort.Slice(v.Placements, func(i, j int) bool { return v.Placements[i].Workload.String() < v.Placements[j].Workload.String() })
	for ref, r := range st.Services {
		r.Service = ref
		v.Services = append(v.Services, r)
	}
	sort.Slice(v.Services, func(i, j int) bool { return v.Services[i].Service.String() < v.Services[j].Service.String() })
	for ref, b := range st.Volumes {
		b.Claim = ref
		v.Volumes = append(v.Volumes, b)
	}
	sort.Slice(v.Volumes, func(i, j int) bool { return v.Volumes[i].Claim.String() < v.Volumes[j].Claim.String() })
	return v
}

// dashboardRoutes serves the dashboard (/), its data (/api/v1/cluster),
// its change stream (/api/v1/watch) and replicas' logs (/api/v1/logs).
func (a *Agent) dashboardRoutes(mux *http.ServeMux) {
	index, _ := fs.ReadFile(uiFiles, "ui/index.html")
	// The page carries the data of its first paint, so that the
	// browser renders it without a second request.
	slot := []byte(`<script id="initial" type="application/json"></script>`)
	head, tail, _ := bytes.Cut(index, slot)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		data, err := json.Marshal(a.clusterView()) // escapes <, > and &
		if err != nil {
			data = nil
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(head)
		_, _ = fmt.Fprintf(w, `<script id="initial" type="application/json">%s</script>`, data)
		_, _ = w.Write(tail)
	})
	mux.HandleFunc("GET /api/v1/cluster", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.clusterView())
	})
	mux.HandleFunc("GET /api/v1/history", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.history())
	})
	mux.HandleFunc("GET /api/v1/watch", a.serveWatch)
	mux.HandleFunc("GET /api/v1/logs", a.serveDashboardLogs)
}

// serveDashboardLogs serves a replica's log from this node, or, with
// &anyNode=1, from the node that runs it, through that node's peer
// listener: the call is signed with this node's key, and the answer
// streamed as it comes.
func (a *Agent) serveDashboardLogs(w http.ResponseWriter, r *http.Request) {
	ref, idx, ok := logTarget(r)
	if !ok {
		a.serveLogs(w, r)
		return
	}
	a.mu.Lock()
	st := a.snapState
	a.mu.Unlock()
	node := replicaNode(st, ref, idx)
	// Without &anyNode=1 this is the node's own log API: a replica
	// elsewhere is a 404 naming its node. The dashboard asks with it.
	if q := r.URL.Query().Get("anyNode"); q != "1" && q != "true" || node == "" || node == a.cfg.Node || a.deps.NodeKey == nil {
		a.serveLogs(w, r)
		return
	}
	peer := st.Nodes[node].PeerAddress
	if peer == "" {
		http.Error(w, fmt.Sprintf("replica %s[%d] runs on node %s, whose peer listener is off", ref, idx, node), http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	if follow := r.URL.Query().Get("follow"); follow != "" && follow != "0" && follow != "false" {
		cancel()
		ctx, cancel = context.WithTimeout(r.Context(), time.Hour)
	}
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+peer+"/peer/v1/logs?"+r.URL.RawQuery, nil)
	if err == nil {
		err = peerauth.Sign(req, a.cfg.Node, a.deps.NodeKey, time.Now())
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, fmt.Sprintf("logs of %s[%d] from node %s: %v", ref, idx, node, err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "X-Content-Type-Options"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// logTarget reads ?workload=namespace/Kind/name&replica=N.
func logTarget(r *http.Request) (manifest.Ref, int, bool) {
	q := r.URL.Query()
	parts := strings.Split(q.Get("workload"), "/")
	idx, err := strconv.Atoi(q.Get("replica"))
	if len(parts) != 3 || err != nil {
		return manifest.Ref{}, 0, false
	}
	return manifest.Ref{Namespace: parts[0], Kind: parts[1], Name: parts[2]}, idx, true
}

// replicaNode is the node st places the replica on ("" for none).
func replicaNode(st *status.State, ref manifest.Ref, idx int) string {
	if st == nil {
		return ""
	}
	for _, rp := range st.Placements[ref].Replicas {
		if rp.Index == idx {
			return rp.Node
		}
	}
	return ""
}

// serveWatch is a Server-Sent Events stream: "change" whenever the
// agent's state changes (at most one pending per dashboard), a comment
// every 15 s to keep proxies from closing it.
func (a *Agent) serveWatch(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, ok := a.watch.subscribe()
	if !ok {
		http.Error(w, fmt.Sprintf("too many dashboards open (%d)", maxWatchers), http.StatusServiceUnavailable)
		return
	}
	defer a.watch.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = fmt.Fprint(w, "event: change\ndata: {}\n\n")
	fl.Flush()
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ch:
			_, _ = fmt.Fprint(w, "event: change\ndata: {}\n\n")
		case <-beat.C:
			_, _ = fmt.Fprint(w, ": keep-alive\n\n")
		}
		fl.Flush()
	}
}

// serveLogs streams a replica's container log from this node:
// ?workload=namespace/Kind/name&replica=N[&container=C][&tail=N][&follow=1].
// A replica placed on another node is a 404 naming that node.
func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, idx, ok := logTarget(r)
	if !ok {
		http.Error(w, "want ?workload=namespace/Kind/name&replica=N", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	st := a.snapState
	a.mu.Unlock()
	node := replicaNode(st, ref, idx)
	var tmplContainers []string
	if node != a.cfg.Node {
		where := "no node"
		if node != "" {
			where = "node " + node
		}
		http.Error(w, fmt.Sprintf("replica %s[%d] is not on node %s: it runs on %s", ref, idx, a.cfg.Node, where), http.StatusNotFound)
		return
	}
	container := q.Get("container")
	if container == "" {
		// The first container of the replica as this node runs it.
		if in, ok := a.nodeIn.Get(); ok {
			for _, d := range in.desired {
				if d.Workload == ref && d.Index == idx {
					for _, c := range d.Pod.Containers {
						tmplContainers = append(tmplContainers, c.Name)
					}
				}
			}
		}
		if len(tmplContainers) == 0 {
			http.Error(w, "name the container: &container=NAME", http.StatusBadRequest)
			return
		}
		container = tmplContainers[0]
	}
	tail := 200
	if n, err := strconv.Atoi(q.Get("tail")); err == nil && n >= 0 && n <= 10000 {
		tail = n
	}
	path := containerlog.Path(a.cfg.DataDir, ref.Namespace, ref.Kind, ref.Name, idx, container)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	write := func(e containerlog.Entry) error {
		_, err := w.Write(containerlog.Format(nil, e, false))
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		return err
	}
	if q.Get("follow") == "" || q.Get("follow") == "0" || q.Get("follow") == "false" {
		files, err := containerlog.Files(path)
		var es []containerlog.Entry
		if err == nil {
			es, err = containerlog.Tail(files, tail)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		for _, e := range es {
			if write(e) != nil {
				return
			}
		}
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Hour)
	defer cancel()
	_ = containerlog.Follow(ctx, path, tail, write)
}
