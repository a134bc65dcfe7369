package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/medgemma/medgemma/model"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series, in a registry of its own (so
// that several servers in one process, as in tests, do not collide).
type metrics struct {
	reg                          *prometheus.Registry
	requests                     *prometheus.CounterVec
	promptTokens, generated      prometheus.Counter
	imageEncodes, imageCacheHits prometheus.Counter
	ttft, tpot, duration         prometheus.Histogram
	handler                      http.Handler
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "medgemma_requests_total", Help: "HTTP requests by endpoint and status."}, []string{"endpoint", "status"})
	m.promptTokens = prometheus.NewCounter(prometheus.CounterOpts{Name: "medgemma_prompt_tokens_total", Help: "Prompt tokens of finished requests."})
	m.generated = prometheus.NewCounter(prometheus.CounterOpts{Name: "medgemma_generated_tokens_total", Help: "Tokens generated."})
	m.imageEncodes = prometheus.NewCounter(prometheus.CounterOpts{Name: "medgemma_image_encodes_total", Help: "Image blocks run through the vision tower."})
	m.imageCacheHits = prometheus.NewCounter(prometheus.CounterOpts{Name: "medgemma_image_cache_hits_total", Help: "Image blocks found in the cache of encoded images."})
	m.ttft = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "medgemma_time_to_first_token_seconds", Help: "From a request's arrival to its first generated token.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)})
	m.tpot = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "medgemma_time_per_output_token_seconds", Help: "Decoding time per generated token after the first.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "medgemma_request_duration_seconds", Help: "Model requests from arrival to the last byte.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 18)})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.requests, m.promptTokens, m.generated, m.imageEncodes, m.imageCacheHits, m.ttft, m.tpot, m.duration,
		gauge("medgemma_queue_depth", "Requests waiting for the model.", func() float64 {
			if _, sched, _, e := s.engine(); e == nil {
				return float64(sched.Queued())
			}
			return 0
		}),
		gauge("medgemma_running_sequences", "Sequences being processed.", func() float64 {
			if _, sched, _, e := s.engine(); e == nil {
				return float64(sched.Running())
			}
			return 0
		}),
		gauge("medgemma_kv_cache_bytes", "Memory of the KV caches: the scheduler's pool of blocks and any held outside it.", func() float64 {
			if m, sched := s.loaded(); m != nil {
				return float64(sched.Stats().Pool.Bytes + m.KVBytes())
			}
			return 0
		}),
		gauge("medgemma_image_cache_bytes", "Memory of the cache of encoded images.", func() float64 {
			if m, _, _, e := s.engine(); e == nil {
				return float64(m.ImageCacheBytes())
			}
			return 0
		}),
		gauge("medgemma_ready", "1 when the model is loaded and the server is not draining.", func() float64 {
			if _, _, _, e := s.engine(); e == nil {
				return 1
			}
			return 0
		}),
		schedulerCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

func (m *metrics) request(endpoint string, status int) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
}

// finished records a model request's prompt, images and times.
func (m *metrics) finished(prompt, encoded, cached int, ttft, took time.Duration) {
	m.promptTokens.Add(float64(prompt))
	m.imageEncodes.Add(float64(encoded))
	m.imageCacheHits.Add(float64(cached))
	if ttft > 0 {
		m.ttft.Observe(ttft.Seconds())
	}
	m.duration.Observe(took.Seconds())
}

// decoded records one choice's generated tokens and decoding time.
func (m *metrics) decoded(generated int, decode time.Duration) {
	m.generated.Add(float64(generated))
	if generated > 1 && decode > 0 {
		m.tpot.Observe(decode.Seconds() / float64(generated-1))
	}
}

// schedulerCollector exports the scheduler's counters and its KV pool's
// blocks, read when scraped.
type schedulerCollector struct{ s *Server }

var (
	kvBlocksDesc = prometheus.NewDesc("medgemma_kv_blocks", "KV cache blocks by part (full-attention or sliding-window layers) and state "+
		"(in_use by running sequences, cached for prefix reuse, free).", []string{"part", "state"}, nil)
	kvBlockSizeDesc    = prometheus.NewDesc("medgemma_kv_block_tokens", "Positions per KV cache block.", nil, nil)
	kvTokenBytesDesc   = prometheus.NewDesc("medgemma_kv_bytes_per_token", "KV cache memory of one position (every layer's key and value).", nil, nil)
	prefixHitsDesc     = prometheus.NewDesc("medgemma_prefix_cache_hit_tokens_total", "Prompt tokens found in the KV cache instead of prefilled.", nil, nil)
	preemptionsDesc    = prometheus.NewDesc("medgemma_preemptions_total", "Running sequences preempted (their blocks freed, recomputed later) when the KV cache ran out.", nil, nil)
	schedulerStepsDesc = prometheus.NewDesc("medgemma_scheduler_steps_total", "Forward passes of the batch scheduler.", nil, nil)
)

func (c schedulerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{kvBlocksDesc, kvBlockSizeDesc, kvTokenBytesDesc, prefixHitsDesc, preemptionsDesc, schedulerStepsDesc} {
		ch <- d
	}
}

func (c schedulerCollector) Collect(ch chan<- prometheus.Metric) {
	_, sched := c.s.loaded()
	if sched == nil {
		return
	}
	st := sched.Stats()
	for _, p := range []struct {
		part string
		ps   model.PartStats
	}{{"full", st.Pool.Full}, {"sliding", st.Pool.Sliding}} {
		if p.ps.Max == 0 {
			continue // the model has no such layers
		}
		ch <- prometheus.MustNewConstMetric(kvBlocksDesc, prometheus.GaugeValue, float64(p.ps.InUse), p.part, "in_use")
		ch <- prometheus.MustNewConstMetric(kvBlocksDesc, prometheus.GaugeValue, float64(p.ps.Cached), p.part, "cached")
		ch <- prometheus.MustNewConstMetric(kvBlocksDesc, prometheus.GaugeValue, float64(p.ps.Free), p.part, "free")
	}
	ch <- prometheus.MustNewConstMetric(kvBlockSizeDesc, prometheus.GaugeValue, float64(sched.Options().BlockSize))
	ch <- prometheus.MustNewConstMetric(kvTokenBytesDesc, prometheus.GaugeValue, float64(sched.BytesPerToken()))
	ch <- prometheus.MustNewConstMetric(prefixHitsDesc, prometheus.CounterValue, float64(st.PrefixHitTokens))
	ch <- prometheus.MustNewConstMetric(preemptionsDesc, prometheus.CounterValue, float64(st.Preemptions))
	ch <- prometheus.MustNewConstMetric(schedulerStepsDesc, prometheus.CounterValue, float64(st.Steps))
}
