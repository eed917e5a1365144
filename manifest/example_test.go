package manifest_test

import (
	"errors"
	"fmt"

	"driftless.dev/driftless/manifest"
)

// Load takes a commit's files whole or not at all: a broken document
// refuses the set with every problem located by file, line and field.
func ExampleLoad() {
	good := []byte("{apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: 2, selector: {matchLabels: {app: web}}, " +
		"template: {metadata: {labels: {app: web}}, spec: {containers: [{name: main, image: busybox}]}}}}\n")
	set, err := manifest.Load([]manifest.File{{Path: "web.yaml", Data: good}})
	if err != nil {
		panic(err)
	}
	w := set.Workloads[0]
	fmt.Println(w.Ref, w.Replicas, w.Template.Spec.RestartPolicy)

	bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: two\n")
	_, err = manifest.Load([]manifest.File{{Path: "web.yaml", Data: bad}})
	var probs manifest.Errors
	fmt.Println(errors.As(err, &probs), probs[0].File, probs[0].Line)
	// Output:
	// default/Deployment/web 2 Always
	// true web.yaml 5
}
