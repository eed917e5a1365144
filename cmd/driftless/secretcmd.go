package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"filippo.io/age"

	"driftless.dev/driftless/internal/sealed"
)

// stdin is read by commands that take a manifest on standard input.
var stdin io.Reader = os.Stdin

const secretUsage = `usage:
  driftless secret seal   --recipients FILE [-o OUT] [FILE]
  driftless secret unseal --identity FILE   [-o OUT] [FILE]
  driftless secret keygen -o FILE

seal turns plain v1 Secret manifests (FILE, or standard input) into sealed
ones: every data/stringData value becomes an age ciphertext under data,
and the Secret is annotated driftless.dev/sealed: "age". The recipients
file holds age public keys (age1...) or SSH public keys (ssh-ed25519,
ssh-rsa), one a line, # comments allowed. unseal is the inverse, for
operators holding an identity; its output is plaintext. keygen writes a
new age identity file (mode 0600) for --age-identity and prints its public
key, the line to add to the recipients file.
`

func runSecret(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "seal" && args[0] != "unseal" && args[0] != "keygen") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, secretUsage)
			return 0
		}
		fmt.Fprint(stderr, secretUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("secret "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, secretUsage) }
	recipients := fs.String("recipients", "", "file of age or SSH public keys to seal to (seal)")
	identity := fs.String("identity", "", "age identity file or SSH private key (unseal)")
	outPath := fs.String("o", "-", "output file (- for standard output)")
	if code, done := parseFlags(fs, args[1:]); done {
		return code
	}
	if fs.NArg() > 1 || (sub == "seal" && *recipients == "") || (sub == "unseal" && *identity == "") ||
		(sub == "keygen" && (*outPath == "-" || fs.NArg() > 0)) {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "driftless secret %s: %v\n", sub, err)
		return 1
	}
	if sub == "keygen" {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return fail(err)
		}
		f, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fail(err)
		}
		_, err = fmt.Fprintf(f, "# public key: %s\n%s\n", id.Recipient(), id)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, id.Recipient())
		return 0
	}
	in := stdin
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		in = f
	}
	var out []byte
	switch sub {
	case "seal":
		f, err := os.Open(*recipients)
		if err != nil {
			return fail(err)
		}
		rs, err := sealed.ParseRecipients(f)
		f.Close()
		if err != nil {
			return fail(fmt.Errorf("%s: %w", *recipients, err))
		}
		if out, err = sealed.Seal(in, rs); err != nil {
			return fail(err)
		}
	case "unseal":
		kr, err := sealed.LoadKeyring(*identity)
		if err != nil {
			return fail(err)
		}
		if out, err = sealed.Unseal(in, kr); err != nil {
			return fail(err)
		}
	}
	if *outPath == "-" {
		if _, err := stdout.Write(out); err != nil {
			return fail(err)
		}
		return 0
	}
	// Sealed output is public, but unsealed output is plaintext: owner
	// only either way.
	if err := os.WriteFile(*outPath, out, 0o600); err != nil {
		return fail(err)
	}
	return 0
}
