package threat

import (
	"slices"
	"strings"
	"testing"
)

func TestUserAgentFamily(t *testing.T) {
	for ua, want := range map[string]string{
		"":                       UAEmpty,
		"   ":                    UAEmpty,
		"curl/8.5.0":             UACurl,
		"CURL/7.1":               UACurl,
		"Wget/1.21":              UAWget,
		"python-requests/2.31.0": UAPythonRequests,
		"Python-urllib/3.12":     UAPython,
		"python-httpx/0.27":      UAPython,
		"Go-http-client/1.1":     UAGo,
		"Go-http-client/2.0":     UAGo,
		"Microsoft-BotFramework/3.1 (BotBuilder JS/4.23.0; Node.js,Version=v20)": UABotSDK,
		"agents-sdk-js/1.0 Microsoft.Agents":                                     UABotSDK,
		"node-fetch/1.0":                                                         UANode,
		"axios/1.7.2":                                                            UANode,
		"okhttp/4.12.0":                                                          UAJava,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0": UAEdge,
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                         UAChrome,
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0":                                                        UAFirefox,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15":            UASafari,
		"Mozilla/5.0 (compatible; MSIE 10.0)": UABrowser,
		"sqlmap/1.8":                          UAOther,
		strings.Repeat("x", 100000):           UAOther,
	} {
		got := UserAgentFamily(ua)
		if got != want {
			t.Errorf("UserAgentFamily(%.60q) = %q, want %q", ua, got, want)
		}
		if !slices.Contains(UserAgentFamilies, got) {
			t.Errorf("UserAgentFamily(%.60q) = %q, not in UserAgentFamilies", ua, got)
		}
	}
}
