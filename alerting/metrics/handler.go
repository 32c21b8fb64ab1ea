package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"
)

// NewHandler serves the Prometheus text exposition (text/plain;
// version=0.0.4) of g followed by the series of s, gzipped when the
// scraper prefers it. Every scraper gets text, whatever format it asks for,
// and a Content-Type that says so (Prometheus falls back to text). g must
// not hold the Collector of s (NewRegistry(nil, …) makes such a registry);
// s may be nil.
//
// As promhttp with ContinueOnError: an error of g is logged and what it
// gathered is served (a 500 when nothing is left), an error writing the
// response is logged, and ?name[]=… selects families. The Store's series
// are written from its tables, a few hundred at a time under its lock,
// into a pooled buffer, without a client_golang metric per series; gzip
// (at its best speed: the text is 130 MiB at 100 k cells) runs in a
// goroutine of its own while the next buffer is rendered.
func NewHandler(g prometheus.Gatherer, s *Store, log *zap.Logger) http.Handler {
	return &handler{g: g, s: s, log: log, pools: newPools()}
}

type handler struct {
	g     prometheus.Gatherer
	s     *Store
	log   *zap.Logger
	pools *pools
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mfs, err := h.g.Gather()
	if err != nil {
		h.log.Error("error gathering metrics", zap.Error(err))
		if len(mfs) == 0 && h.s == nil {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	var want func(string) bool
	if names := r.URL.Query()["name[]"]; len(names) > 0 {
		want = func(name string) bool { return slices.Contains(names, name) }
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.FmtText)
	header := w.Header()
	header.Set("Content-Type", string(format))
	header.Add("Vary", "Accept")
	header.Add("Vary", "Accept-Encoding")
	compress := acceptsGzip(r)
	if compress {
		header.Set("Content-Encoding", "gzip")
	}
	tw := newTextWriter(w, compress, h.pools)
	enc := expfmt.NewEncoder(tw, format)
	err = nil
	for _, mf := range mfs {
		// A family of the Store's in g would make the text invalid.
		if (want != nil && !want(mf.GetName())) || (h.s != nil && cat.byName[mf.GetName()] != nil) {
			continue
		}
		if err = enc.Encode(mf); err == nil {
			err = tw.unlocked()
		}
		if err != nil {
			break
		}
	}
	if err == nil && h.s != nil {
		err = h.s.expose(tw, want)
	}
	if cerr := tw.close(); err == nil {
		err = cerr
	}
	if err != nil {
		h.log.Error("error encoding and sending metrics", zap.Error(err))
	}
}

// acceptsGzip reports whether the request's Accept-Encoding prefers gzip
// to identity, as promhttp decides it (the first of the best).
func acceptsGzip(r *http.Request) bool {
	gz, identity := -1.0, -1.0
	for _, h := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(h, ",") {
			name, params, _ := strings.Cut(part, ";")
			q := 1.0
			if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip":
				gz = max(gz, q)
			case "identity":
				identity = max(identity, q)
			case "*":
				gz, identity = max(gz, q), max(identity, q)
			}
		}
	}
	return gz > 0 && gz > identity
}
