package git

import (
	"errors"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:token@git.example.internal/a/b.git": "https://git.example.internal/a/b.git",
		"ssh://git@git.example.internal:2222/fleet.git":   "ssh://git.example.internal:2222/fleet.git",
		"file:///srv/fleet.git":                           "file:///srv/fleet.git",
		"git://host/fleet.git":                            "git://host/fleet.git",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactError(t *testing.T) {
	url := "https://deploy:s3cret-token@git.example.internal/fleet.git"
	err := RedactError(errors.New(`Get "https://deploy:s3cret-token@git.example.internal/fleet.git/info/refs": x509: certificate signed by unknown authority; password s3cret-token`), url)
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "https://git.example.internal/fleet.git/info/refs") {
		t.Fatalf("%v", err)
	}
}
