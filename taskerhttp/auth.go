package taskerhttp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

type keyCtx struct{}

// authenticate checks r's key against scope (none needed for ""), and
// returns r carrying the key it presented.
func (h *Handler) authenticate(r *http.Request, scope Scope) (*http.Request, error) {
	if len(h.keys) == 0 || scope == "" {
		return r, nil
	}
	secret := r.Header.Get("X-API-Key")
	if auth := r.Header.Get("Authorization"); secret == "" && auth != "" {
		var ok bool
		if secret, ok = strings.CutPrefix(auth, "Bearer "); !ok {
			return r, unauthorized("Authorization: want \"Bearer TOKEN\"")
		}
	}
	if secret == "" {
		return r, unauthorized("this route needs an API key: X-API-Key or Authorization: Bearer")
	}
	k := h.match(secret)
	if k == nil {
		return r, unauthorized("the API key is not valid")
	}
	if scope == ScopeWrite && k.Scope != ScopeWrite {
		return r, &apiError{status: http.StatusForbidden, code: "forbidden",
			message: "key " + k.Name + " has scope read; this route needs write"}
	}
	return r.WithContext(context.WithValue(r.Context(), keyCtx{}, k)), nil
}

// match returns the key whose secret is secret, comparing every key in
// constant time (hashes first, so lengths leak nothing either).
func (h *Handler) match(secret string) *Key {
	got := sha256.Sum256([]byte(secret))
	var found *Key
	for i := range h.keys {
		want := sha256.Sum256([]byte(h.keys[i].Secret))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			found = &h.keys[i]
		}
	}
	return found
}

func unauthorized(msg string) error {
	return &apiError{status: http.StatusUnauthorized, code: "unauthorized", message: msg,
		header: map[string]string{"WWW-Authenticate": `Bearer realm="tasker"`}}
}

// actor returns by, or the name of the key r presented when by is "".
func actor(r *http.Request, by string) string {
	if by != "" {
		return by
	}
	if k, ok := r.Context().Value(keyCtx{}).(*Key); ok {
		return "key:" + k.Name
	}
	return ""
}
