package oauth

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/agentguard/agentguard/internal/grant"
)

// Metadata is the RFC 8414 / OIDC Discovery document. Other packages (sign-in,
// dynamic registration) add their endpoints through Server.Extend.
type Metadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	JWKSURI                                string   `json:"jwks_uri"`
	UserinfoEndpoint                       string   `json:"userinfo_endpoint,omitempty"`
	RegistrationEndpoint                   string   `json:"registration_endpoint,omitempty"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	EndSessionEndpoint                     string   `json:"end_session_endpoint,omitempty"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	SubjectTypesSupported                  []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported       []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgsSupported  []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods          []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported,omitempty"`
	ScopesSupported                        []string `json:"scopes_supported"`
	AccessTokenSigningAlgValuesSupported   []string `json:"access_token_signing_alg_values_supported"`
	ResourceIndicatorsSupported            bool     `json:"resource_indicators_supported"`
	AuthorizationResponseIssParamSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	ResponseModesSupported                 []string `json:"response_modes_supported,omitempty"`
	ClaimsSupported                        []string `json:"claims_supported,omitempty"`
	PromptValuesSupported                  []string `json:"prompt_values_supported,omitempty"`
	RequestParameterSupported              *bool    `json:"request_parameter_supported,omitempty"`
	RequestURIParameterSupported           *bool    `json:"request_uri_parameter_supported,omitempty"`
}

// Metadata describes this server.
func (s *Server) Metadata() Metadata {
	u := s.Issuer.URL
	methods := []string{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT}
	var algs []string
	for _, a := range AssertionAlgorithms {
		algs = append(algs, string(a))
	}
	m := Metadata{
		Issuer:                                u,
		TokenEndpoint:                         u + "/oauth2/token",
		JWKSURI:                               u + "/oauth2/jwks",
		IntrospectionEndpoint:                 u + "/oauth2/introspect",
		RevocationEndpoint:                    u + "/oauth2/revoke",
		GrantTypesSupported:                   s.grantTypes(),
		ResponseTypesSupported:                []string{}, // no authorization endpoint yet
		SubjectTypesSupported:                 []string{"public"},
		IDTokenSigningAlgValuesSupported:      []string{string(s.Issuer.Keyring.Algorithm())},
		TokenEndpointAuthMethodsSupported:     methods,
		TokenEndpointAuthSigningAlgsSupported: algs,
		IntrospectionEndpointAuthMethods:      methods,
		RevocationEndpointAuthMethods:         methods,
		ScopesSupported:                       []string{grant.ScopeCredentials, grant.ScopeAdmin},
		AccessTokenSigningAlgValuesSupported:  []string{string(s.Issuer.Keyring.Algorithm())},
		ResourceIndicatorsSupported:           true,
	}
	if s.signsInUsers() {
		f := false
		m.UserinfoEndpoint = u + "/oauth2/userinfo"
		m.CodeChallengeMethodsSupported = []string{"S256"}
		m.ScopesSupported = append(slices.Clone(UserScopes), m.ScopesSupported...)
		m.ClaimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
			"name", "preferred_username", "email", "groups", "act", "client_id", "scope"}
		m.TokenEndpointAuthMethodsSupported = append(slices.Clone(methods), AuthNone)
		m.RevocationEndpointAuthMethods = append(slices.Clone(methods), AuthNone)
		m.RequestParameterSupported, m.RequestURIParameterSupported = &f, &f
	}
	for _, f := range s.extensions {
		f(&m)
	}
	return m
}

// Extend lets another package add its endpoints and capabilities to the metadata.
func (s *Server) Extend(f func(*Metadata)) { s.extensions = append(s.extensions, f) }

func (s *Server) grantTypes() []string {
	out := make([]string, 0, len(s.grants))
	for _, g := range []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantJWTBearer, GrantTokenExchange} {
		if s.grants[g] != nil {
			out = append(out, g)
		}
	}
	return out
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.Metadata())
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short enough that verifiers see a rotation well inside a token lifetime.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(s.Issuer.Keyring.JWKS())
}
