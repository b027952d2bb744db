package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is a rate limit written "N/unit burst B" (unit s, m or h), e.g.
// "120/m burst 60": at most B events at once, refilled at N per unit.
// "burst B" may be left out (B = N). "off" (or "0") disables the limit.
type Rate string

// Off is the disabled rate.
const Off Rate = "off"

// Parse returns events per second and burst; off gives 0, 0.
func (r Rate) Parse() (perSecond float64, burst int, err error) {
	s := strings.ToLower(strings.TrimSpace(string(r)))
	if s == "off" || s == "0" {
		return 0, 0, nil
	}
	head, tail, hasBurst := strings.Cut(s, "burst")
	num, unit, ok := strings.Cut(strings.TrimSpace(head), "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a rate such as \"120/m burst 60\" (or \"off\")", string(r))
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 1 || n > 1_000_000 {
		return 0, 0, fmt.Errorf("%q: the count must be a whole number in 1..1000000", string(r))
	}
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return 0, 0, fmt.Errorf("%q: the unit must be s, m or h", string(r))
	}
	burst = n
	if hasBurst {
		burst, err = strconv.Atoi(strings.TrimSpace(tail))
		if err != nil || burst < 1 || burst > 1_000_000 {
			return 0, 0, fmt.Errorf("%q: burst must be a whole number in 1..1000000", string(r))
		}
	}
	return float64(n) / per.Seconds(), burst, nil
}

// SiteScoped is a route limited per client address and per site.
type SiteScoped struct {
	Address Rate `yaml:"address"`
	Site    Rate `yaml:"site"`
}

// ConversationScoped is a route limited per client address and per
// conversation.
type ConversationScoped struct {
	Address      Rate `yaml:"address"`
	Conversation Rate `yaml:"conversation"`
}

// Limits are the Direct Line rate limits (token buckets, in memory per
// process). Per-address limits count every client behind one address
// (a corporate NAT) together, so they are generous; per-conversation
// limits are sized for a person with several tabs open.
type Limits struct {
	Generate SiteScoped         `yaml:"generate"` // POST /tokens/generate
	Refresh  ConversationScoped `yaml:"refresh"`  // POST /tokens/refresh
	Start    SiteScoped         `yaml:"start"`    // POST /conversations
	Post     ConversationScoped `yaml:"post"`     // POST /conversations/{id}/activities
	Upload   ConversationScoped `yaml:"upload"`   // POST /conversations/{id}/upload
	Stream   ConversationScoped `yaml:"stream"`   // GET /conversations/{id}/stream (WebSocket connects)
	// Reconnect is GET /conversations/{id}: a fresh stream URL and token,
	// what DirectLineJS asks before every socket it opens again.
	Reconnect ConversationScoped `yaml:"reconnect"`
	History   ConversationScoped `yaml:"history"` // GET /conversations/{id}/activities
}

// DefaultLimits are the shipped limits (see the README's table).
func DefaultLimits() Limits {
	return Limits{
		Generate: SiteScoped{Address: "6000/m burst 1000", Site: "6000/m burst 1000"},
		Refresh:  ConversationScoped{Address: "3000/m burst 1000", Conversation: "10/m burst 10"},
		Start:    SiteScoped{Address: "1200/m burst 600", Site: "6000/m burst 1000"},
		Post:     ConversationScoped{Address: "3000/m burst 1000", Conversation: "120/m burst 60"},
		Upload:   ConversationScoped{Address: "600/m burst 200", Conversation: "20/m burst 20"},
		Stream:   ConversationScoped{Address: "3000/m burst 1000", Conversation: "60/m burst 30"},
		// One per stream connect (DirectLineJS asks before each socket).
		Reconnect: ConversationScoped{Address: "3000/m burst 1000", Conversation: "60/m burst 30"},
		History:   ConversationScoped{Address: "6000/m burst 2000", Conversation: "600/m burst 120"},
	}
}

// AllOff disables every limit (the benchmark's gateway measures the
// gateway, not its limits).
func AllOff() Limits {
	return Limits{
		Generate: SiteScoped{Off, Off}, Start: SiteScoped{Off, Off},
		Refresh: ConversationScoped{Off, Off}, Post: ConversationScoped{Off, Off}, Upload: ConversationScoped{Off, Off},
		Stream: ConversationScoped{Off, Off}, Reconnect: ConversationScoped{Off, Off}, History: ConversationScoped{Off, Off},
	}
}

// field is one limit with its config path.
type field struct {
	path string // limits.post.conversation
	rate *Rate
}

func (f field) env() string { return "PARLEY_" + strings.ToUpper(strings.ReplaceAll(f.path, ".", "_")) }

func (l *Limits) fields() []field {
	site := func(name string, s *SiteScoped) []field {
		return []field{{"limits." + name + ".address", &s.Address}, {"limits." + name + ".site", &s.Site}}
	}
	conv := func(name string, c *ConversationScoped) []field {
		return []field{{"limits." + name + ".address", &c.Address}, {"limits." + name + ".conversation", &c.Conversation}}
	}
	var out []field
	out = append(out, site("generate", &l.Generate)...)
	out = append(out, conv("refresh", &l.Refresh)...)
	out = append(out, site("start", &l.Start)...)
	out = append(out, conv("post", &l.Post)...)
	out = append(out, conv("upload", &l.Upload)...)
	out = append(out, conv("stream", &l.Stream)...)
	out = append(out, conv("reconnect", &l.Reconnect)...)
	out = append(out, conv("history", &l.History)...)
	return out
}

// applyEnv reads PARLEY_LIMITS_<ROUTE>_<SCOPE>, e.g.
// PARLEY_LIMITS_POST_CONVERSATION="120/m burst 60".
func (l *Limits) applyEnv(env func(string) (string, bool)) {
	for _, f := range l.fields() {
		if v, ok := env(f.env()); ok {
			*f.rate = Rate(v)
		}
	}
}

func (l Limits) validate() []error {
	var errs []error
	for _, f := range l.fields() {
		if *f.rate == "" {
			errs = append(errs, fmt.Errorf("%s (%s): is empty; give a rate such as \"120/m burst 60\" or \"off\"", f.path, f.env()))
			continue
		}
		if _, _, err := f.rate.Parse(); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", f.path, f.env(), err))
		}
	}
	return errs
}
