package store

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RetentionMode says when a site's conversations are deleted.
type RetentionMode string

const (
	// RetentionDefault (the zero value) applies the deployment's default
	// (config retention.default) after the last activity.
	RetentionDefault RetentionMode = ""
	// RetentionAfter deletes a conversation After its last activity.
	RetentionAfter RetentionMode = "after"
	// RetentionOnEnd deletes a conversation once its log holds an
	// endOfConversation activity, and After its last activity in any case
	// (After zero: the deployment's default).
	RetentionOnEnd RetentionMode = "end-of-conversation"
	// RetentionEphemeral keeps an activity only until the bot has it and
	// the client had a short while to read it (see internal/retention).
	RetentionEphemeral RetentionMode = "ephemeral"
)

// Bounds of a retention period: below a minute the sweeper (run every
// minute by default) could not honour it; ten years is longer than any
// chat transcript rule asks for and keeps the arithmetic far from overflow.
const (
	MinRetention = time.Minute
	MaxRetention = 10 * 365 * 24 * time.Hour
)

// Retention is a site's retention policy.
type Retention struct {
	Mode RetentionMode
	// After is the idle period (RetentionAfter; RetentionOnEnd's cap, 0
	// meaning the default). Unused for the other modes.
	After time.Duration
}

// Validate refuses a policy the sweeper cannot apply.
func (r Retention) Validate() error {
	switch r.Mode {
	case RetentionDefault, RetentionEphemeral:
		if r.After != 0 {
			return fmt.Errorf("retention %q takes no period", r.Mode)
		}
		return nil
	case RetentionAfter:
		return validPeriod(r.After)
	case RetentionOnEnd:
		if r.After == 0 {
			return nil
		}
		return validPeriod(r.After)
	}
	return fmt.Errorf("retention mode %q: want after, end-of-conversation or ephemeral", r.Mode)
}

func validPeriod(d time.Duration) error {
	if d < MinRetention || d > MaxRetention {
		return fmt.Errorf("retention period %s is outside 1m..10y", FormatPeriod(d))
	}
	return nil
}

// String is the policy as the CLI shows it: "default", "after 90d",
// "end-of-conversation (at most 24h)", "ephemeral".
func (r Retention) String() string {
	switch r.Mode {
	case RetentionDefault:
		return "default"
	case RetentionAfter:
		return "after " + FormatPeriod(r.After)
	case RetentionOnEnd:
		if r.After == 0 {
			return "end-of-conversation (at most the default)"
		}
		return "end-of-conversation (at most " + FormatPeriod(r.After) + ")"
	}
	return string(r.Mode)
}

var periodUnits = []struct {
	suffix string
	d      time.Duration
}{{"y", 365 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}}

// ParsePeriod reads a retention period: a whole positive number and one
// unit, m (minutes), h (hours), d (days of 24 h) or y (years of 365 d):
// "30m", "12h", "90d", "2y". It refuses zero, negatives, fractions, other
// units and periods outside MinRetention..MaxRetention.
func ParsePeriod(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for _, u := range periodUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n <= 0 || strings.HasPrefix(num, "+") {
			return 0, fmt.Errorf("retention period %q: want a whole positive number and a unit: 30m, 12h, 90d, 2y", s)
		}
		if n > int64(MaxRetention/u.d) {
			return 0, fmt.Errorf("retention period %q is longer than 10y", s)
		}
		d := time.Duration(n) * u.d
		if err := validPeriod(d); err != nil {
			return 0, err
		}
		return d, nil
	}
	return 0, fmt.Errorf("retention period %q: want a whole positive number and a unit m, h, d or y: 30m, 12h, 90d, 2y", s)
}

// FormatPeriod writes d in the largest unit of ParsePeriod that divides it
// ("90d", "36h"), else as Go does.
func FormatPeriod(d time.Duration) string {
	for _, u := range periodUnits {
		if d > 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.suffix
		}
	}
	return d.String()
}

// DataKeyScope is the data-key scope of a conversation's content.
func DataKeyScope(conversationID string) string { return "conv:" + conversationID }

// Erased is what DeleteConversation removed.
type Erased struct {
	ConversationID string
	BotID, SiteID  string
	// UserID is the conversation's bound user ("" when none).
	UserID      string
	Activities  int
	OutboxItems int
	DeadLetters int
	Attachments int
	Sessions    int
	// DataKeyScope and KEKID name the destroyed data key and the
	// key-encryption key that wrapped it; both empty when the conversation
	// had no data key.
	DataKeyScope string
	KEKID        string
}

// ActivityGranularity is how far a conversation's recorded last activity
// may lag the true one: appends refresh the mark at most this often.
// Retention adds it to every period, so content is never deleted early.
const ActivityGranularity = time.Minute

// ConversationCacheTTL bounds how long a backend may answer
// GetConversation from a cache after another process deleted the
// conversation.
const ConversationCacheTTL = 5 * time.Second
