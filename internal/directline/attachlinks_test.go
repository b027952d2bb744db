package directline

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
)

func TestClientLinks(t *testing.T) {
	for in, want := range map[string][]string{
		`{"type":"message"}`: nil,
		`{"type":"message","attachments":[{"contentType":"text/plain","content":"x"}]}`:                        nil,
		`{"type":"message","attachments":[{"contentUrl":"data:text/plain,hi","thumbnailUrl":" Data:x"}]}`:      nil,
		`{"type":"message","attachments":[{"contentUrl":""}]}`:                                                 nil,
		`{"type":"message","attachments":[{"contentUrl":"http://127.0.0.1/metrics"}]}`:                         {"attachments[0].contentUrl"},
		`{"type":"message","attachments":[{},{"thumbnailUrl":"https://x.example/t.png","contentUrl":"ftp:"}]}`: {"attachments[1].contentUrl", "attachments[1].thumbnailUrl"},
		`{"type":"message","attachments":[{"contentUrl":"blob:https://a.example/1"}]}`:                         {"attachments[0].contentUrl"},
	} {
		a, err := conversation.Parse([]byte(in), conversation.DefaultLimits)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := clientLinks(a, noneUploaded); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: links %v, want %v", in, got, want)
		}
		refuse := checkClientLinks(store.Site{}, a)
		if (refuse != nil) != (want != nil) || (refuse != nil && refuse.status != http.StatusBadRequest) {
			t.Errorf("%s: zero-value policy answered %v", in, refuse)
		}
		if e := checkClientLinks(store.Site{ClientAttachmentURLs: store.AttachmentURLsUntrusted}, a); e != nil {
			t.Errorf("%s: untrusted policy refused: %v", in, e)
		}
	}
}

func TestMarkClientLinksSkipsParleysUploadLinks(t *testing.T) {
	a, _ := conversation.Parse([]byte(`{"type":"message","attachments":[{"name":"f","contentUrl":"https://parley/v3/attachments/x","parleyUntrusted":true},{"contentUrl":"https://else.example/"}]}`), conversation.DefaultLimits)
	if err := markClientLinks(a, []botFile{{index: 0}}); err != nil {
		t.Fatal(err)
	}
	var atts []map[string]any
	_ = json.Unmarshal(a["attachments"], &atts)
	if atts[0][UntrustedMember] != nil || atts[1][UntrustedMember] != true {
		t.Fatalf("marked %v", atts)
	}
}
