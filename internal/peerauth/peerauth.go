// Package peerauth authenticates the calls to a node's peer listener:
// a node signs its calls with its node key (the key whose public half it
// publishes on the status branch), the CLI sends a bearer token derived
// from the gossip key. Tokens follow the gossip key ring as it is
// reloaded.
package peerauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Scheme is the Authorization scheme of a node's signed call:
// "Driftless-Node <node> <unix seconds> <nonce> <base64 signature>".
const Scheme = "Driftless-Node"

// MaxSkew is how far a signed call's time may be from the receiver's.
const MaxSkew = 2 * time.Minute

// Tokens holds the accepted bearer tokens; safe for concurrent use.
type Tokens struct {
	p atomic.Pointer[[]string]
}

// Set replaces the accepted tokens.
func (t *Tokens) Set(tokens []string) {
	c := append([]string(nil), tokens...)
	t.p.Store(&c)
}

// Len is the number of accepted tokens (0: none configured).
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	if p := t.p.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// Check reports whether token is one of the accepted ones.
func (t *Tokens) Check(token string) bool {
	if t == nil {
		return false
	}
	p := t.p.Load()
	if p == nil {
		return false
	}
	ok := false
	for _, want := range *p {
		if subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1 {
			ok = true
		}
	}
	return ok
}

func message(node string, at int64, nonce, method, uri string) []byte {
	return []byte(fmt.Sprintf("driftless peer call v1\x00%s\x00%d\x00%s\x00%s\x00%s", node, at, nonce, method, uri))
}

// Sign sets req's Authorization to node's signature of its method, URI
// and the time now.
func Sign(req *http.Request, node string, key ssh.Signer, now time.Time) error {
	at := now.Unix()
	var n [12]byte
	if _, err := rand.Read(n[:]); err != nil {
		return fmt.Errorf("sign peer call: %w", err)
	}
	nonce := hex.EncodeToString(n[:])
	sig, err := key.Sign(rand.Reader, message(node, at, nonce, req.Method, req.URL.RequestURI()))
	if err != nil {
		return fmt.Errorf("sign peer call: %w", err)
	}
	req.Header.Set("Authorization", fmt.Sprintf("%s %s %d %s %s", Scheme, node, at, nonce, base64.StdEncoding.EncodeToString(ssh.Marshal(sig))))
	return nil
}

// Replays remembers the nonces of the signed calls whose time is still
// within MaxSkew, so that a signed call cannot be sent again; a call
// signed earlier than that is refused by its time. Bounded: at most max
// nonces at once.
type Replays struct {
	mu sync.Mutex
	// bySecond holds the nonces by the second their call was signed at,
	// so that expiry drops whole seconds, not one nonce at a time.
	bySecond map[int64]map[string]bool
	n, max   int
}

// NewReplays remembers at most max nonces.
func NewReplays(max int) *Replays { return &Replays{bySecond: map[int64]map[string]bool{}, max: max} }

// errReplayed and errTooMany are why fresh refuses a call.
var (
	errReplayed = errors.New("replayed")
	errTooMany  = errors.New("more signed calls within the allowed clock skew than this node keeps: try again")
)

// fresh records the nonce key of a call signed at at, seen at now; an
// error when it was seen before or there is no room.
func (r *Replays) fresh(key string, at int64, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldest := now.Add(-MaxSkew).Unix() - 1
	for sec, keys := range r.bySecond {
		if sec < oldest {
			r.n -= len(keys)
			delete(r.bySecond, sec)
		}
	}
	keys := r.bySecond[at]
	if keys[key] {
		return errReplayed
	}
	if r.n >= r.max {
		return errTooMany
	}
	if keys == nil {
		keys = map[string]bool{}
		r.bySecond[at] = keys
	}
	keys[key] = true
	r.n++
	return nil
}

// ErrUnsigned is returned by Verify for a request without a node
// signature (it may carry a token instead).
var ErrUnsigned = errors.New("not signed by a node")

// Verify checks a node's signature on req against keyOf(node), the key
// that node published. It returns the calling node.
func Verify(req *http.Request, keyOf func(node string) (ssh.PublicKey, bool), now time.Time, replays *Replays) (string, error) {
	rest, ok := strings.CutPrefix(req.Header.Get("Authorization"), Scheme+" ")
	if !ok {
		return "", ErrUnsigned
	}
	f := strings.Fields(rest)
	if len(f) != 4 {
		return "", errors.New("malformed node signature")
	}
	node := f[0]
	at, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return node, errors.New("malformed node signature time")
	}
	if d := now.Sub(time.Unix(at, 0)); d > MaxSkew || d < -MaxSkew {
		return node, fmt.Errorf("signed call of node %s is %s off this node's clock (at most %s)", node, d.Round(time.Second), MaxSkew)
	}
	nonce := f[2]
	blob, err := base64.StdEncoding.DecodeString(f[3])
	if err != nil {
		return node, errors.New("malformed node signature")
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(blob, &sig); err != nil {
		return node, errors.New("malformed node signature")
	}
	key, ok := keyOf(node)
	if !ok {
		return node, fmt.Errorf("node %s has published no signing key", node)
	}
	if err := key.Verify(message(node, at, nonce, req.Method, req.URL.RequestURI()), &sig); err != nil {
		return node, fmt.Errorf("signature of node %s does not verify with its published key", node)
	}
	if replays != nil {
		if err := replays.fresh(node+"\x00"+nonce, at, now); errors.Is(err, errReplayed) {
			return node, fmt.Errorf("signed call of node %s replayed", node)
		} else if err != nil {
			return node, fmt.Errorf("signed call of node %s: %w", node, err)
		}
	}
	return node, nil
}
