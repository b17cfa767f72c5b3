package egress

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopHeaders are the hop-by-hop fields (RFC 9110 §7.6.1) and the proxy's own
// fields, which end at the egress proxy. Proxy-Authorization is for this
// proxy, never for the destination.
var hopHeaders = [...]string{
	"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Transfer-Encoding",
}

// removeHopByHop deletes the hop-by-hop fields, including those a
// Connection field names (RFC 9110 §7.6.1: a proxy MUST remove them before
// forwarding). A request's protocol upgrade (WebSocket) keeps its
// Connection: upgrade and Upgrade fields; "Te: trailers" is kept, as
// httputil.ReverseProxy does.
func removeHopByHop(h http.Header, request bool) {
	upgrade := request && h.Get("Upgrade") != "" && connectionHas(h, "upgrade")
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			tok = textproto.TrimString(tok)
			if tok != "" && (!upgrade || !strings.EqualFold(tok, "upgrade")) {
				h.Del(tok)
			}
		}
	}
	te := request && h.Get("Te") != "" && wantsTrailers(h["Te"])
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if te {
		h.Set("Te", "trailers")
	}
	if !upgrade {
		delete(h, "Connection")
		delete(h, "Upgrade")
	}
}

// connectionHas reports whether a Connection field lists token.
func connectionHas(h http.Header, token string) bool {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), token) {
				return true
			}
		}
	}
	return false
}

// wantsTrailers reports whether a Te field asks for trailers.
func wantsTrailers(vs []string) bool {
	for _, v := range vs {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), "trailers") {
				return true
			}
		}
	}
	return false
}

// isEventStream reports whether a response is Server-Sent Events, a stream
// exempt from the request timeout.
func isEventStream(h http.Header) bool {
	mt, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	return strings.EqualFold(textproto.TrimString(mt), "text/event-stream")
}
