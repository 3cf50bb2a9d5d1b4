package main

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/httpstep"
)

// Input is the task input the template's input_schema describes.
type Input struct {
	Email            string `json:"email"`
	Name             string `json:"name"`
	Plan             string `json:"plan,omitempty"`
	MarketingConsent bool   `json:"marketing_consent"`
}

// Billing is setup_billing_profile's result.
type Billing struct {
	ProfileID    string  `json:"profile_id"`
	UserID       string  `json:"user_id"`
	Plan         string  `json:"plan"`
	MonthlyPrice float64 `json:"monthly_price"`
}

// Preferences is initialize_preferences' result.
type Preferences struct {
	UserID         string   `json:"user_id"`
	Newsletter     bool     `json:"newsletter"`
	ProductUpdates bool     `json:"product_updates"`
	Channels       []string `json:"channels"`
}

// Welcome is send_welcome_sequence's request and result.
type Welcome struct {
	UserID       string   `json:"user_id"`
	Email        string   `json:"email"`
	Name         string   `json:"name"`
	Plan         string   `json:"plan"`
	MonthlyPrice float64  `json:"monthly_price"`
	Channels     []string `json:"channels"`
	Sent         []string `json:"sent,omitempty"`
}

// handlers are the workflow's step handlers. Each calls its service
// through httpstep, so a 503 is retried and a 4xx fails for good.
type handlers struct {
	http *http.Client
	// base is where the services are: a step's service_url such as
	// "http://billing-service" is served at base + "/billing-service/".
	base string
}

// client returns the client for a step whose handler.initialization names
// service_url (or, when it names none, for service), sending the step's
// idempotency key so that a retried request is not applied twice.
func (h *handlers) client(step *tasker.StepContext, service string) (*httpstep.Client, error) {
	var init struct {
		ServiceURL string `json:"service_url"`
	}
	if err := step.Initialization(&init); err != nil {
		return nil, err
	}
	if init.ServiceURL != "" {
		u, err := url.Parse(init.ServiceURL)
		if err != nil {
			return nil, &tasker.StepError{Type: tasker.ErrorPermanent, Code: "BAD_SERVICE_URL", Message: err.Error()}
		}
		service = u.Host
	}
	return &httpstep.Client{HTTP: h.http, BaseURL: strings.TrimSuffix(h.base, "/") + "/" + service + "/",
		Header: http.Header{"Idempotency-Key": {step.IdempotencyKey()}}}, nil
}

func (h *handlers) createUserAccount(ctx context.Context, step *tasker.StepContext) (any, error) {
	var in Input
	if err := step.DecodeInput(&in); err != nil {
		return nil, err
	}
	in.Plan = cmp.Or(in.Plan, "free")
	return send[User](ctx, h, step, "user-service", http.MethodPost, "users", in)
}

func (h *handlers) setupBillingProfile(ctx context.Context, step *tasker.StepContext) (any, error) {
	var u User
	if err := step.DependencyResult("create_user_account", &u); err != nil {
		return nil, err
	}
	return send[Billing](ctx, h, step, "billing-service", http.MethodPost, "profiles",
		map[string]string{"user_id": u.ID, "plan": u.Plan})
}

func (h *handlers) initializePreferences(ctx context.Context, step *tasker.StepContext) (any, error) {
	var u User
	var in Input
	if err := cmp.Or(step.DependencyResult("create_user_account", &u), step.DecodeInput(&in)); err != nil {
		return nil, err
	}
	return send[Preferences](ctx, h, step, "preferences-service", http.MethodPost, "preferences",
		Preferences{UserID: u.ID, Newsletter: in.MarketingConsent})
}

func (h *handlers) sendWelcomeSequence(ctx context.Context, step *tasker.StepContext) (any, error) {
	var u User
	var b Billing
	var p Preferences
	err := cmp.Or(step.DependencyResult("create_user_account", &u),
		step.DependencyResult("setup_billing_profile", &b), step.DependencyResult("initialize_preferences", &p))
	if err != nil {
		return nil, err
	}
	return send[Welcome](ctx, h, step, "notification-service", http.MethodPost, "welcome",
		Welcome{UserID: u.ID, Email: u.Email, Name: u.Name, Plan: b.Plan, MonthlyPrice: b.MonthlyPrice, Channels: p.Channels})
}

func (h *handlers) updateUserStatus(ctx context.Context, step *tasker.StepContext) (any, error) {
	var u User
	if err := step.DependencyResult("create_user_account", &u); err != nil {
		return nil, err
	}
	// The template gives this step no service_url: it is the user service's.
	return send[User](ctx, h, step, "user-service", http.MethodPatch, "users/"+url.PathEscape(u.ID),
		map[string]string{"status": "active"})
}

// send calls the step's service with method, path and body through
// httpstep and returns the response, decoded as a T, as the step's result.
func send[T any](ctx context.Context, h *handlers, step *tasker.StepContext, service, method, path string, body any) (any, error) {
	c, err := h.client(step, service)
	if err != nil {
		return nil, err
	}
	var v T
	if err := c.SendJSON(ctx, method, path, body, &v); err != nil {
		return nil, err
	}
	return v, nil
}
