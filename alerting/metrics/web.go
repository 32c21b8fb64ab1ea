package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// DefaultListenAddress is where /metrics is served unless
// --web.listen-address says otherwise.
const DefaultListenAddress = ":9561"

// AddFlags adds --web.listen-address, --web.config.file and (on Linux)
// --web.systemd-socket to a kingpin command, as every Prometheus exporter
// has them. The web configuration file enables TLS and basic auth
// (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md).
func AddFlags(cmd *kingpin.CmdClause) *web.FlagConfig {
	return kingpinflag.AddFlags(cmd, DefaultListenAddress)
}

// Handler serves /metrics from g (with NewHandler), /-/healthy, and a
// landing page at /.
func Handler(g prometheus.Gatherer, log *zap.Logger) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", NewHandler(g, nil, log.Named("metrics")))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("OK\n")) })
	landing, err := web.NewLandingPage(web.LandingConfig{Name: "cellwarden",
		Description: "Lithium-ion UPS battery monitoring", Links: []web.LandingLinks{{Address: "/metrics", Text: "Metrics"}}})
	if err != nil {
		return nil, err
	}
	mux.Handle("/", landing)
	return mux, nil
}

// Serve serves h on the addresses of flags, with the TLS and basic auth of
// its web configuration file, until ctx ends; then it shuts down within
// 5 s. It returns nil after a shutdown, or the error that stopped it.
func Serve(ctx context.Context, flags *web.FlagConfig, h http.Handler, log *zap.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return run(ctx, srv, log, func(l *slog.Logger) error { return web.ListenAndServe(srv, flags, l) })
}

// ServeListener is Serve on a listener the caller opened (tests, socket
// activation).
func ServeListener(ctx context.Context, l net.Listener, flags *web.FlagConfig, h http.Handler, log *zap.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return run(ctx, srv, log, func(sl *slog.Logger) error { return web.Serve(l, srv, flags, sl) })
}

func run(ctx context.Context, srv *http.Server, log *zap.Logger, serve func(*slog.Logger) error) error {
	done := make(chan error, 1)
	go func() { done <- serve(slog.New(zapslog.NewHandler(log.Named("web").Core()))) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
