package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/cellwarden/cellwarden/internal/testcert"
)

// The shipped deployments serve every endpoint over TLS: the systemd unit
// with TLS and basic auth from /etc/cellwarden/web.yml (the example, whose
// placeholder hashes keep the service from starting until real ones are
// set), Kubernetes with the certificate of a Secret, HTTPS probes, a
// ServiceMonitor that verifies the certificate and a NetworkPolicy.
func TestShippedDeploymentsServeTLS(t *testing.T) {
	example := filepath.Join(repoRoot, "deploy/examples/web-config.yml")
	var webCfg web.Config
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&webCfg); err != nil {
		t.Fatalf("%s: %v", example, err)
	}

	t.Run("example web config fails closed", func(t *testing.T) {
		if webCfg.TLSConfig.TLSCertPath == "" || webCfg.TLSConfig.TLSKeyPath == "" || len(webCfg.Users) == 0 {
			t.Fatalf("%s: TLS cert %q, key %q, %d users: want TLS and basic auth", example, webCfg.TLSConfig.TLSCertPath, webCfg.TLSConfig.TLSKeyPath, len(webCfg.Users))
		}
		// With certificates in place, only the placeholder hashes stand
		// between the example and a running server: the toolkit refuses
		// them, so the service cannot start with nobody able to log in.
		dir := t.TempDir()
		writeTestCert(t, dir)
		relocated := strings.NewReplacer(webCfg.TLSConfig.TLSCertPath, filepath.Join(dir, "tls.crt"),
			webCfg.TLSConfig.TLSKeyPath, filepath.Join(dir, "tls.key")).Replace(string(data))
		path := writeFile(t, "web.yml", relocated)
		if err := web.Validate(path); err == nil || !strings.Contains(err.Error(), "bcrypt") {
			t.Errorf("the example with its placeholder hashes validates (%v): a server would start", err)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		hashed := strings.ReplaceAll(relocated, "REPLACE-with-the-output-of-cellwarden-hash-password", string(hash))
		if err := web.Validate(writeFile(t, "web-hashed.yml", hashed)); err != nil {
			t.Errorf("the example with real hashes and certificates: %v", err)
		}
	})

	t.Run("systemd", func(t *testing.T) {
		u := parseUnit(t, filepath.Join(repoRoot, "deploy/systemd/cellwarden.service"))
		start, _ := u.last("Service", "ExecStart")
		if !strings.Contains(start, "--web.config.file=/etc/cellwarden/web.yml") {
			t.Errorf("ExecStart %q: want --web.config.file=/etc/cellwarden/web.yml", start)
		}
		cred, _ := u.last("Service", "LoadCredential")
		name, _, _ := strings.Cut(cred, ":")
		if want := "/run/credentials/cellwarden.service/" + name; webCfg.TLSConfig.TLSKeyPath != want {
			t.Errorf("LoadCredential=%s hands the key in as %s; the example's key_file is %s", cred, want, webCfg.TLSConfig.TLSKeyPath)
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		objs := k8sManifests(t)
		var sts statefulSetSpec
		decodeSpec(t, objs["StatefulSet"], &sts)
		c := sts.Template.Spec.Containers[0]
		flags := flagValues(c.Args)
		mountOf := func(volume string) string {
			for _, m := range c.VolumeMounts {
				if m.Name == volume {
					return m.MountPath
				}
			}
			return ""
		}
		var configMount, tlsMount, tlsSecret string
		for _, v := range sts.Template.Spec.Volumes {
			switch {
			case v.ConfigMap != nil && v.ConfigMap.Name == objs["ConfigMap"].Metadata.Name:
				configMount = mountOf(v.Name)
			case v.Secret != nil && v.Secret.SecretName != objs["Secret"].Metadata.Name:
				tlsMount, tlsSecret = mountOf(v.Name), v.Secret.SecretName
			}
		}
		webFile := flags["--web.config.file"]
		if configMount == "" || filepath.Dir(webFile) != configMount {
			t.Fatalf("--web.config.file=%q: want a file of the ConfigMap mounted at %q", webFile, configMount)
		}
		var kcfg web.Config
		if err := yaml.Unmarshal([]byte(objs["ConfigMap"].Data[filepath.Base(webFile)]), &kcfg); err != nil {
			t.Fatal(err)
		}
		if tlsMount == "" || filepath.Dir(kcfg.TLSConfig.TLSCertPath) != tlsMount || filepath.Dir(kcfg.TLSConfig.TLSKeyPath) != tlsMount {
			t.Fatalf("web.yml's certificate %q and key %q: want them in the TLS Secret's mount %q", kcfg.TLSConfig.TLSCertPath, kcfg.TLSConfig.TLSKeyPath, tlsMount)
		}
		// A kubernetes.io/tls Secret mounted there makes a valid server.
		dir := t.TempDir()
		writeTestCert(t, dir)
		relocated := strings.ReplaceAll(objs["ConfigMap"].Data[filepath.Base(webFile)], tlsMount+"/", dir+"/")
		if err := web.Validate(writeFile(t, "k8s-web.yml", relocated)); err != nil {
			t.Errorf("web.yml with a certificate in place: %v", err)
		}
		for name, p := range map[string]*k8sProbe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != "HTTPS" {
				t.Errorf("%s probe: want httpGet with scheme HTTPS", name)
			}
		}
		var sm struct {
			Endpoints []struct {
				Scheme    string `yaml:"scheme"`
				TLSConfig struct {
					CA struct {
						Secret struct {
							Name string `yaml:"name"`
							Key  string `yaml:"key"`
						} `yaml:"secret"`
					} `yaml:"ca"`
					ServerName string `yaml:"serverName"`
				} `yaml:"tlsConfig"`
			} `yaml:"endpoints"`
		}
		decodeSpec(t, objs["ServiceMonitor"], &sm)
		if len(sm.Endpoints) != 1 || sm.Endpoints[0].Scheme != "https" || sm.Endpoints[0].TLSConfig.CA.Secret.Name != tlsSecret ||
			sm.Endpoints[0].TLSConfig.ServerName == "" {
			t.Errorf("ServiceMonitor endpoints %+v: want https, verified against the CA of Secret %s for a server name", sm.Endpoints, tlsSecret)
		}
		var np struct {
			PodSelector labelSelector `yaml:"podSelector"`
			PolicyTypes []string      `yaml:"policyTypes"`
			Ingress     []struct {
				Ports []struct {
					Port string `yaml:"port"`
				} `yaml:"ports"`
			} `yaml:"ingress"`
		}
		decodeSpec(t, objs["NetworkPolicy"], &np)
		if !matches(np.PodSelector.MatchLabels, sts.Template.Metadata.Labels) || len(np.Ingress) != 1 ||
			len(np.Ingress[0].Ports) != 1 || np.Ingress[0].Ports[0].Port != "metrics" {
			t.Errorf("NetworkPolicy %+v: want it to select the pods and admit only their metrics port", np)
		}
	})
}

// writeTestCert lays out a kubernetes.io/tls Secret's files in dir:
// tls.crt, tls.key and ca.crt (the self-signed certificate is its own CA).
func writeTestCert(t *testing.T, dir string) {
	t.Helper()
	testcert.Write(t, dir)
	for from, to := range map[string]string{"cert.pem": "tls.crt", "key.pem": "tls.key"} {
		if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
}
