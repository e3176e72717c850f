package agent_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/api"
)

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pubPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PUBLIC KEY", der)
}

func jwkOf(t *testing.T, k any, kid, alg string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ParsePublicKey accepts the public key forms agents register for
// private_key_jwt and refuses the rest, naming the field to fix.
func TestParsePublicKey(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p256.PublicKey, p256)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(p256)
	thumb := func(pub any) string {
		tp, _ := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
		return base64.RawURLEncoding.EncodeToString(tp)
	}

	tests := []struct {
		name     string
		jwk      json.RawMessage
		pem      string
		alg, kid string
		wantAlg  string
		wantKID  string // "" means the RFC 7638 thumbprint
		field    string // set: want a 400 naming it
	}{
		{name: "EC P-256 JWK", jwk: jwkOf(t, &p256.PublicKey, "", ""), wantAlg: "ES256"},
		{name: "JWK kid and alg kept", jwk: jwkOf(t, &p256.PublicKey, "mine", "ES256"), wantAlg: "ES256", wantKID: "mine"},
		{name: "kid field over the JWK's", jwk: jwkOf(t, &p256.PublicKey, "in-jwk", ""), kid: "given", wantAlg: "ES256", wantKID: "given"},
		{name: "EC P-384 PEM", pem: pubPEM(t, &p384.PublicKey), wantAlg: "ES384"},
		{name: "Ed25519 PEM", pem: pubPEM(t, edPub), wantAlg: "EdDSA"},
		{name: "RSA 2048 PEM", pem: pubPEM(t, &rsa2048.PublicKey), wantAlg: "RS256"},
		{name: "RSA PS256 chosen", pem: pubPEM(t, &rsa2048.PublicKey), alg: "PS256", wantAlg: "PS256"},
		{name: "certificate PEM", pem: pemOf(t, "CERTIFICATE", certDER), wantAlg: "ES256"},

		{name: "nothing", field: "jwk"},
		{name: "both forms", jwk: jwkOf(t, &p256.PublicKey, "", ""), pem: pubPEM(t, &p256.PublicKey), field: "jwk"},
		{name: "private EC JWK", jwk: jwkOf(t, p256, "", ""), field: "jwk"},
		{name: "private Ed25519 JWK", jwk: jwkOf(t, edPriv, "", ""), field: "jwk"},
		{name: "private RSA JWK", jwk: jwkOf(t, rsa2048, "", ""), field: "jwk"},
		{name: "symmetric JWK", jwk: jwkOf(t, []byte("0123456789abcdef0123456789abcdef"), "", ""), field: "jwk"},
		{name: "RSA 1024 JWK", jwk: jwkOf(t, &rsa1024.PublicKey, "", ""), field: "jwk"},
		{name: "RSA 1024 PEM names pem", pem: pubPEM(t, &rsa1024.PublicKey), field: "pem"},
		{name: "P-521 PEM names pem", pem: pubPEM(t, &p521.PublicKey), field: "pem"},
		{name: "private key PEM", pem: pemOf(t, "PRIVATE KEY", privDER), field: "pem"},
		{name: "garbage PEM body", pem: pemOf(t, "PUBLIC KEY", []byte("garbage")), field: "pem"},
		{name: "not PEM", pem: "ssh-ed25519 AAAA", field: "pem"},
		{name: "JWK not an object", jwk: json.RawMessage(`"key"`), field: "jwk"},
		{name: "alg of another key type", jwk: jwkOf(t, &p256.PublicKey, "", ""), alg: "RS256", field: "alg"},
		{name: "alg of another curve", pem: pubPEM(t, &p384.PublicKey), alg: "ES256", field: "alg"},
		{name: "alg none", jwk: jwkOf(t, &p256.PublicKey, "", ""), alg: "none", field: "alg"},
		{name: "kid too long", jwk: jwkOf(t, &p256.PublicKey, "", ""), kid: string(make([]byte, 129)), field: "kid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := agent.ParsePublicKey(tc.jwk, tc.pem, tc.alg, tc.kid)
			if tc.field != "" {
				var e *api.Error
				if !errors.As(err, &e) || e.Status != 400 || len(e.Errors) != 1 || e.Errors[0].Field != tc.field {
					t.Fatalf("err %v, want a 400 naming %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var stored jose.JSONWebKey
			if err := json.Unmarshal(k.JWK, &stored); err != nil || !stored.IsPublic() {
				t.Fatalf("stored JWK %s is not a public key: %v", k.JWK, err)
			}
			want := tc.wantKID
			if want == "" {
				want = thumb(stored.Key)
			}
			if k.Alg != tc.wantAlg || k.KID != want || stored.KeyID != want || stored.Algorithm != tc.wantAlg {
				t.Fatalf("key %s alg %s kid %s, want alg %s kid %s", k.JWK, k.Alg, k.KID, tc.wantAlg, want)
			}
		})
	}
}
