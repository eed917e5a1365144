package reconcile

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/manifest"
)

// terminationFile is where container id's termination message is kept.
func (r *Reconciler) terminationFile(d DesiredReplica, id string) string {
	return filepath.Join(r.podDir(d.Workload, d.Index), "termination", id)
}

// maxTerminationMessage is Kubernetes' bound of one container's message.
const maxTerminationMessage = 4096

// terminationMessage is what container c of d (id) left as its message
// when it exited: its termination file, or with FallbackToLogsOnError
// and a failure, the tail of its log.
func (r *Reconciler) terminationMessage(d DesiredReplica, c manifest.Container, id string, exit int) string {
	_, policy := c.TerminationMessage()
	b := make([]byte, maxTerminationMessage)
	n := 0
	if f, err := os.Open(r.terminationFile(d, id)); err == nil {
		n, _ = io.ReadFull(f, b)
		f.Close()
	}
	msg := strings.TrimSpace(string(b[:n]))
	if msg == "" && policy == manifest.TerminationMessageFallback && exit != 0 {
		logPath := containerlog.Path(r.cfg.DataDir, d.Workload.Namespace, d.Workload.Kind, d.Workload.Name, d.Index, c.Name)
		if es, err := containerlog.Tail([]string{logPath}, 80); err == nil {
			var lines []string
			for _, e := range es {
				lines = append(lines, string(e.Text))
			}
			msg = strings.TrimSpace(strings.Join(lines, "\n"))
			if len(msg) > 2048 {
				msg = msg[len(msg)-2048:]
			}
		}
	}
	return msg
}
