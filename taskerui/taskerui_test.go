package taskerui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gotasker/tasker/taskerui"
)

// TestMain checks that no test leaves a goroutine behind: the engine's, the
// test servers' and chromedp's are all stopped and waited for.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// get serves one request to h and returns the response and its body.
func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, "/", nil)
	req.URL.Path = path // "" too, as http.StripPrefix("/ui/", h) passes on for "/ui/"
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandlerServesThePageWithItsSettings(t *testing.T) {
	h, err := taskerui.Handler(taskerui.Options{API: "/v1/", Operator: true, Refresh: 250 * time.Millisecond, Title: `a "b" <c>`})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "", "/index.html"} {
		resp, body := get(t, h, "GET", path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %q = %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{`data-api="/v1"`, `data-operator="true"`, `data-refresh-ms="250"`,
			`<title>a &#34;b&#34; &lt;c&gt;</title>`, `src="app.js"`, `href="style.css"`} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %q: the page lacks %s:\n%s", path, want, body)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %q: Content-Security-Policy %q: want scripts and fetches from this origin only", path, csp)
		}
	}
}

func TestHandlerDefaultsAreReadOnlyOnTheGuidesPrefix(t *testing.T) {
	h, err := taskerui.Handler(taskerui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, h, "GET", "/")
	for _, want := range []string{`data-api="/api/v1"`, `data-operator="false"`, `data-refresh-ms="1000"`, "<title>tasker</title>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

func TestHandlerServesItsAssetsAndNothingElse(t *testing.T) {
	h, err := taskerui.Handler(taskerui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/app.js": "text/javascript; charset=utf-8", "/style.css": "text/css; charset=utf-8"} {
		resp, body := get(t, h, "GET", path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != want || len(body) < 1000 ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s = %d %q (%d bytes), want 200 %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), want)
		}
		if head, hbody := get(t, h, "HEAD", path); head.StatusCode != 200 || hbody != "" || head.ContentLength != int64(len(body)) {
			t.Errorf("HEAD %s = %d, %d bytes, Content-Length %d", path, head.StatusCode, len(hbody), head.ContentLength)
		}
	}
	for _, path := range []string{"/assets/app.js", "/index.htm", "/x/app.js", "/../go.mod"} {
		if resp, _ := get(t, h, "GET", path); resp.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	resp, _ := get(t, h, "POST", "/")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q; want 405, GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestHandlerRefusesBadOptions(t *testing.T) {
	for _, o := range []taskerui.Options{{API: "api/v1"}, {API: "http://elsewhere/api"}, {API: "//elsewhere/api"},
		{Refresh: time.Millisecond}, {Refresh: -time.Second}} {
		if _, err := taskerui.Handler(o); err == nil {
			t.Errorf("Handler(%+v) = nil error, want one", o)
		}
	}
}

// TestPageScriptHasNoExternalReference keeps the page offline: nothing it
// loads names another origin.
func TestPageScriptHasNoExternalReference(t *testing.T) {
	h, err := taskerui.Handler(taskerui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		_, body := get(t, h, "GET", path)
		body = strings.ReplaceAll(body, `"http://www.w3.org/2000/svg"`, "") // a namespace name, never fetched
		for _, bad := range []string{"https:", "http:", "//cdn", "@import"} {
			if i := strings.Index(body, bad); i >= 0 {
				t.Errorf("%s names %q: %q", path, bad, body[max(0, i-40):min(len(body), i+40)])
			}
		}
	}
}
