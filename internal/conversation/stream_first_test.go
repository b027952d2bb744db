package conversation

import (
	"strings"
	"testing"
)

// TestStreamDataFirstActivity: a stream's first activity has
// channelData.streamType but no streamSequence (Web Chat 4.18.1 would
// place it next to earlier streams' first activities), in both forms;
// later activities keep or get streamId and streamSequence, and
// channelData's other members stay.
func TestStreamDataFirstActivity(t *testing.T) {
	for _, tc := range []struct {
		body    string
		wantSeq bool
	}{
		{`{"type":"typing","text":"thinking","from":{"id":"b","role":"bot"},"entities":[{"type":"streaminfo","streamType":"informative","streamSequence":1}]}`, false},
		{`{"type":"typing","text":"a","from":{"id":"b","role":"bot"},"entities":[{"type":"streaminfo","streamType":"streaming","streamSequence":1}]}`, false},
		{`{"type":"typing","text":"a b","from":{"id":"b","role":"bot"},"entities":[{"type":"streaminfo","streamType":"streaming","streamSequence":2,"streamId":"c|0000001"}]}`, true},
		{`{"type":"typing","text":"thinking","from":{"id":"b","role":"bot"},"channelData":{"streamType":"informative","streamSequence":1,"x":1}}`, false},
		{`{"type":"typing","text":"a","from":{"id":"b","role":"bot"},"channelData":{"streamType":"streaming","x":1}}`, false},
		{`{"type":"typing","text":"a b","from":{"id":"b","role":"bot"},"channelData":{"streamType":"streaming","streamSequence":2,"streamId":"c|0000001","x":1}}`, true},
	} {
		a, err := Parse([]byte(tc.body), DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		si, ok, err := parseStream(a)
		if err != nil || !ok {
			t.Fatalf("parseStream: %v %v", ok, err)
		}
		cd := withStreamData(a, si).Object("channelData")
		if cd == nil || cd["streamType"] == nil {
			t.Fatalf("no streamType in channelData: %s", tc.body)
		}
		if got := cd["streamSequence"] != nil; got != tc.wantSeq {
			t.Errorf("channelData.streamSequence present=%v, want %v: %s", got, tc.wantSeq, tc.body)
		}
		if strings.Contains(tc.body, `"x":1`) && string(cd["x"]) != "1" {
			t.Errorf("channelData's other member was lost: %s", tc.body)
		}
		if got := cd["streamId"] != nil; got != tc.wantSeq {
			t.Errorf("channelData.streamId present=%v, want %v: %s", got, tc.wantSeq, tc.body)
		}
	}
}
