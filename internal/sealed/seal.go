package sealed

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"

	"filippo.io/age"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
	yaml3 "sigs.k8s.io/yaml/goyaml.v3"
)

// secretDoc is the part of a v1 Secret that seal reads and writes.
type secretDoc struct {
	APIVersion string                 `json:"apiVersion" yaml:"apiVersion"`
	Kind       string                 `json:"kind" yaml:"kind"`
	Metadata   map[string]interface{} `json:"metadata" yaml:"metadata"`
	Type       string                 `json:"type,omitempty" yaml:"type,omitempty"`
	Immutable  *bool                  `json:"immutable,omitempty" yaml:"immutable,omitempty"`
	Data       map[string][]byte      `json:"data,omitempty" yaml:"-"`
	StringData map[string]string      `json:"stringData,omitempty" yaml:"-"`
	// SealedData is data as written: base64 of each ciphertext.
	SealedData map[string]string `json:"-" yaml:"data"`
}

// Seal reads plain v1 Secret manifests (one or more YAML documents) and
// returns them sealed to recipients: every data and stringData value
// becomes an age ciphertext under data, one per key, and the Secret is
// annotated driftless.dev/sealed: "age". Other fields are kept. Sealing
// is not deterministic: sealing the same value twice gives two
// ciphertexts (and a new spec hash, so a roll of the workloads using it).
func Seal(in io.Reader, recipients []age.Recipient) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("seal: no recipients")
	}
	return eachSecret(in, "seal", func(n int, s *secretDoc) ([]byte, error) {
		b, err := sealDoc(s, recipients)
		if err != nil {
			return nil, fmt.Errorf("seal: document %d: %w", n, err)
		}
		return b, nil
	})
}

// eachSecret decodes every document of in strictly as a Secret, passes it
// to fn and joins what fn returns into one multi-document stream. verb
// prefixes the errors; documents are numbered from 1.
func eachSecret(in io.Reader, verb string, fn func(n int, s *secretDoc) ([]byte, error)) ([]byte, error) {
	r := kyaml.NewYAMLReader(bufio.NewReader(in))
	var out bytes.Buffer
	n := 0
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: read document %d: %w", verb, n+1, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		n++
		var s secretDoc
		if err := yaml.UnmarshalStrict(doc, &s); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", verb, n, err)
		}
		b, err := fn(n, &s)
		if err != nil {
			return nil, err
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no Secret in input", verb)
	}
	return out.Bytes(), nil
}

func sealDoc(s *secretDoc, recipients []age.Recipient) ([]byte, error) {
	if s.Kind != "Secret" || s.APIVersion != "v1" {
		return nil, fmt.Errorf("%s %s is not a v1 Secret", s.APIVersion, s.Kind)
	}
	name, _ := s.Metadata["name"].(string)
	ann, _ := s.Metadata["annotations"].(map[string]interface{})
	if _, done := ann[Annotation]; done {
		return nil, fmt.Errorf("Secret %s is already sealed", name)
	}
	plain := map[string][]byte{}
	for k, v := range s.Data {
		plain[k] = v
	}
	// stringData wins over data, as the API server merges them.
	for k, v := range s.StringData {
		plain[k] = []byte(v)
	}
	if len(plain) == 0 {
		return nil, fmt.Errorf("Secret %s has no data to seal", name)
	}
	keys := make([]string, 0, len(plain))
	for k := range plain {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.SealedData = map[string]string{}
	for _, k := range keys {
		ct, err := Encrypt(plain[k], recipients)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		s.SealedData[k] = base64.StdEncoding.EncodeToString(ct)
	}
	if ann == nil {
		ann = map[string]interface{}{}
	}
	ann[Annotation] = Scheme
	if s.Metadata == nil {
		s.Metadata = map[string]interface{}{}
	}
	s.Metadata["annotations"] = ann
	return marshal(s)
}

// marshal writes YAML indented by two spaces, as manifests usually are.
func marshal(v interface{}) ([]byte, error) {
	var b bytes.Buffer
	e := yaml3.NewEncoder(&b)
	e.SetIndent(2)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Unseal is Seal's inverse for operators: it decrypts sealed Secret
// manifests with kr and returns plain ones (values base64 under data, the
// annotation removed). A document that is not a sealed Secret is an
// error.
func Unseal(in io.Reader, kr *Keyring) ([]byte, error) {
	return eachSecret(in, "unseal", func(n int, s *secretDoc) ([]byte, error) {
		name, _ := s.Metadata["name"].(string)
		ns, _ := s.Metadata["namespace"].(string)
		if ns == "" {
			ns = "default"
		}
		ann, _ := s.Metadata["annotations"].(map[string]interface{})
		if s.Kind != "Secret" || s.APIVersion != "v1" || ann[Annotation] != Scheme {
			return nil, fmt.Errorf("unseal: document %d is not a sealed v1 Secret", n)
		}
		if len(s.StringData) > 0 {
			return nil, fmt.Errorf("unseal: Secret %s/%s: stringData in a sealed Secret", ns, name)
		}
		plain, err := kr.Open(ns+"/"+name, s.Data)
		if err != nil {
			return nil, fmt.Errorf("unseal: %w", err)
		}
		delete(ann, Annotation)
		if len(ann) == 0 {
			delete(s.Metadata, "annotations")
		}
		s.SealedData = map[string]string{}
		for k, v := range plain {
			s.SealedData[k] = base64.StdEncoding.EncodeToString(v)
		}
		b, err := marshal(s)
		if err != nil {
			return nil, fmt.Errorf("unseal: %w", err)
		}
		return b, nil
	})
}
