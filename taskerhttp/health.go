package taskerhttp

import (
	"net/http"
)

// Health is the answer of the health routes.
type Health struct {
	Status string `json:"status"` // "ok" or "unavailable"
	Live   bool   `json:"live"`
	Ready  *bool  `json:"ready,omitempty"` // absent from /health/live, which does not check
	Error  string `json:"error,omitempty"` // why it is not ready
}

// live answers 200 whenever the process serves requests.
func (h *Handler) live(w http.ResponseWriter, _ *http.Request, _ string) error {
	writeJSON(w, http.StatusOK, Health{Status: "ok", Live: true})
	return nil
}

// ready answers 200 when the engine is started and its store answers, 503
// otherwise; /health says the same with both probes.
func (h *Handler) ready(w http.ResponseWriter, r *http.Request, _ string) error {
	ready := true
	hl := Health{Status: "ok", Live: true, Ready: &ready}
	status := http.StatusOK
	if err := h.eng.Ready(r.Context()); err != nil {
		ready, hl.Status, hl.Error = false, "unavailable", err.Error()
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, hl)
	return nil
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request, p string) error {
	return h.ready(w, r, p)
}
