package e2e

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The deployment files and what they promise each other: the systemd unit,
// the Dockerfile and the Kubernetes manifests name the same state
// directory, port and user, and the configuration they ship is valid for
// the real binary.

const (
	repoRoot    = "../.."
	stateDir    = "/var/lib/cellwarden"
	metricsPort = "9561"
	// The default of serve's --shutdown.timeout: stopping must be allowed
	// longer than the drain.
	shutdownTimeout = 30 * time.Second
)

// unitFile is a systemd unit: section, then key, then every value the key
// was given, in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// last returns the effective value of a single-valued key, and whether it
// is set at all.
func (u unitFile) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

func TestSystemdUnitIsHardened(t *testing.T) {
	u := parseUnit(t, filepath.Join(repoRoot, "deploy/systemd/cellwarden.service"))
	for _, tt := range []struct{ key, want string }{
		{"Type", "exec"},
		{"DynamicUser", "yes"},
		{"StateDirectory", "cellwarden"},
		{"ConfigurationDirectory", "cellwarden"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"PrivateUsers", "yes"},
		{"NoNewPrivileges", "yes"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"RestrictNamespaces", "yes"},
		{"RestrictSUIDSGID", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"LockPersonality", "yes"},
		{"SystemCallArchitectures", "native"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectControlGroups", "yes"},
		{"UMask", "0077"},
		{"Restart", "on-failure"},
	} {
		t.Run(tt.key, func(t *testing.T) {
			got, ok := u.last("Service", tt.key)
			if !ok || got != tt.want {
				t.Errorf("%s=%q (set: %v), want %q", tt.key, got, ok, tt.want)
			}
		})
	}
	if f := u["Service"]["SystemCallFilter"]; !slices.Contains(f, "@system-service") {
		t.Errorf("SystemCallFilter=%q lacks @system-service", f)
	}
	if r := u["Service"]["ExecReload"]; len(r) == 0 || r[len(r)-1] != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%q: the last must send SIGHUP to $MAINPID", r)
	}
	stop, _ := u.last("Service", "TimeoutStopSec")
	if d, err := time.ParseDuration(stop); err != nil || d <= shutdownTimeout {
		t.Errorf("TimeoutStopSec=%q: must exceed the %v shutdown timeout, or systemd kills the drain", stop, shutdownTimeout)
	}

	// The daemon writes where systemd made it writable, and reads the file
	// check-config checked.
	start, _ := u.last("Service", "ExecStart")
	flags := flagValues(strings.Fields(start))
	if flags["--state.dir"] != stateDir || !strings.HasPrefix(start, "/usr/local/bin/cellwarden serve ") {
		t.Errorf("ExecStart=%q: want /usr/local/bin/cellwarden serve with --state.dir=%s", start, stateDir)
	}
	pre, _ := u.last("Service", "ExecStartPre")
	preArgs := strings.Fields(pre)
	if len(preArgs) < 2 || preArgs[1] != "check-config" || flagValues(preArgs)["--config"] != flags["--config"] ||
		!strings.HasPrefix(flags["--config"], "/etc/cellwarden/") {
		t.Fatalf("ExecStartPre=%q: want check-config of ExecStart's --config %q in /etc/cellwarden", pre, flags["--config"])
	}

	// Run ExecStartPre as written, on the shipped example and on a broken
	// file: a bad configuration must keep the service from starting.
	tests := []struct {
		name, config string
		code         int
	}{
		{"shipped example", filepath.Join(repoRoot, "deploy/examples/cellwarden.yml"), 0},
		{"unknown key", writeFile(t, "bad.yml", "detector:\n  cell_over_temperatur: {}\n"), 1},
	}
	for _, tt := range tests {
		t.Run("ExecStartPre/"+tt.name, func(t *testing.T) {
			args := slices.Clone(preArgs[1:])
			for i, a := range args {
				args[i] = strings.Replace(a, flags["--config"], tt.config, 1)
			}
			if r := cellwarden(t, nil, args...); r.code != tt.code {
				t.Errorf("%q: exit %d, want %d\n%s%s", args, r.code, tt.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestSystemdSerialDropIn(t *testing.T) {
	u := parseUnit(t, filepath.Join(repoRoot, "deploy/systemd/rs485.conf"))
	for _, tt := range []struct{ key, want string }{
		{"PrivateDevices", "no"},
		{"PrivateUsers", "no"}, // or the dialout group is not mapped
		{"DevicePolicy", "closed"},
		{"DeviceAllow", "/dev/ttyUSB0 rw"},
		{"SupplementaryGroups", "dialout"},
	} {
		if got, _ := u.last("Service", tt.key); got != tt.want {
			t.Errorf("%s=%q, want %q", tt.key, got, tt.want)
		}
	}
}

// flagValues maps --name=value arguments to their values.
func flagValues(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
			m[k] = v
		}
	}
	return m
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dockerStage is one FROM ... of a Dockerfile with its instructions.
type dockerStage struct {
	from, name string
	instr      [][2]string // keyword (upper case), rest of the line
}

func (s dockerStage) all(keyword string) []string {
	var out []string
	for _, in := range s.instr {
		if in[0] == keyword {
			out = append(out, in[1])
		}
	}
	return out
}

func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var logical string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			logical += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		logical += trimmed
		if logical == "" {
			continue
		}
		kw, rest, _ := strings.Cut(logical, " ")
		kw, rest, logical = strings.ToUpper(kw), strings.TrimSpace(rest), ""
		if kw == "FROM" {
			f := strings.Fields(rest)
			s := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", path, kw)
		}
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, [2]string{kw, rest})
	}
	return stages
}

func jsonArray(t *testing.T, what, s string) []string {
	t.Helper()
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		t.Fatalf("%s %s: not an exec-form JSON array: %v", what, s, err)
	}
	return a
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a builder and a runtime stage", len(stages))
	}
	builder, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(builder.from, "golang:1.26") || builder.name == "" {
		t.Errorf("builder FROM %s AS %q: want a named golang:1.26 stage", builder.from, builder.name)
	}
	var buildCmd string
	for _, r := range builder.all("RUN") {
		if strings.Contains(r, "go build") {
			buildCmd = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "./cmd/cellwarden"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("builder's go build lacks %s: %q", want, buildCmd)
		}
	}

	if final.from != "gcr.io/distroless/static-debian12:nonroot" && final.from != "scratch" {
		t.Errorf("runtime stage FROM %s: want distroless static or scratch", final.from)
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("runtime stage has no USER: the image would run as root")
	}
	uid, gid, _ := strings.Cut(users[len(users)-1], ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %s: want a numeric non-root uid (Kubernetes' runAsNonRoot cannot check a name)", users[len(users)-1])
	}
	if gid != "" {
		if _, err := strconv.Atoi(gid); err != nil {
			t.Errorf("USER %s: want a numeric gid", users[len(users)-1])
		}
	}
	if v := final.all("VOLUME"); !slices.Contains(v, stateDir) {
		t.Errorf("VOLUME %q: want %s", v, stateDir)
	}
	if e := final.all("EXPOSE"); !slices.Contains(e, metricsPort) {
		t.Errorf("EXPOSE %q: want %s", e, metricsPort)
	}
	copied := false
	for _, c := range final.all("COPY") {
		copied = copied || strings.Contains(c, "--from="+builder.name+" ") && strings.HasSuffix(c, " /usr/local/bin/cellwarden")
	}
	if !copied {
		t.Errorf("runtime stage does not COPY --from=%s the binary to /usr/local/bin/cellwarden", builder.name)
	}
	if e := final.all("ENTRYPOINT"); len(e) != 1 || !slices.Equal(jsonArray(t, "ENTRYPOINT", e[0]), []string{"/usr/local/bin/cellwarden", "serve"}) {
		t.Errorf("ENTRYPOINT %q: want [\"/usr/local/bin/cellwarden\", \"serve\"]", e)
	}
	if c := final.all("CMD"); len(c) != 1 || flagValues(jsonArray(t, "CMD", c[0]))["--state.dir"] != stateDir {
		t.Errorf("CMD %q: want --state.dir=%s, the VOLUME", c, stateDir)
	}

	// No Docker daemon is needed to check what matters of the build: the
	// context .dockerignore leaves is enough to build, and the builder's
	// exact command gives a static binary with the version stamped in.
	context := dockerContext(t)
	out := t.TempDir()
	const version = "v0.0.0-dockerfile-test"
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(buildCmd, "/out/", out+"/"))
	cmd.Dir = context
	cmd.Env = append(os.Environ(), "VERSION="+version, "REVISION=0123abc")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the builder's RUN in the .dockerignore'd context: %v\n%s", err, b)
	}
	bin := filepath.Join(out, "cellwarden")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a program interpreter: not static, it would not start on distroless/static")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table: -s did not apply")
	}
	raw, _ := os.ReadFile(bin)
	if !bytes.Contains(raw, []byte(version)) {
		t.Error("VERSION did not reach the binary: the -X variable in the ldflags does not exist")
	}
	r, err := exec.Command(bin, "check-config", "--config="+filepath.Join(repoRoot, "deploy/examples/cellwarden.yml")).CombinedOutput()
	if err != nil {
		t.Errorf("the image's binary: check-config: %v\n%s", err, r)
	}
}

// dockerContext copies the repository as docker build sends it: every file
// except those .dockerignore excludes (its plain patterns, matched against
// the path from the root, as Docker does).
func dockerContext(t *testing.T) string {
	t.Helper()
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(ignore), "\n") {
		if l = strings.TrimSpace(l); l != "" && l[0] != '#' {
			patterns = append(patterns, strings.TrimPrefix(l, "/"))
		}
	}
	dst := t.TempDir()
	root, _ := filepath.Abs(repoRoot)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, rel); ok {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// k8sObject is the part of a Kubernetes object the tests read; spec is
// decoded again by kind.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
	file       string
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path   string `yaml:"path"`
		Port   string `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Privileged               *bool `yaml:"privileged"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type statefulSetSpec struct {
	Replicas    int           `yaml:"replicas"`
	ServiceName string        `yaml:"serviceName"`
	Selector    labelSelector `yaml:"selector"`
	Template    struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
				RunAsUser      *int  `yaml:"runAsUser"`
				SeccompProfile struct {
					Type string `yaml:"type"`
				} `yaml:"seccompProfile"`
			} `yaml:"securityContext"`
			Containers []k8sContainer `yaml:"containers"`
			Volumes    []struct {
				Name      string `yaml:"name"`
				ConfigMap *struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
				Secret *struct {
					SecretName string `yaml:"secretName"`
				} `yaml:"secret"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	} `yaml:"volumeClaimTemplates"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type serviceMonitorSpec struct {
	Selector  labelSelector `yaml:"selector"`
	Endpoints []struct {
		Port string `yaml:"port"`
		Path string `yaml:"path"`
	} `yaml:"endpoints"`
}

type pdbSpec struct {
	MaxUnavailable int           `yaml:"maxUnavailable"`
	Selector       labelSelector `yaml:"selector"`
}

const k8sDir = repoRoot + "/deploy/kubernetes"

// k8sManifests decodes every document of every YAML file in
// deploy/kubernetes except the kustomization, by kind.
func k8sManifests(t *testing.T) map[string]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", k8sDir, err)
	}
	objs := map[string]k8sObject{}
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			o.file = filepath.Base(file)
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", o.file)
			}
			if o.Metadata.Namespace != "" {
				t.Errorf("%s: %s %s names namespace %q: the manifests must be namespace-agnostic", o.file, o.Kind, o.Metadata.Name, o.Metadata.Namespace)
			}
			if _, dup := objs[o.Kind]; dup {
				t.Errorf("%s: a second %s", o.file, o.Kind)
			}
			objs[o.Kind] = o
		}
	}
	return objs
}

func decodeSpec(t *testing.T, o k8sObject, into any) {
	t.Helper()
	if err := o.Spec.Decode(into); err != nil {
		t.Fatalf("%s: %s spec: %v", o.file, o.Kind, err)
	}
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesManifests(t *testing.T) {
	objs := k8sManifests(t)
	for kind, apiVersion := range map[string]string{
		"ConfigMap":           "v1",
		"Secret":              "v1",
		"StatefulSet":         "apps/v1",
		"Service":             "v1",
		"ServiceMonitor":      "monitoring.coreos.com/v1",
		"PodDisruptionBudget": "policy/v1",
	} {
		if objs[kind].APIVersion != apiVersion {
			t.Errorf("%s: apiVersion %q, want %q", kind, objs[kind].APIVersion, apiVersion)
		}
	}

	// kubectl apply -k applies everything but the example Secret.
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &kust); err != nil {
		t.Fatal(err)
	}
	for kind, o := range objs {
		if listed := slices.Contains(kust.Resources, o.file); listed == (kind == "Secret") {
			t.Errorf("kustomization.yaml resources %q: %s listed %v, want %v", kust.Resources, o.file, listed, !listed)
		}
	}

	var sts statefulSetSpec
	decodeSpec(t, objs["StatefulSet"], &sts)
	pod := sts.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	flags := flagValues(c.Args)
	podLabels := sts.Template.Metadata.Labels
	if !matches(sts.Selector.MatchLabels, podLabels) {
		t.Errorf("StatefulSet selector %v does not select its pods %v", sts.Selector.MatchLabels, podLabels)
	}

	t.Run("probes on the metrics port", func(t *testing.T) {
		var port string
		for _, p := range c.Ports {
			if p.Name == "metrics" {
				port = strconv.Itoa(p.ContainerPort)
			}
		}
		if _, listen, _ := strings.Cut(flags["--web.listen-address"], ":"); port != metricsPort || listen != port {
			t.Errorf("container port metrics %q, --web.listen-address %q: want both %s", port, flags["--web.listen-address"], metricsPort)
		}
		for name, tt := range map[string]struct {
			probe *k8sProbe
			path  string
		}{
			"liveness":  {c.LivenessProbe, "/-/healthy"},
			"readiness": {c.ReadinessProbe, "/-/ready"},
		} {
			if tt.probe == nil || tt.probe.HTTPGet == nil {
				t.Errorf("no %s httpGet probe", name)
				continue
			}
			if g := tt.probe.HTTPGet; g.Path != tt.path || (g.Port != "metrics" && g.Port != port) {
				t.Errorf("%s probe GET %s on port %s, want %s on metrics (%s)", name, g.Path, g.Port, tt.path, port)
			}
		}
	})

	t.Run("state volume at --state.dir", func(t *testing.T) {
		if flags["--state.dir"] != stateDir {
			t.Errorf("--state.dir=%q, want %s (the image's VOLUME)", flags["--state.dir"], stateDir)
		}
		mounted := ""
		for _, m := range c.VolumeMounts {
			for _, v := range sts.VolumeClaimTemplates {
				if m.Name == v.Metadata.Name {
					mounted = m.MountPath
				}
			}
		}
		if mounted != flags["--state.dir"] {
			t.Errorf("the volumeClaimTemplate is mounted at %q, --state.dir is %q: the snapshot and outbox would not survive a restart", mounted, flags["--state.dir"])
		}
		if pod.TerminationGracePeriodSeconds <= int(shutdownTimeout.Seconds()) {
			t.Errorf("terminationGracePeriodSeconds %d: must exceed the %v shutdown timeout", pod.TerminationGracePeriodSeconds, shutdownTimeout)
		}
	})

	t.Run("hardened security context", func(t *testing.T) {
		psc, csc := pod.SecurityContext, c.SecurityContext
		isTrue := func(b *bool) bool { return b != nil && *b }
		isFalse := func(b *bool) bool { return b != nil && !*b }
		if !isTrue(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("pod securityContext: runAsNonRoot %v, runAsUser set and non-zero %v, seccompProfile %q; want true, true, RuntimeDefault",
				isTrue(psc.RunAsNonRoot), psc.RunAsUser != nil && *psc.RunAsUser != 0, psc.SeccompProfile.Type)
		}
		if !isTrue(csc.ReadOnlyRootFilesystem) || !isFalse(csc.AllowPrivilegeEscalation) || isTrue(csc.Privileged) ||
			!slices.Equal(csc.Capabilities.Drop, []string{"ALL"}) || len(csc.Capabilities.Add) != 0 {
			t.Errorf("container securityContext: readOnlyRootFilesystem %v, allowPrivilegeEscalation %v, privileged %v, capabilities drop %q add %q; want true, false, false, [ALL], none",
				isTrue(csc.ReadOnlyRootFilesystem), !isFalse(csc.AllowPrivilegeEscalation), isTrue(csc.Privileged), csc.Capabilities.Drop, csc.Capabilities.Add)
		}
		// The same user as the image, so the state volume's fsGroup and
		// the image's own state directory agree.
		stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
		users := stages[len(stages)-1].all("USER")
		if uid, _, _ := strings.Cut(users[len(users)-1], ":"); psc.RunAsUser != nil && strconv.Itoa(*psc.RunAsUser) != uid {
			t.Errorf("runAsUser %d, the image's USER %s", *psc.RunAsUser, uid)
		}
		for _, res := range []string{"cpu", "memory"} {
			if c.Resources.Requests[res] == "" || c.Resources.Limits[res] == "" {
				t.Errorf("resources %+v: want requests and limits for %s", c.Resources, res)
			}
		}
	})

	t.Run("one shard per pod ordinal", func(t *testing.T) {
		if flags["--shard"] != "$(SHARD_INDEX)/$(SHARD_COUNT)" {
			t.Errorf("--shard=%q, want $(SHARD_INDEX)/$(SHARD_COUNT)", flags["--shard"])
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				env[e.Name] = e.ValueFrom.FieldRef.FieldPath
			}
		}
		if env["SHARD_INDEX"] != "metadata.labels['apps.kubernetes.io/pod-index']" {
			t.Errorf("SHARD_INDEX from %q, want the pod-index label", env["SHARD_INDEX"])
		}
		if env["SHARD_COUNT"] != strconv.Itoa(sts.Replicas) {
			t.Errorf("SHARD_COUNT %q with %d replicas: UPSs of shards without a pod would not be watched", env["SHARD_COUNT"], sts.Replicas)
		}
	})

	t.Run("scraped and protected", func(t *testing.T) {
		var svc serviceSpec
		var sm serviceMonitorSpec
		var pdb pdbSpec
		decodeSpec(t, objs["Service"], &svc)
		decodeSpec(t, objs["ServiceMonitor"], &sm)
		decodeSpec(t, objs["PodDisruptionBudget"], &pdb)
		// deploy/prometheus/cellwarden.rules.yml selects job="cellwarden",
		// the Service's name under a ServiceMonitor.
		if objs["Service"].Metadata.Name != "cellwarden" || sts.ServiceName != "cellwarden" {
			t.Errorf("Service %q, StatefulSet serviceName %q: want cellwarden (the rules' job label)", objs["Service"].Metadata.Name, sts.ServiceName)
		}
		if !matches(svc.Selector, podLabels) || len(svc.Ports) != 1 || svc.Ports[0].TargetPort != "metrics" {
			t.Errorf("Service %+v: want it to select the pods and target their metrics port", svc)
		}
		if !matches(sm.Selector.MatchLabels, objs["Service"].Metadata.Labels) || len(sm.Endpoints) != 1 ||
			sm.Endpoints[0].Port != svc.Ports[0].Name || sm.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor %+v: want the Service's %q port at /metrics", sm, svc.Ports[0].Name)
		}
		if !matches(pdb.Selector.MatchLabels, podLabels) || pdb.MaxUnavailable != 1 {
			t.Errorf("PodDisruptionBudget %+v: want maxUnavailable 1 over the pods", pdb)
		}
	})

	t.Run("the mounted configuration is valid", func(t *testing.T) {
		checkMountedConfig(t, objs, sts, c, flags)
	})
}

// checkMountedConfig lays the pod's volumes out under a directory as the
// kubelet would mount them, points the configuration's absolute paths into
// it, and runs the real check-config on the file --config names.
func checkMountedConfig(t *testing.T, objs map[string]k8sObject, sts statefulSetSpec, c k8sContainer, flags map[string]string) {
	root := t.TempDir()
	var mounts []string
	for _, m := range c.VolumeMounts {
		mounts = append(mounts, m.MountPath)
	}
	relocate := func(s string) string {
		for _, m := range mounts {
			s = strings.ReplaceAll(s, m+"/", filepath.Join(root, m)+"/")
		}
		return s
	}
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var files map[string]string
		for _, v := range sts.Template.Spec.Volumes {
			switch {
			case v.Name != m.Name:
			case v.ConfigMap != nil && v.ConfigMap.Name == objs["ConfigMap"].Metadata.Name:
				files = objs["ConfigMap"].Data
			case v.Secret != nil && v.Secret.SecretName == objs["Secret"].Metadata.Name:
				files = objs["Secret"].StringData
			case v.Secret != nil && v.Secret.SecretName == "cellwarden-tls":
				// The serving certificate, made outside these manifests
				// (TestShippedDeploymentsServeTLS checks web.yml with one).
			case v.ConfigMap != nil || v.Secret != nil:
				t.Errorf("volume %s names a ConfigMap or Secret the manifests do not define", v.Name)
			}
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(relocate(content)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	config := flags["--config"]
	r := cellwarden(t, nil, "check-config", "--config="+relocate(config))
	if r.code != 0 || !regexp.MustCompile(`configuration is valid; \d+ Modbus collector\(s\); \d+ MQTT collector\(s\); inventory`).MatchString(r.stdout) {
		t.Fatalf("check-config of the ConfigMap's %s: exit %d\n%s%s", config, r.code, r.stdout, r.stderr)
	}

	// The outbox must live on the state volume, or a restarted pod loses
	// the notifications it had not sent.
	var cfg struct {
		Alerting struct {
			Outbox struct {
				Path string `yaml:"path"`
			} `yaml:"outbox"`
		} `yaml:"alerting"`
	}
	if err := yaml.Unmarshal([]byte(objs["ConfigMap"].Data[filepath.Base(config)]), &cfg); err != nil {
		t.Fatal(err)
	}
	if p := cfg.Alerting.Outbox.Path; filepath.Dir(p) != flags["--state.dir"] {
		t.Errorf("alerting.outbox.path %q is not in the state directory %s", p, flags["--state.dir"])
	}
}
