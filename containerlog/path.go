package containerlog

import (
	"path/filepath"
	"strconv"
	"strings"
)

// The one layout of container logs under an agent's data dir, used by
// the node that writes them and by `driftless logs` that reads them:
//
//	DATA_DIR/logs/<namespace>/<kind>/<workload>/<replica>/<container>.log
//
// kind is the workload's kind in lower case (deployment, pod, job, ...),
// so a Deployment and a Pod of one name never share a file.

// WorkloadDir is the directory of one workload's replica logs.
func WorkloadDir(dataDir, namespace, kind, name string) string {
	return filepath.Join(dataDir, "logs", namespace, strings.ToLower(kind), name)
}

// NamespaceDir is the directory of one namespace's logs (kinds below).
func NamespaceDir(dataDir, namespace string) string {
	return filepath.Join(dataDir, "logs", namespace)
}

// Path is the current log file of one container of one replica.
func Path(dataDir, namespace, kind, name string, replica int, container string) string {
	return filepath.Join(WorkloadDir(dataDir, namespace, kind, name), strconv.Itoa(replica), container+".log")
}
