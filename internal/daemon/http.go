package daemon

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/cellwarden/cellwarden/alerting/metrics"
)

// handler serves /metrics, the lifecycle endpoints, the lifecycle API
// (api.go) and the status page. TLS and basic auth apply to all of them
// (the web configuration file).
func (d *daemon) handler() (http.Handler, error) {
	mux := http.NewServeMux()
	api := d.lifecycleAPI()
	api.logMode()
	api.register(mux)
	mux.Handle("/metrics", metrics.NewHandler(d.prom, d.store, d.log.Named("metrics")))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("cellwarden is Healthy.\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() {
			http.Error(w, "cellwarden is not ready.", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("cellwarden is Ready.\n"))
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "Only POST or PUT requests allowed.", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d.o.ShutdownTimeout+10*time.Second)
		defer cancel()
		if err := d.requestReload(ctx); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("configuration reloaded\n"))
	})
	// Go's profiles, as Prometheus and Alertmanager serve them, for
	// sizing a large fleet (docs/operations.md).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", d.serveStatus)
	return mux, nil
}

// lifecycleAPI is the API over the daemon's acknowledgement and
// maintenance stores; a change nudges the detector goroutine to read them
// again (without waiting when a nudge is pending already).
func (d *daemon) lifecycleAPI() *lifecycleAPI {
	webConfig := ""
	if d.o.Web != nil && d.o.Web.WebConfigFile != nil {
		webConfig = *d.o.Web.WebConfigFile
	}
	return &lifecycleAPI{acks: d.acks, maint: d.maint, alerts: d.recent, webConfig: webConfig, withoutAuth: d.o.LifecycleAPIWithoutAuth,
		log: d.log.Named("api"), now: time.Now, changed: func() {
			select {
			case d.lifecycleCh <- struct{}{}:
			default:
			}
		}}
}
