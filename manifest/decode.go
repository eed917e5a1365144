package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// document is one YAML document of a file, checked against its Go type.
type document struct {
	file  string
	line  int
	node  *yaml.Node // the document's root mapping
	lines map[string]int
}

// splitDocuments parses every document of a file. yaml.v3 keeps file line
// numbers across documents, which a split-then-parse approach loses.
func splitDocuments(f File) ([]*document, []Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(f.Data))
	var docs []*document
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, []Problem{{File: f.Path, Line: yamlErrLine(err), Message: "invalid YAML: " + yamlErrText(err)}}
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			root := n.Content[0]
			if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
				continue // empty or comment-only document
			}
			if items, ok := listItems(root); ok {
				// kind: List (or ConfigMapList, ...), as kubectl get -o yaml
				// writes several objects: each item is a document.
				for _, it := range items {
					docs = append(docs, &document{file: f.Path, line: it.Line, node: it, lines: map[string]int{}})
				}
				continue
			}
			docs = append(docs, &document{file: f.Path, line: root.Line, node: root, lines: map[string]int{}})
			continue
		}
	}
	return docs, nil
}

// listItems are the items of a List document (kind List, or any kind
// named <Kind>List, with an items sequence of mappings).
func listItems(root *yaml.Node) ([]*yaml.Node, bool) {
	if root.Kind != yaml.MappingNode {
		return nil, false
	}
	var kind string
	var items *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "kind":
			kind = root.Content[i+1].Value
		case "items":
			items = root.Content[i+1]
		}
	}
	if !strings.HasSuffix(kind, "List") || items == nil || (items.Kind != yaml.SequenceNode && !(items.Kind == yaml.ScalarNode && items.Tag == "!!null")) {
		return nil, false
	}
	var out []*yaml.Node
	for _, it := range items.Content {
		if it.Kind == yaml.MappingNode {
			out = append(out, it)
		}
	}
	return out, true
}

func yamlErrLine(err error) int {
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		j := i + 5
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(s[i+5 : j]); err == nil {
			return n
		}
	}
	return 0
}

func yamlErrText(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(s, "line "); i == 0 {
		if j := strings.Index(s, ": "); j > 0 {
			s = s[j+2:]
		}
	}
	return s
}

// unsupported lists real Kubernetes fields that driftless does not
// implement yet, per Go type. Using one is an error that says so, rather
// than "unknown field" (a typo) or silent ignorance.
var unsupported = map[reflect.Type]map[string]bool{
	reflect.TypeOf(Container{}): set("volumeDevices", "resizePolicy",
		"restartPolicyRules"),
	reflect.TypeOf(SecurityContext{}): set("seLinuxOptions", "procMount", "appArmorProfile"),
	reflect.TypeOf(PodSecurityContext{}): set("seLinuxOptions", "supplementalGroups",
		"supplementalGroupsPolicy", "sysctls", "appArmorProfile", "seLinuxChangePolicy"),
	reflect.TypeOf(SeccompProfile{}):   set("localhostProfile"),
	reflect.TypeOf(LifecycleHandler{}): set("tcpSocket", "sleep"),
	reflect.TypeOf(Lifecycle{}):        set("stopSignal"),
	reflect.TypeOf(PodSpec{}): set("ephemeralContainers",
		"readinessGates", "overhead",
		"activeDeadlineSeconds", "schedulingGates",
		"resourceClaims", "hostUsers", "resources"),
	reflect.TypeOf(VolumeProjection{}): set("clusterTrustBundle", "podCertificate"),
	reflect.TypeOf(Volume{}): set(
		"nfs", "iscsi", "csi", "gitRepo", "awsElasticBlockStore", "gcePersistentDisk",
		"azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", "glusterfs",
		"photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
		"vsphereVolume", "image"),
	reflect.TypeOf(VolumeMount{}):          set("recursiveReadOnly"),
	reflect.TypeOf(ObjectMeta{}):           set("finalizers", "ownerReferences", "deletionGracePeriodSeconds"),
	reflect.TypeOf(ResourceRequirements{}): set("claims"),
	reflect.TypeOf(JobSpec{}): set("completionMode", "backoffLimitPerIndex", "maxFailedIndexes", "podFailurePolicy",
		"podReplacementPolicy", "successPolicy", "managedBy"),
	reflect.TypeOf(ReplicaSetSpec{}):  set(),
	reflect.TypeOf(ServiceSpec{}):     set("externalIPs"),
	reflect.TypeOf(PodAffinityTerm{}): set("namespaceSelector", "matchLabelKeys", "mismatchLabelKeys"),
	reflect.TypeOf(TopologySpreadConstraint{}): set("minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy",
		"matchLabelKeys"),
}

// ignored lists fields that are accepted and have no effect: server-set
// metadata of exported objects and the status a cluster wrote.
var ignored = map[reflect.Type]map[string]string{
	reflect.TypeOf(ObjectMeta{}): {
		"creationTimestamp": "set by a Kubernetes API server", "uid": "set by a Kubernetes API server",
		"resourceVersion": "set by a Kubernetes API server", "generation": "set by a Kubernetes API server",
		"managedFields": "set by a Kubernetes API server", "selfLink": "set by a Kubernetes API server",
	},
	reflect.TypeOf(PodSecurityContext{}): {
		"fsGroupChangePolicy": "fsGroup is given to a volume when it is created (as OnRootMismatch)",
		"windowsOptions":      "Windows only; driftless's nodes run Linux",
	},
	reflect.TypeOf(SecurityContext{}): {
		"windowsOptions": "Windows only; driftless's nodes run Linux",
	},
	reflect.TypeOf(StorageClass{}): {
		"mountOptions": "claims are directories of the node, not mounted file systems",
	},
	reflect.TypeOf(ServiceSpec{}): {
		"loadBalancerIP":                "there is no external load balancer",
		"loadBalancerSourceRanges":      "there is no external load balancer",
		"loadBalancerClass":             "there is no external load balancer",
		"allocateLoadBalancerNodePorts": "LoadBalancer Services always get node ports",
		"healthCheckNodePort":           "there is no external load balancer",
		"externalTrafficPolicy":         "every node sends NodePort traffic to every endpoint (Cluster)",
		"internalTrafficPolicy":         "every node sends traffic to every endpoint (Cluster)",
		"ipFamilyPolicy":                "IPv4 only",
		"trafficDistribution":           "no topology-aware routing",
	},
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var (
	unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	quantityType    = reflect.TypeOf(resource.Quantity{})
	intOrStringType = reflect.TypeOf(IntOrString{})
	bytesType       = reflect.TypeOf([]byte(nil))
)

// checker walks a YAML node tree against a Go type, collecting every
// unknown field and type mismatch with its line, and converting the tree
// to JSON-ready values on the way.
type checker struct {
	doc      *document
	problems []Problem
	// secret suppresses values in messages below Secret data.
	secret bool
}

func (c *checker) add(n *yaml.Node, path, msg string) {
	c.problems = append(c.problems, Problem{File: c.doc.file, Line: n.Line, Field: path, Message: msg})
}

func (c *checker) addValue(n *yaml.Node, path, value, msg string) {
	if c.secret {
		c.add(n, path, msg)
		return
	}
	c.problems = append(c.problems, Problem{File: c.doc.file, Line: n.Line, Field: path, Value: value, HasValue: true, Message: msg})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walk returns the JSON-compatible value of n, checked against t.
func (c *checker) walk(n *yaml.Node, t reflect.Type, path string) any {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		if _, ok := c.doc.lines[path]; !ok {
			c.doc.lines[path] = n.Line
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == quantityType:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "must be a quantity (e.g. 500m, 128Mi)")
			return nil
		}
		if _, err := resource.ParseQuantity(n.Value); err != nil {
			c.addValue(n, path, n.Value, "must be a quantity (e.g. 500m, 128Mi)")
			return nil
		}
		return n.Value
	case t == intOrStringType:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "must be an integer or a string")
			return nil
		}
		if n.Tag == "!!int" {
			v, err := strconv.ParseInt(n.Value, 0, 32)
			if err != nil {
				c.addValue(n, path, n.Value, "must be a 32-bit integer")
				return nil
			}
			return v
		}
		return n.Value
	case t == bytesType:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "must be a base64 string")
			return nil
		}
		v := strings.Join(strings.Fields(n.Value), "")
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			c.add(n, path, "must be base64-encoded")
			return nil
		}
		return v
	}
	switch t.Kind() {
	case reflect.Struct:
		return c.walkStruct(n, t, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "must be a map")
			return nil
		}
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if _, dup := out[k.Value]; dup {
				c.addValue(k, path, k.Value, "duplicate key")
				continue
			}
			out[k.Value] = c.walk(v, t.Elem(), join(path, k.Value))
		}
		return out
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(n, path, "must be a list")
			return nil
		}
		out := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			out = append(out, c.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)))
		}
		return out
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "must be a string")
			return nil
		}
		if n.Tag != "!!str" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			c.addValue(n, path, n.Value, "must be a string (quote it)")
			return nil
		}
		return n.Value
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			c.addValue(n, path, n.Value, "must be true or false")
			return nil
		}
		return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
	case reflect.Int32, reflect.Int64, reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			c.addValue(n, path, n.Value, "must be an integer")
			return nil
		}
		v, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || (t.Kind() == reflect.Int32 && (v > math.MaxInt32 || v < math.MinInt32)) {
			c.addValue(n, path, n.Value, "integer out of range")
			return nil
		}
		return v
	case reflect.Interface:
		var v any
		if err := n.Decode(&v); err != nil {
			c.add(n, path, err.Error())
		}
		return v
	}
	c.add(n, path, fmt.Sprintf("cannot decode into %s", t))
	return nil
}

type fieldInfo struct {
	name string
	typ  reflect.Type
}

func jsonFields(t reflect.Type, out map[string]fieldInfo) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			jsonFields(f.Type, out)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = fieldInfo{name: name, typ: f.Type}
	}
}

func (c *checker) walkStruct(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.MappingNode {
		c.add(n, path, "must be a map of fields")
		return nil
	}
	fields := map[string]fieldInfo{}
	jsonFields(t, fields)
	out := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		p := join(path, key)
		if _, dup := out[key]; dup {
			c.add(k, p, "duplicate field")
			continue
		}
		f, ok := fields[key]
		if !ok {
			switch {
			case unsupported[t][key]:
				c.add(k, p, "not supported by driftless yet")
			case ignored[t][key] != "":
				// accepted, no effect
			default:
				c.add(k, p, "unknown field")
			}
			continue
		}
		if t == reflect.TypeOf(Secret{}) && (key == "data" || key == "stringData") {
			c.secret = true
			out[key] = c.walk(v, f.typ, p)
			c.secret = false
			continue
		}
		out[key] = c.walk(v, f.typ, p)
	}
	return out
}

// decodeInto checks the document against the type of v and decodes it.
// It returns false when any problem was found.
func (d *document) decodeInto(v any, skipTop ...string) ([]Problem, bool) {
	c := &checker{doc: d}
	t := reflect.TypeOf(v).Elem()
	tree := c.walkTop(d.node, t, skipTop)
	if len(c.problems) > 0 {
		return c.problems, false
	}
	b, err := json.Marshal(tree)
	if err != nil {
		return []Problem{{File: d.file, Line: d.line, Message: err.Error()}}, false
	}
	if err := json.Unmarshal(b, v); err != nil {
		return []Problem{{File: d.file, Line: d.line, Message: "decode: " + err.Error()}}, false
	}
	return nil, true
}

// walkTop is walkStruct for the document root, where some keys (status)
// are accepted and dropped.
func (c *checker) walkTop(n *yaml.Node, t reflect.Type, skip []string) any {
	if n.Kind != yaml.MappingNode {
		c.add(n, "", "a manifest must be a map with apiVersion, kind and metadata")
		return nil
	}
	if len(skip) == 0 {
		return c.walkStruct(n, t, "")
	}
	kept := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		drop := false
		for _, s := range skip {
			if n.Content[i].Value == s {
				drop = true
			}
		}
		if !drop {
			kept.Content = append(kept.Content, n.Content[i], n.Content[i+1])
		}
	}
	return c.walkStruct(kept, t, "")
}

// line returns the line of path in the document, or of its nearest
// ancestor that has one.
func (d *document) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return d.line
}

// header reads apiVersion, kind and metadata.name without checking the
// rest.
func (d *document) header() (apiVersion, kind, name string) {
	if d.node.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(d.node.Content); i += 2 {
		k, v := d.node.Content[i].Value, d.node.Content[i+1]
		if k == "apiVersion" || k == "kind" || k == "metadata" {
			d.lines[k] = d.node.Content[i].Line
		}
		switch k {
		case "apiVersion":
			apiVersion = v.Value
		case "kind":
			kind = v.Value
		case "metadata":
			if v.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(v.Content); j += 2 {
					if v.Content[j].Value == "name" {
						name = v.Content[j+1].Value
						d.lines["metadata.name"] = v.Content[j].Line
					}
				}
			}
		}
	}
	return
}
