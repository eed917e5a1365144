package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// PeerToken is the bearer token of the peer listener derived from a
// gossip key: every holder of the cluster's gossip key (its nodes, an
// operator's CLI) can compute it, nobody else can.
func PeerToken(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("driftless peer listener v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// PeerTokens are the tokens of every key of a key ring (the first one
// signs, all are accepted, as for gossip).
func PeerTokens(keys [][]byte) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, PeerToken(k))
	}
	return out
}
