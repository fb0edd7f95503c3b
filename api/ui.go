package api

import (
	"embed"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// The status page: plain HTML, CSS and a little JavaScript, embedded in
// the binary (no build step, no framework). It reads the same JSON the API
// serves, with the API key the user types, which it keeps only in the tab
// (sessionStorage). The files themselves hold no data, so they need no key.

//go:embed ui/index.html ui/style.css ui/app.js
var uiFiles embed.FS

// uiTypes lists the page's files and their content types.
var uiTypes = map[string]string{
	"index.html": "text/html; charset=utf-8",
	"style.css":  "text/css; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
}

func (s *Server) uiRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/ui", auth: authNone, where: anyNode, handle: s.uiFile},
		{method: http.MethodGet, path: "/ui/*file", auth: authNone, where: anyNode, handle: s.uiFile},
	}
}

// uiFile serves one file of the page; /ui and /ui/ are the page itself.
func (s *Server) uiFile(w http.ResponseWriter, _ *http.Request, ps httprouter.Params) error {
	name := strings.TrimPrefix(ps.ByName("file"), "/")
	if name == "" {
		name = "index.html"
	}
	ctype, ok := uiTypes[name]
	if !ok {
		return newError(ErrNotFound, "no such file in the status page")
	}
	data, err := uiFiles.ReadFile("ui/" + name)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Only this node's own scripts, styles and API; no framing.
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}
