package credential

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Preset fills an OAuth provider's token endpoint, auth method and token parameters
// from a few parameters, for an authorization server whose URLs follow a known
// pattern. What a preset fills can still be overridden field by field.
type Preset struct {
	Name        string        `json:"name"`
	Title       string        `json:"title"`
	Description string        `json:"description"`
	Params      []PresetParam `json:"params"`
	AuthMethod  string        `json:"auth_method"`

	endpoint func(p map[string]string) string
	// tokenParams returns extra token request parameters (nil: none).
	tokenParams func(p map[string]string) map[string]string
}

// PresetParam is one parameter a preset takes.
type PresetParam struct {
	Name        string `json:"name"`
	Required    bool   `json:"required"`
	Description string `json:"description"`
	Example     string `json:"example"`
	re          *regexp.Regexp
	rule        string
}

var (
	hostRe  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+(:[0-9]{1,5})?$`)
	tenant  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)
	segment = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)
	anyText = regexp.MustCompile(`^[\x21-\x7e]{1,512}$`)
)

const hostRule = "must be a host name such as tenant.example.com (no scheme, no path)"

// Presets are the known providers, by name.
var Presets = map[string]Preset{
	"entra_id": {
		Name: "entra_id", Title: "Microsoft Entra ID",
		Description: "Microsoft identity platform v2.0 token endpoint of one tenant. Ask for <resource>/.default scopes, e.g. https://graph.microsoft.com/.default.",
		Params: []PresetParam{{Name: "tenant", Required: true, Description: "tenant id (GUID) or a verified domain", Example: "contoso.onmicrosoft.com",
			re: tenant, rule: "must be a tenant GUID or domain (letters, digits, '.', '-')"}},
		AuthMethod: AuthPost,
		endpoint: func(p map[string]string) string {
			return "https://login.microsoftonline.com/" + url.PathEscape(p["tenant"]) + "/oauth2/v2.0/token"
		},
	},
	"okta": {
		Name: "okta", Title: "Okta",
		Description: "An Okta custom authorization server (client credentials needs one; \"default\" exists in every org).",
		Params: []PresetParam{
			{Name: "domain", Required: true, Description: "the Okta org domain", Example: "dev-123456.okta.com", re: hostRe, rule: hostRule},
			{Name: "authorization_server", Description: "authorization server id (default: default)", Example: "default", re: segment, rule: "must be an authorization server id (letters, digits, '.', '_', '~', '-')"},
		},
		AuthMethod: AuthBasic,
		endpoint: func(p map[string]string) string {
			as := p["authorization_server"]
			if as == "" {
				as = "default"
			}
			return "https://" + p["domain"] + "/oauth2/" + url.PathEscape(as) + "/v1/token"
		},
	},
	"auth0": {
		Name: "auth0", Title: "Auth0",
		Description: "An Auth0 tenant; the API to get tokens for is its audience.",
		Params: []PresetParam{
			{Name: "domain", Required: true, Description: "the tenant domain or custom domain", Example: "acme.us.auth0.com", re: hostRe, rule: hostRule},
			{Name: "audience", Required: true, Description: "the API identifier (audience) in Auth0", Example: "https://api.acme.example", re: anyText, rule: "must be 1-512 printable characters without spaces"},
		},
		AuthMethod: AuthPost,
		endpoint:   func(p map[string]string) string { return "https://" + p["domain"] + "/oauth/token" },
		tokenParams: func(p map[string]string) map[string]string {
			return map[string]string{"audience": p["audience"]}
		},
	},
	"keycloak": {
		Name: "keycloak", Title: "Keycloak",
		Description: "A Keycloak realm (Keycloak 17 and later; older versions have /auth before /realms: give base_url with it).",
		Params: []PresetParam{
			{Name: "base_url", Required: true, Description: "the server's base URL", Example: "https://sso.example.com", re: anyText, rule: "must be an https URL without query, fragment, user info or . and .. segments"},
			{Name: "realm", Required: true, Description: "the realm name", Example: "agents", re: segment, rule: "must be a realm name (letters, digits, '.', '_', '~', '-')"},
		},
		AuthMethod: AuthBasic,
		endpoint: func(p map[string]string) string {
			return strings.TrimSuffix(p["base_url"], "/") + "/realms/" + url.PathEscape(p["realm"]) + "/protocol/openid-connect/token"
		},
	},
}

// plainBaseURL reports whether s is a URL that only a path is appended to.
func plainBaseURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// PresetList returns the presets sorted by name.
func PresetList() []Preset {
	out := make([]Preset, 0, len(Presets))
	for _, p := range Presets {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PresetResult is what a preset fills in.
type PresetResult struct {
	TokenEndpoint string
	AuthMethod    string
	TokenParams   map[string]string
}

// ApplyPreset checks params against the preset name and returns what it fills.
// Errors name the parameter (as preset_params.<name>). allowInsecure is the
// server's --allow-insecure-token-endpoints.
func ApplyPreset(name string, params map[string]string, allowInsecure bool) (PresetResult, []FieldProblem) {
	p, ok := Presets[name]
	if !ok {
		names := make([]string, 0, len(Presets))
		for n := range Presets {
			names = append(names, n)
		}
		slices.Sort(names)
		return PresetResult{}, []FieldProblem{{"preset", fmt.Sprintf("must be one of %s (got %q)", strings.Join(names, ", "), name)}}
	}
	var probs []FieldProblem
	known := map[string]bool{}
	for _, pp := range p.Params {
		known[pp.Name] = true
		v, set := params[pp.Name]
		switch {
		case !set || v == "":
			if pp.Required {
				probs = append(probs, FieldProblem{"preset_params." + pp.Name, fmt.Sprintf("is required by the %s preset (%s, e.g. %s)", name, pp.Description, pp.Example)})
			}
		case !pp.re.MatchString(v), pp.Name == "base_url" && !plainBaseURL(v):
			probs = append(probs, FieldProblem{"preset_params." + pp.Name, pp.rule})
		}
	}
	for k := range params {
		if !known[k] {
			probs = append(probs, FieldProblem{"preset_params." + k, fmt.Sprintf("is not a parameter of the %s preset", name)})
		}
	}
	if len(probs) > 0 {
		return PresetResult{}, probs
	}
	r := PresetResult{TokenEndpoint: p.endpoint(params), AuthMethod: p.AuthMethod}
	if p.tokenParams != nil {
		r.TokenParams = p.tokenParams(params)
	}
	if msg := CheckSecretURL(r.TokenEndpoint, allowInsecure, true); msg != "" {
		// Only base_url can make a preset's URL wrong.
		return PresetResult{}, []FieldProblem{{"preset_params.base_url", "gives the token endpoint " + r.TokenEndpoint + ", which " + msg}}
	}
	return r, nil
}

// FieldProblem is a field name and what is wrong with it.
type FieldProblem struct{ Field, Detail string }
