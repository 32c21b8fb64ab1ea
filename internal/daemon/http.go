package daemon

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// handler serves /metrics, the lifecycle endpoints and the status page.
// TLS and basic auth apply to all of them (the web configuration file).
func (d *daemon) handler() (http.Handler, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.prom, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(d.log.Named("promhttp")), ErrorHandling: promhttp.ContinueOnError}))
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
	mux.HandleFunc("/", d.serveStatus)
	return mux, nil
}
