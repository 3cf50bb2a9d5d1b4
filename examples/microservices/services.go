package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// User is the user service's record of a user.
type User struct {
	ID     string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	Plan   string `json:"plan"`
	Status string `json:"status"`
}

// price returns the billing service's monthly price of plan.
func price(plan string) (float64, bool) {
	switch plan {
	case "free":
		return 0, true
	case "pro":
		return 29, true
	case "enterprise":
		return 99, true
	}
	return 0, false
}

// services simulates the four services the workflow calls, under
// /user-service/, /billing-service/, /preferences-service/ and
// /notification-service/.
type services struct {
	mux   *http.ServeMux
	mu    sync.Mutex
	users map[string]*User // by ID
	flaky map[string]int   // service name → 503s still to answer
}

// newServices returns the simulated services; the one named flaky, if
// any, answers its first request with 503 Service Unavailable.
func newServices(flaky string) *services {
	s := &services{mux: http.NewServeMux(), users: map[string]*User{}, flaky: map[string]int{flaky: 1}}
	s.mux.HandleFunc("POST /user-service/users", s.createUser)
	s.mux.HandleFunc("PATCH /user-service/users/{id}", s.updateUser)
	s.mux.HandleFunc("POST /billing-service/profiles", s.createProfile)
	s.mux.HandleFunc("POST /preferences-service/preferences", s.setPreferences)
	s.mux.HandleFunc("POST /notification-service/welcome", s.sendWelcome)
	return s
}

// ServeHTTP serves a request, or fails it once if its service is flaky.
func (s *services) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	service, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	s.mu.Lock()
	fail := s.flaky[service] > 0
	s.flaky[service]--
	s.mu.Unlock()
	if fail {
		http.Error(w, `{"error":"`+service+` is overloaded"}`, http.StatusServiceUnavailable)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// decode decodes r's JSON body into v, answering 400 if it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		http.Error(w, `{"error":"bad request body"}`, http.StatusBadRequest)
		return false
	}
	return true
}

// reply writes v as a JSON response with status.
func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// user returns the user with id, answering 404 if there is none. The
// caller holds s.mu.
func (s *services) user(w http.ResponseWriter, id string) *User {
	u := s.users[id]
	if u == nil {
		http.Error(w, `{"error":"no user `+id+`"}`, http.StatusNotFound)
	}
	return u
}

func (s *services) createUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if !decode(w, r, &u) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, other := range s.users {
		if other.Email == u.Email {
			http.Error(w, `{"error":"email already registered"}`, http.StatusConflict)
			return
		}
	}
	u.ID, u.Status = fmt.Sprintf("usr_%d", len(s.users)+1), "pending"
	s.users[u.ID] = &u
	reply(w, http.StatusCreated, u)
}

func (s *services) updateUser(w http.ResponseWriter, r *http.Request) {
	var change struct{ Status string }
	if !decode(w, r, &change) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.user(w, r.PathValue("id")); u != nil {
		u.Status = change.Status
		reply(w, http.StatusOK, u)
	}
}

func (s *services) createProfile(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID string `json:"user_id"`
		Plan   string `json:"plan"`
	}
	if !decode(w, r, &req) {
		return
	}
	price, ok := price(req.Plan)
	if !ok {
		http.Error(w, `{"error":"unknown plan"}`, http.StatusUnprocessableEntity)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.user(w, req.UserID) != nil {
		reply(w, http.StatusCreated, Billing{ProfileID: "bill_" + req.UserID, UserID: req.UserID, Plan: req.Plan, MonthlyPrice: price})
	}
}

func (s *services) setPreferences(w http.ResponseWriter, r *http.Request) {
	var p Preferences
	if !decode(w, r, &p) {
		return
	}
	p.ProductUpdates = true
	p.Channels = []string{"email"}
	if p.Newsletter {
		p.Channels = append(p.Channels, "newsletter")
	}
	reply(w, http.StatusCreated, p)
}

func (s *services) sendWelcome(w http.ResponseWriter, r *http.Request) {
	var req Welcome
	if !decode(w, r, &req) {
		return
	}
	req.Sent = []string{"Welcome, " + req.Name + "!",
		fmt.Sprintf("Your %s plan: %.2f a month", req.Plan, req.MonthlyPrice)}
	for _, c := range req.Channels {
		if c == "newsletter" {
			req.Sent = append(req.Sent, "Your first newsletter")
		}
	}
	reply(w, http.StatusOK, req)
}
