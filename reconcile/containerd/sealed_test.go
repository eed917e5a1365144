package containerd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"driftless.dev/driftless/internal/sealed"
	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
)

// A sealed Secret is decrypted only when a replica is created: its values
// reach the container as env and tmpfs files; a node without a matching
// identity keeps the replica Pending with the reason, and other replicas
// run.
func TestSealedSecretReachesContainer(t *testing.T) {
	rt, _ := newRuntime(t)
	const value = "planted-sealed-reconcile"
	nodeID, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := sealed.Encrypt([]byte(value), []age.Recipient{nodeID.Recipient(), other.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	secret := manifest.Secret{Metadata: manifest.ObjectMeta{Name: "db", Namespace: "default"}, Sealed: true, Data: map[string][]byte{"password": ct}}

	d := pod("sealed", bb("main", `echo "env=$PASSWORD"; echo "file=$(cat /etc/sec/password)"; grep ' /etc/sec ' /proc/mounts | cut -d' ' -f3; sleep 1000`))
	d.Secrets = map[string]manifest.Secret{"db": secret}
	d.Pod.Containers[0].Env = []manifest.EnvVar{{Name: "PASSWORD", ValueFrom: &manifest.EnvVarSource{SecretKeyRef: &manifest.KeySelector{Name: "db", Key: "password"}}}}
	d.Pod.Containers[0].VolumeMounts = []manifest.VolumeMount{{Name: "sec", MountPath: "/etc/sec"}}
	d.Pod.Volumes = []manifest.Volume{{Name: "sec", Secret: &manifest.SecretVolumeSource{SecretName: "db"}}}
	plain := pod("plain", bb("main", "sleep 1000"))

	// A node whose identity is not a recipient.
	wrongDir := t.TempDir()
	t.Cleanup(func() { testenv.UnmountBelow(wrongDir) })
	wrong, err := reconcile.New(reconcile.Config{Node: "n1", DataDir: wrongDir, Runtime: rt, Logger: testLogger(t),
		Secrets: sealed.NewKeyring([]age.Identity{mustIdentity(t)})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wrong.Close)
	desired := []reconcile.DesiredReplica{d, plain}
	st := waitStatus(t, wrong, desired, d.Key(), 10*time.Second, "pending", func(s manifest.ReplicaStatus) bool { return s.Reason != "" && s.Reason != "ContainerCreating" })
	if st.Phase != manifest.PhasePending || st.Reason != "CreateContainerConfigError" ||
		st.Message != "secret default/db: key password: no identity matches (sealed to 2 recipients)" {
		t.Fatalf("wrong identity: %+v", st)
	}
	waitStatus(t, wrong, desired, plain.Key(), 20*time.Second, "other workload running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	// And a node with no identity at all.
	none := newReconciler(t, rt, t.TempDir())
	st = waitStatus(t, none, []reconcile.DesiredReplica{d}, d.Key(), 10*time.Second, "pending", func(s manifest.ReplicaStatus) bool { return s.Reason != "" && s.Reason != "ContainerCreating" })
	if st.Reason != "CreateContainerConfigError" || !strings.Contains(st.Message, "no age identity on this node") {
		t.Fatalf("no identity: %+v", st)
	}
	syncDone(t, wrong, nil)

	// The node that holds an identity runs it.
	dataDir := t.TempDir()
	t.Cleanup(func() { testenv.UnmountBelow(dataDir) })
	rec, err := reconcile.New(reconcile.Config{Node: "n1", DataDir: dataDir, Runtime: rt, Logger: testLogger(t),
		Secrets: sealed.NewKeyring([]age.Identity{nodeID})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	syncUntil(t, rec, []reconcile.DesiredReplica{d}, 20*time.Second, "running", func(s manifest.ReplicaStatus) bool { return s.Phase == manifest.PhaseRunning })
	logPath := filepath.Join(dataDir, "logs", "default", "deployment", "sealed", "0", "main.log")
	waitLog(t, logPath, "env="+value)
	waitLog(t, logPath, "file="+value)
	waitLog(t, logPath, "tmpfs")
	// The desired replica still holds the ciphertext: nothing was
	// decrypted in place.
	if !d.Secrets["db"].Sealed || strings.Contains(string(d.Secrets["db"].Data["password"]), value) {
		t.Fatal("the desired Secret was changed")
	}
	// Outside the container's log and its tmpfs, the value is nowhere in
	// the data dir.
	_ = filepath.Walk(dataDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || p == logPath {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), value) && !testenv.OnTmpfs(p) {
			t.Errorf("secret value on disk in %s", p)
		}
		return nil
	})
}

func mustIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
