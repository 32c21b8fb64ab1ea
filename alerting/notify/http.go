package notify

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
	promconfig "github.com/prometheus/common/config"
)

// HTTPConfig secures and authenticates the requests of a receiver. It has
// the shape of the http_config of Prometheus and Alertmanager (basic_auth,
// authorization, tls_config), with one difference: passwords and tokens
// come only from files or environment variables, never from the
// configuration file itself.
type HTTPConfig struct {
	// BasicAuth sends a user name and password with every request.
	BasicAuth *BasicAuth `yaml:"basic_auth"`
	// Authorization sends a token in the Authorization header (a bearer
	// token by default). At most one of BasicAuth and Authorization.
	Authorization *Authorization `yaml:"authorization"`
	// TLSConfig sets the certificate authority that signed the receiver's
	// certificate, the client certificate, and the name to verify.
	TLSConfig TLSConfig `yaml:"tls_config"`
}

// BasicAuth is HTTP basic authentication (RFC 7617). The password comes
// from exactly one of PasswordFile (read at every request, so that a
// rotated file takes effect at once) and PasswordEnv.
type BasicAuth struct {
	Username string `yaml:"username"`
	// Password is refused: it would put the secret in the configuration
	// file. It exists to say so instead of "unknown field".
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`

	password Secret // from PasswordEnv
}

// Authorization sends "Authorization: <Type> <credentials>". The
// credentials come from exactly one of CredentialsFile (read at every
// request) and CredentialsEnv.
type Authorization struct {
	// Type is the authentication scheme; Bearer when empty.
	Type string `yaml:"type"`
	// Credentials is refused, as BasicAuth.Password is.
	Credentials     Secret `yaml:"credentials"`
	CredentialsFile string `yaml:"credentials_file"`
	CredentialsEnv  string `yaml:"credentials_env"`

	credentials Secret // from CredentialsEnv
}

// TLSConfig is the TLS side of a receiver's connections. Paths are
// relative to the configuration file; the files are checked when the
// configuration is loaded and read again when they change.
type TLSConfig struct {
	// CAFile holds the PEM certificates that may sign the receiver's
	// certificate (the system's roots when empty).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and its key, for
	// receivers that require one. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the receiver's certificate must carry (the
	// URL's host when empty).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate: for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// MinVersion is the oldest TLS version accepted: TLS10, TLS11, TLS12
	// or TLS13 (TLS12 when empty).
	MinVersion string `yaml:"min_version"`
}

// authScheme is an HTTP authentication scheme (RFC 9110: a token).
var authScheme = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (h *HTTPConfig) validate(p *yamlstrict.Problems, path, baseDir string, lookupEnv func(string) (string, bool)) {
	key := func(k string) string { return yamlstrict.Key(path, k) }
	if h.BasicAuth != nil && h.Authorization != nil {
		p.Add(path, nil, "needs at most one of basic_auth and authorization")
	}
	if b := h.BasicAuth; b != nil {
		bp := key("basic_auth")
		if b.Username == "" {
			p.Add(yamlstrict.Key(bp, "username"), nil, "is required")
		} else if strings.Contains(b.Username, ":") {
			p.Add(yamlstrict.Key(bp, "username"), b.Username, "must not contain a colon")
		}
		b.password = loadSecret(p, bp, "password", secretSources{inline: b.Password, file: &b.PasswordFile, env: b.PasswordEnv,
			required: true}, baseDir, lookupEnv)
	}
	if a := h.Authorization; a != nil {
		ap := key("authorization")
		switch {
		case a.Type == "":
			a.Type = "Bearer"
		case strings.EqualFold(a.Type, "basic"):
			p.Add(yamlstrict.Key(ap, "type"), a.Type, "cannot be Basic: use basic_auth")
		case !authScheme.MatchString(a.Type):
			p.Add(yamlstrict.Key(ap, "type"), a.Type, "is not an HTTP authentication scheme (such as Bearer)")
		}
		a.credentials = loadSecret(p, ap, "credentials", secretSources{inline: a.Credentials, file: &a.CredentialsFile,
			env: a.CredentialsEnv, required: true}, baseDir, lookupEnv)
	}
	h.TLSConfig.validate(p, key("tls_config"), baseDir)
}

func (t *TLSConfig) validate(p *yamlstrict.Problems, path, baseDir string) {
	key := func(k string) string { return yamlstrict.Key(path, k) }
	if t.CAFile != "" {
		name := t.CAFile
		t.CAFile = resolve(baseDir, name)
		data, err := os.ReadFile(t.CAFile)
		switch {
		case err != nil:
			p.Add(key("ca_file"), name, "cannot be read: %v", pathError(err))
		case !x509.NewCertPool().AppendCertsFromPEM(data):
			p.Add(key("ca_file"), name, "holds no PEM certificate")
		}
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		p.Add(path, nil, "needs both cert_file and key_file for a client certificate")
	case t.CertFile != "":
		name := t.CertFile
		t.CertFile, t.KeyFile = resolve(baseDir, t.CertFile), resolve(baseDir, t.KeyFile)
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			p.Add(key("cert_file"), name, "with key_file is not a usable client certificate: %v", pathError(err))
		}
	}
	if _, ok := promconfig.TLSVersions[t.MinVersion]; t.MinVersion != "" && !ok {
		p.Add(key("min_version"), t.MinVersion, "must be TLS10, TLS11, TLS12 or TLS13")
	}
}

// secretSources are the places a secret may come from.
type secretSources struct {
	inline Secret
	file   *string // resolved against the configuration's directory in place
	env    string
	// inlineOK allows the secret in the configuration file; required
	// demands one source.
	inlineOK, required bool
}

// loadSecret checks the sources of the secret name in the section at path
// (name, name_file, name_env) and returns its value when it is inline or
// from the environment; a file is read to check it, trailing line breaks
// trimmed, and its value returned too. The value never appears in a
// problem.
func loadSecret(p *yamlstrict.Problems, path, name string, s secretSources, baseDir string, lookupEnv func(string) (string, bool)) Secret {
	key := func(k string) string { return yamlstrict.Key(path, k) }
	if s.inline != "" && !s.inlineOK {
		p.Add(key(name), nil, "is not accepted in the configuration file: use %s_file or %s_env", name, name)
		s.inline = ""
	}
	set := slices.DeleteFunc([]string{string(s.inline), *s.file, s.env}, func(v string) bool { return v == "" })
	sources := name + "_file and " + name + "_env"
	if s.inlineOK {
		sources = name + ", " + sources
	}
	switch {
	case len(set) > 1 || (s.required && len(set) == 0 && !p.Has(key(name))):
		quantity := "at most"
		if s.required {
			quantity = "exactly"
		}
		p.Add(path, nil, "needs %s one of %s", quantity, sources)
	case s.inline != "":
		return s.inline
	case *s.file != "":
		file := *s.file
		*s.file = resolve(baseDir, file)
		data, err := os.ReadFile(*s.file)
		v := Secret(strings.TrimRight(string(data), "\r\n"))
		switch {
		case err != nil:
			p.Add(key(name+"_file"), file, "cannot be read: %v", pathError(err))
		case strings.TrimSpace(string(v)) == "":
			p.Add(key(name+"_file"), file, "is empty")
		}
		return v
	case s.env != "":
		v, ok := lookupEnv(s.env)
		if !ok || v == "" {
			p.Add(key(name+"_env"), s.env, "is not set in the environment")
		}
		return Secret(v)
	}
	return ""
}

// sendsCredentials reports whether requests carry a password or token.
func (h *HTTPConfig) sendsCredentials() bool { return h.BasicAuth != nil || h.Authorization != nil }

// roundTripper returns what a receiver's requests go through: base, or
// when base is nil a transport of the receiver's own with its TLS
// settings (files re-read when they change; proxies from the
// environment), wrapped to authenticate every request. name labels the
// transport's connections.
func (h *HTTPConfig) roundTripper(name string, base http.RoundTripper) (http.RoundTripper, error) {
	rt := base
	if rt == nil {
		t := h.TLSConfig
		pc := promconfig.HTTPClientConfig{EnableHTTP2: true, ProxyConfig: promconfig.ProxyConfig{ProxyFromEnvironment: true},
			TLSConfig: promconfig.TLSConfig{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName,
				InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: promconfig.TLSVersions[t.MinVersion]}}
		var err error
		if rt, err = promconfig.NewRoundTripperFromConfig(pc, "cellwarden_receiver_"+name); err != nil {
			return nil, err
		}
	}
	if b := h.BasicAuth; b != nil {
		rt = promconfig.NewBasicAuthRoundTripper(promconfig.NewInlineSecret(b.Username), secretReader(b.password, b.PasswordFile), rt)
	}
	if a := h.Authorization; a != nil {
		rt = promconfig.NewAuthorizationCredentialsRoundTripper(a.Type, secretReader(a.credentials, a.CredentialsFile), rt)
	}
	return rt, nil
}

// secretReader reads a secret from file at every request when there is
// one, else returns v.
func secretReader(v Secret, file string) promconfig.SecretReader {
	if file != "" {
		return promconfig.NewFileSecret(file)
	}
	return promconfig.NewInlineSecret(string(v))
}
