package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
)

// This file parses compact JWS (RFC 7515 §7.1) itself and leaves the cryptography
// to crypto/ecdsa, crypto/rsa and crypto/ed25519. Why not go-jose's generic path:
// it builds a general JSON Web Signature object (any number of signatures, JSON
// serialization, protected and unprotected headers, its own JSON decoder) for every
// token; a resource server checks one compact token per request, and the issue's
// target is that verification costs at most a fifth more than the signature check
// alone. The parsing here is deliberately small and strict, and is tested against
// go-jose-produced tokens and fuzzed against go-jose's verdicts (verify_test.go).

// maxTokenLen bounds a token before any work is done on it.
const maxTokenLen = 16 << 10

var b64 = base64.RawURLEncoding.Strict()

// header is the JOSE header fields the verifier reads. Any "crit" is refused: the
// verifier understands no extension (RFC 7515 §4.1.11).
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// compact is a token split into its parts; signingInput is header.payload.
type compact struct {
	header       header
	signingInput string
	payload      string // base64url
	signature    []byte
}

// parseCompact splits and decodes a compact JWS. It checks only the encoding; the
// caller checks the algorithm, the key and the signature.
func parseCompact(raw string) (compact, error) {
	var c compact
	if len(raw) == 0 || len(raw) > maxTokenLen {
		return c, reasonf("malformed", "the token is empty or over %d bytes", maxTokenLen)
	}
	i := strings.IndexByte(raw, '.')
	j := strings.LastIndexByte(raw, '.')
	if i <= 0 || j == i || strings.IndexByte(raw[i+1:j], '.') >= 0 || j == len(raw)-1 || j == i+1 {
		return c, reasonf("malformed", "the token is not a compact JWS (three non-empty base64url parts)")
	}
	hdr, err := b64.DecodeString(raw[:i])
	if err != nil {
		return c, reasonf("malformed", "the token header is not base64url")
	}
	if err := json.Unmarshal(hdr, &c.header); err != nil {
		return c, reasonf("malformed", "the token header is not a JSON object")
	}
	if len(c.header.Crit) > 0 {
		return c, reasonf("malformed", "the token header has crit extensions, which are not supported")
	}
	sig, err := b64.DecodeString(raw[j+1:])
	if err != nil {
		return c, reasonf("malformed", "the token signature is not base64url")
	}
	c.signingInput, c.payload, c.signature = raw[:j], raw[i+1:j], sig
	return c, nil
}

// checkSignature verifies sig over input with key, for alg.
func checkSignature(alg string, key crypto.PublicKey, input string, sig []byte) bool {
	switch alg {
	case "ES256", "ES384", "ES512":
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest(alg, input), r, s)
	case "RS256", "RS384", "RS512":
		pub, ok := key.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(pub, hashOf(alg), digest(alg, input), sig) == nil
	case "PS256", "PS384", "PS512":
		pub, ok := key.(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(pub, hashOf(alg), digest(alg, input), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case "EdDSA":
		pub, ok := key.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, []byte(input), sig)
	}
	return false
}

func hashOf(alg string) crypto.Hash {
	switch alg[2:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

func digest(alg, input string) []byte {
	switch hashOf(alg) {
	case crypto.SHA384:
		h := sha512.Sum384([]byte(input))
		return h[:]
	case crypto.SHA512:
		h := sha512.Sum512([]byte(input))
		return h[:]
	}
	h := sha256.Sum256([]byte(input))
	return h[:]
}
