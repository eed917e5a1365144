package pkg

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/agent"
)

var update = flag.Bool("update", false, "rewrite packaging/agent.yaml from agent.Config")

// exampleFile is the example configuration installed as
// /etc/driftless/agent.yaml.
const exampleFile = "../../packaging/agent.yaml"

// exampleValues are shown for keys whose default is empty or depends on
// the host; every other key shows its default (agent.DefaultConfig).
var exampleValues = map[string]any{
	"node":               "node-1",
	"labels":             map[string]string{"zone": "a"},
	"capacity":           map[string]string{"cpu": "2", "memory": "4Gi"},
	"repo":               []string{"file:///srv/fleet.git"},
	"verify":             "off",
	"nodeKeyFile":        "/var/lib/driftless/node-key",
	"volumesDir":         "/var/lib/driftless/volumes",
	"cniBinDir":          "/usr/lib/cni",
	"clusterDNS":         "10.96.0.10",
	"ageIdentityFile":    "/etc/driftless/node.agekey",
	"bundleInbox":        "/var/lib/driftless/inbox",
	"registryConfig":     "/etc/driftless/registry.yaml",
	"gossipKeyFile":      "/etc/driftless/gossip.key",
	"trustedKeysFile":    "/etc/driftless/trusted-keys.asc",
	"allowedSignersFile": "/etc/driftless/allowed_signers",
}

const exampleHeader = `# driftless agent configuration: /etc/driftless/agent.yaml, read by
# ` + "`driftless agent --config /etc/driftless/agent.yaml`" + ` (driftless.service).
#
# Every key is listed here, commented out, with its default (or an example
# where the default is empty or the host's). Uncomment what you set: repo
# at least, then ` + "`systemctl enable --now driftless`" + `. Flags on the command
# line override this file; an unknown key is an error.
#
# Generated from agent.Config by
# ` + "`go test ./test/pkg -run TestConfigExample -update`" + `: do not edit by hand.
`

// configKey is one JSON key of agent.Config (or of a nested struct).
type configKey struct {
	name   string // JSON key
	path   string // dotted path from the top: auth.sshKeyFile
	doc    string // the field's doc comment, or its flag's usage
	flag   string
	value  reflect.Value // the field in a DefaultConfig
	nested []configKey
}

// configKeys lists the JSON keys of the struct v (addressable), in field
// order, with their docs (from the Go source) and flags (from fs).
func configKeys(t testing.TB, v reflect.Value, prefix string, flags map[uintptr]*flag.Flag, byName map[string]*flag.Flag) []configKey {
	t.Helper()
	docs := fieldDocs(t, v.Type())
	// Go field names in docs become the keys' paths.
	rename := map[string]string{}
	for i := 0; i < v.NumField(); i++ {
		if name := jsonName(v.Type().Field(i)); name != "" {
			rename[v.Type().Field(i).Name] = prefix + name
		}
	}
	var out []configKey
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		k := configKey{name: name, path: prefix + name, value: v.Field(i)}
		fl := flags[v.Field(i).Addr().Pointer()]
		if fl == nil {
			fl = byName[name]
		}
		k.doc = renameFields(docs[f.Name], rename)
		if isNested(f.Type) {
			// (Its first field's flag has its address.)
			k.nested = configKeys(t, v.Field(i), k.path+".", flags, byName)
		} else if fl != nil {
			k.flag = fl.Name
			if k.doc == "" {
				k.doc = wrap(k.path+": "+fl.Usage+".", 70)
			}
		}
		out = append(out, k)
	}
	return out
}

// wrap breaks s into lines of at most width characters.
func wrap(s string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}

func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// isNested: a struct written as a YAML mapping of its own keys (not a
// scalar such as agent.Duration).
func isNested(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	return !t.Implements(reflect.TypeFor[json.Marshaler]()) && !reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]())
}

var wordRE = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)

func renameFields(doc string, rename map[string]string) string {
	return wordRE.ReplaceAllStringFunc(doc, func(w string) string {
		if r, ok := rename[w]; ok {
			return r
		}
		return w
	})
}

// fieldDocs reads the doc comments of the fields of struct type t from
// the Go source of its package (in this repository).
func fieldDocs(t testing.TB, typ reflect.Type) map[string]string {
	t.Helper()
	rel, ok := strings.CutPrefix(typ.PkgPath(), "driftless.dev/driftless/")
	if !ok {
		t.Fatalf("%s: not a package of this module", typ)
	}
	dir := filepath.Join("..", "..", filepath.FromSlash(rel))
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	found := false
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || ts.Name.Name != typ.Name() {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			found = true
			for _, fld := range st.Fields.List {
				for _, name := range fld.Names {
					docs[name.Name] = strings.TrimSpace(fld.Doc.Text())
				}
			}
			return false
		})
	}
	if !found {
		t.Fatalf("type %s not found in %s", typ.Name(), dir)
	}
	return docs
}

// renderValue writes v as one line of YAML (JSON flow style).
func renderValue(v any) (string, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		keys := rv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		var items []string
		for _, k := range keys {
			kb, _ := json.Marshal(k.Interface())
			vs, err := renderValue(rv.MapIndex(k).Interface())
			if err != nil {
				return "", err
			}
			items = append(items, string(kb)+": "+vs)
		}
		return "{" + strings.Join(items, ", ") + "}", nil
	case reflect.Slice:
		var items []string
		for i := 0; i < rv.Len(); i++ {
			vs, err := renderValue(rv.Index(i).Interface())
			if err != nil {
				return "", err
			}
			items = append(items, vs)
		}
		return "[" + strings.Join(items, ", ") + "]", nil
	}
	if d, ok := v.(agent.Duration); ok {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return `"` + s + `"`, nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// generateExample renders the example configuration from agent.Config.
func generateExample(t testing.TB) []byte {
	t.Helper()
	keys := defaultKeys(t)
	var b bytes.Buffer
	b.WriteString(exampleHeader)
	for _, k := range keys {
		b.WriteString("\n")
		writeDoc(&b, k)
		for _, n := range k.nested {
			b.WriteString("#\n")
			writeDoc(&b, n)
		}
		if k.nested != nil {
			fmt.Fprintf(&b, "#%s:\n", k.name)
			for _, n := range k.nested {
				fmt.Fprintf(&b, "#  %s: %s\n", n.name, exampleValue(t, n))
			}
			continue
		}
		fmt.Fprintf(&b, "#%s: %s\n", k.name, exampleValue(t, k))
	}
	return b.Bytes()
}

func writeDoc(b *bytes.Buffer, k configKey) {
	for _, line := range strings.Split(k.doc, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			b.WriteString("#\n")
		} else {
			b.WriteString("# " + line + "\n")
		}
	}
	if k.flag != "" {
		fmt.Fprintf(b, "# Flag: --%s.\n", k.flag)
	}
}

func exampleValue(t testing.TB, k configKey) string {
	t.Helper()
	v, ok := exampleValues[k.path]
	if !ok {
		v = k.value.Interface()
		if rv := reflect.ValueOf(v); (rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && rv.IsNil() {
			v = reflect.MakeSlice(reflect.SliceOf(reflect.TypeFor[string]()), 0, 0).Interface()
			if rv.Kind() == reflect.Map {
				v = map[string]string{}
			}
		}
	}
	s, err := renderValue(v)
	if err != nil {
		t.Fatalf("%s: %v", k.path, err)
	}
	return s
}

// defaultKeys: the keys of a DefaultConfig, with the flags that set them.
func defaultKeys(t testing.TB) []configKey {
	t.Helper()
	cfg := agent.DefaultConfig()
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	flags := map[uintptr]*flag.Flag{}
	byName := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) {
		byName[f.Name] = f
		if rv := reflect.ValueOf(f.Value); rv.Kind() == reflect.Pointer {
			flags[rv.Pointer()] = f
		}
	})
	return configKeys(t, reflect.ValueOf(&cfg).Elem(), "", flags, byName)
}

// uncomment turns the example into the configuration it describes: every
// "#key: value" (and nested "#  key: value") line without its '#'.
var keyLineRE = regexp.MustCompile(`(?m)^#((?:  )?[A-Za-z][A-Za-z0-9]*:)`)

func uncomment(b []byte) []byte { return keyLineRE.ReplaceAll(b, []byte("$1")) }

// TestConfigExample checks that packaging/agent.yaml (installed as
// /etc/driftless/agent.yaml) is what agent.Config generates: every key,
// its doc and its default. Regenerate with -update.
func TestConfigExample(t *testing.T) {
	want := generateExample(t)
	if *update {
		if err := os.WriteFile(exampleFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}

	// Every key of agent.Config is named, as a key line.
	var doc map[string]any
	if err := yaml.Unmarshal(uncomment(got), &doc); err != nil {
		t.Fatalf("%s uncommented: %v", exampleFile, err)
	}
	var missing []string
	var walk func(keys []configKey, m map[string]any)
	walk = func(keys []configKey, m map[string]any) {
		for _, k := range keys {
			v, ok := m[k.name]
			if !ok {
				missing = append(missing, k.path)
				continue
			}
			if k.nested != nil {
				sub, _ := v.(map[string]any)
				walk(k.nested, sub)
			}
		}
	}
	walk(defaultKeys(t), doc)
	if len(missing) > 0 {
		t.Errorf("%s lacks the keys %s of agent.Config: run go test ./test/pkg -run TestConfigExample -update", exampleFile, strings.Join(missing, ", "))
	}

	// Uncommented, it is a valid configuration (strict: no unknown key).
	dir := t.TempDir()
	full := filepath.Join(dir, "full.yaml")
	if err := os.WriteFile(full, uncomment(got), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	if err := agent.LoadConfigFile(full, &cfg); err != nil {
		t.Errorf("uncommented example: %v", err)
	} else if err := cfg.Validate(); err != nil {
		t.Errorf("uncommented example does not validate: %v", err)
	}

	// As installed, it sets nothing: the agent refuses to start until a
	// repository is set.
	cfg = agent.DefaultConfig()
	if err := agent.LoadConfigFile(exampleFile, &cfg); err != nil {
		t.Errorf("example as installed: %v", err)
	} else if !reflect.DeepEqual(cfg, agent.DefaultConfig()) {
		t.Errorf("example as installed sets values: %+v", cfg)
	} else if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "repository URL is required") {
		t.Errorf("example as installed: Validate = %v, want the missing repository", err)
	}

	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what agent.Config generates (a key, doc or default changed): run go test ./test/pkg -run TestConfigExample -update", exampleFile)
	}
}
