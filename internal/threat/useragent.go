package threat

import "strings"

// UserAgent families: a small fixed set, so that an attacker writing any
// User-Agent it likes cannot grow the counts' keys.
const (
	UAEmpty          = "empty"
	UACurl           = "curl"
	UAWget           = "wget"
	UAPythonRequests = "python-requests"
	UAPython         = "python-other"
	UAGo             = "go-http-client"
	UANode           = "node"
	UAJava           = "java"
	UABotSDK         = "bot-sdk"
	UAEdge           = "browser-edge"
	UAChrome         = "browser-chrome"
	UAFirefox        = "browser-firefox"
	UASafari         = "browser-safari"
	UABrowser        = "browser-other"
	UAOther          = "other"
)

// UserAgentFamilies lists every family UserAgentFamily answers.
var UserAgentFamilies = []string{UAEmpty, UACurl, UAWget, UAPythonRequests, UAPython, UAGo, UANode, UAJava, UABotSDK,
	UAEdge, UAChrome, UAFirefox, UASafari, UABrowser, UAOther}

// UserAgentFamily classifies a User-Agent header into one of
// UserAgentFamilies. Only the first 512 bytes are looked at.
func UserAgentFamily(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return UAEmpty
	}
	if len(ua) > 512 {
		ua = ua[:512]
	}
	l := strings.ToLower(ua)
	has := func(s string) bool { return strings.Contains(l, s) }
	switch {
	case strings.HasPrefix(l, "curl/"):
		return UACurl
	case strings.HasPrefix(l, "wget/"):
		return UAWget
	case strings.HasPrefix(l, "python-requests/"):
		return UAPythonRequests
	case strings.HasPrefix(l, "python-"), has("aiohttp/"), strings.HasPrefix(l, "python/"), has("httpx/"):
		return UAPython
	case strings.HasPrefix(l, "go-http-client/"), strings.HasPrefix(l, "go "):
		return UAGo
	case has("botbuilder"), has("microsoft-botframework"), has("microsoft.agents"), has("agents-sdk"), has("agents-hosting"), has("botframework-connector"):
		return UABotSDK
	case strings.HasPrefix(l, "node-fetch"), strings.HasPrefix(l, "axios/"), strings.HasPrefix(l, "undici"), strings.HasPrefix(l, "node"):
		return UANode
	case strings.HasPrefix(l, "java/"), strings.HasPrefix(l, "apache-httpclient/"), strings.HasPrefix(l, "okhttp/"):
		return UAJava
	case !strings.HasPrefix(l, "mozilla/"):
		return UAOther
	case has(" edg/"), has(" edge/"), has(" edga/"), has(" edgios/"):
		return UAEdge
	case has(" firefox/"), has(" fxios/"):
		return UAFirefox
	case has(" chrome/"), has(" crios/"), has(" chromium/"):
		return UAChrome
	case has(" safari/") && has(" version/"):
		return UASafari
	default:
		return UABrowser
	}
}
