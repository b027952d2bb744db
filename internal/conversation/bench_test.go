package conversation

import "testing"

var webChatPost = []byte(`{"type":"message","text":"hello there, how are you?","channelId":"webchat","locale":"en-US","localTimestamp":"2026-11-22T12:00:00+01:00","localTimezone":"Europe/Paris","from":{"id":"dl_abc","name":"","role":"user"},"channelData":{"clientActivityID":"1732269600000abcdef","clientTimestamp":"2026-11-22T11:00:00.000Z"},"entities":[{"type":"ClientCapabilities","requiresBotState":true,"supportsListening":true,"supportsTts":true}]}`)

func BenchmarkParseActivity(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(webChatPost)))
	for b.Loop() {
		if _, err := Parse(webChatPost, DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStampAndEncode(b *testing.B) {
	a, _ := Parse(webChatPost, DefaultLimits)
	c := NewClock()
	b.ReportAllocs()
	for b.Loop() {
		s := a.Clone()
		s.Set("id", ActivityID("abcdefghijklmnopqrstuv", 42))
		s.Set("timestamp", c.Next().Format(TimestampFormat))
		s.Set("conversation", map[string]string{"id": "abcdefghijklmnopqrstuv"})
		if _, err := s.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
