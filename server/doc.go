// Package server is medgemma's OpenAI-compatible HTTP API: what vLLM,
// llama.cpp's server and ollama speak, so that an application moves to
// MedGemma by changing one base URL.
//
//	POST /v1/chat/completions   messages with text and images (data: URIs,
//	                            DICOM included), streamed as Server-Sent Events
//	POST /v1/completions        raw prompts, echo with prompt logprobs
//	GET  /v1/models             the one model served
//	GET  /health, /ready        alive; loaded and not draining
//	GET  /metrics               Prometheus text format
//
// The package is HTTP only: request and response types, validation, SSE,
// authentication, limits, metrics and the mapping of errors to OpenAI's
// shape and statuses. What runs, and when, is medgemma.Scheduler's; the
// model work is medgemma.Model's. A request cannot read a local file (images
// come as data: URIs, or from the hosts the server was started with), and a
// malformed one is a 4xx naming what is wrong.
package server
