package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Headers of a notification request.
const (
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of the
	// body under the receiver's secret.
	HeaderSignature = "X-Cellwarden-Signature"
	// HeaderIdempotencyKey is the same on every attempt of one
	// notification, across restarts, and unique to it.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Reasons of failed requests and notifications (metric labels).
const (
	reasonClientError = "client_error" // 4xx other than 429: terminal
	reasonRateLimited = "rate_limited" // 429: retried
	reasonServerError = "server_error" // 5xx: retried
	reasonNetwork     = "network"      // no answer (refused, reset, timeout): retried
	reasonOther       = "other"        // 1xx, 3xx: terminal
	reasonOutboxFull  = "outbox_full"  // dropped from a full outbox
)

// requestReasons are the reasons of failed requests, for pre-initialised
// counters.
var requestReasons = []string{reasonClientError, reasonRateLimited, reasonServerError, reasonNetwork, reasonOther}

// Sign returns the value of HeaderSignature for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// outcome is the result of one delivery attempt.
type outcome struct {
	ok         bool
	retry      bool
	reason     string
	retryAfter time.Duration
	err        error
}

// send delivers r's queue in order until ctx ends.
func (n *Notifier) send(ctx context.Context, r *receiver) {
	log := n.log.With(zap.String("receiver", r.name))
	var lastErr string
	for {
		e, ok, err := n.ob.Oldest(r.name)
		if err != nil {
			if err.Error() != lastErr {
				log.Error("Cannot read the outbox", zap.Error(err))
				lastErr = err.Error()
			}
			if sleep(ctx, time.Second) != nil {
				return
			}
			continue
		}
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			}
			continue
		}
		var rec record
		if err := json.Unmarshal(e.Data, &rec); err != nil {
			log.Error("Dropping an unreadable notification from the outbox", zap.Uint64("seq", e.Seq), zap.Error(err))
		} else if !n.deliver(ctx, r, &rec, n.ob.Key(e.Seq), log, &lastErr) {
			return
		}
		if err := n.ob.Ack(r.name, e.Seq); err != nil {
			n.m.outboxErrors.Inc()
			log.Error("Cannot remove a delivered notification from the outbox; it will be sent again", zap.Error(err))
			if sleep(ctx, time.Second) != nil {
				return
			}
		}
	}
}

// deliver sends one notification until it is delivered or refused; it
// returns false when ctx ended first. lastErr holds the last error logged,
// so that a receiver that stays down is logged once per kind of error.
func (n *Notifier) deliver(ctx context.Context, r *receiver, rec *record, key string, log *zap.Logger, lastErr *string) bool {
	for attempt := 0; ; attempt++ {
		o := n.attempt(ctx, r, rec, key)
		switch {
		case ctx.Err() != nil:
			return false
		case o.ok:
			n.m.sent.WithLabelValues(r.name).Inc()
			n.m.latency.WithLabelValues(r.name).Observe(time.Since(rec.Created).Seconds())
			if *lastErr != "" {
				log.Info("Receiver delivers again", zap.Int("attempts", attempt+1))
				*lastErr = ""
			}
			return true
		case !o.retry:
			n.m.failed.WithLabelValues(r.name, o.reason).Inc()
			log.Error("Receiver refused a notification; dropped", zap.String("group", rec.GroupKey), zap.Error(o.err))
			*lastErr = ""
			return true
		}
		if msg := o.err.Error(); msg != *lastErr {
			log.Warn("Notification failed; retrying with backoff", zap.String("reason", o.reason), zap.Error(o.err))
			*lastErr = msg
		}
		if sleep(ctx, max(o.retryAfter, backoff(r.cfg.Retry, attempt))) != nil {
			return false
		}
	}
}

// backoff returns the wait after the attempt-th failure (0-based): drawn
// from [d/2, d], d = min(min·2^attempt, max).
func backoff(c RetryConfig, attempt int) time.Duration {
	d := time.Duration(c.MaxBackoff)
	if attempt < 30 {
		d = min(time.Duration(c.MinBackoff)<<attempt, d)
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// attempt makes one delivery attempt of rec to r: one request for a
// webhook; for Alertmanager, one to every member of the cluster, as
// Alertmanager asks of its clients (members share silences and the
// notification log, not alerts). It is delivered when a member took it: a
// member that was down gets the firing alerts again at the next
// resend_interval, and holds a resolved one at most until its endsAt.
func (n *Notifier) attempt(ctx context.Context, r *receiver, rec *record, key string) outcome {
	var body []byte
	var err error
	if r.am {
		body, err = alertmanagerBody(rec, time.Now(), 4*r.repeat, n.cfg.ExternalURL)
	} else {
		body, err = webhookBody(rec, n.cfg.ExternalURL)
	}
	if err != nil {
		return outcome{reason: reasonOther, err: err}
	}
	var res outcome
	for i, u := range r.urls {
		if r.am {
			u = strings.TrimSuffix(u, "/") + "/api/v2/alerts"
		}
		o := n.post(ctx, r, u, body, key)
		switch {
		case ctx.Err() != nil:
			return o
		case o.ok:
			res = o
		case len(r.urls) > 1:
			n.log.Warn("An Alertmanager did not take the alerts", zap.String("receiver", r.name), zap.String("url", Redact(u)),
				zap.String("reason", o.reason), zap.Error(o.err))
		}
		// Any member taking it decides; else the first retryable
		// failure, else the first terminal one.
		if i == 0 || (!res.ok && o.retry && !res.retry) {
			res = o
		}
	}
	return res
}

// post makes one request and classifies its answer. Errors name the URL
// redacted.
func (n *Notifier) post(ctx context.Context, r *receiver, u string, body []byte, key string) outcome {
	n.m.requests.WithLabelValues(r.name).Inc()
	o := n.do(ctx, r, u, body, key)
	if !o.ok && ctx.Err() == nil {
		n.m.requestsFailed.WithLabelValues(r.name, o.reason).Inc()
	}
	return o
}

func (n *Notifier) do(ctx context.Context, r *receiver, u string, body []byte, key string) outcome {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(r.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return outcome{reason: reasonOther, err: fmt.Errorf("POST %s: %w", Redact(u), redactErr(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.userAgent)
	req.Header.Set(HeaderIdempotencyKey, key)
	if len(r.secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(r.secret, body))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return outcome{retry: true, reason: reasonNetwork, err: fmt.Errorf("POST %s: %w", Redact(u), redactErr(err))}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	err = fmt.Errorf("POST %s: %s", Redact(u), resp.Status)
	switch {
	case code >= 200 && code < 300:
		return outcome{ok: true}
	case code == http.StatusTooManyRequests:
		return outcome{retry: true, reason: reasonRateLimited, err: err, retryAfter: retryAfter(resp.Header.Get("Retry-After"), r.cfg.Retry)}
	case code >= 500:
		return outcome{retry: true, reason: reasonServerError, err: err}
	case code >= 400:
		return outcome{reason: reasonClientError, err: err}
	}
	return outcome{reason: reasonOther, err: err}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date), capped
// at the maximum backoff.
func retryAfter(h string, c RetryConfig) time.Duration {
	var d time.Duration
	if s, err := strconv.Atoi(h); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), time.Duration(c.MaxBackoff))
}

// redactErr strips the URL from a *url.Error, keeping what went wrong.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
