package directline

import (
	"encoding/json"
	"io"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
)

// setTail bounds what follows the activities: `],"watermark":"…"}`.
const setTail = 64

// setWriter writes one ActivitySet as it goes, never holding it whole, and
// keeps it under maxSetBytes: fits reports whether an entry may still
// join. The first visible entry always fits.
type setWriter struct {
	w       io.Writer
	stream  bool // stream frames carry typing; history pages do not
	started bool
	n       int // bytes written
	count   int // activities written
	err     error
}

// visible reports whether e is part of the set (otherwise it is skipped,
// but still advances the watermark).
func (s *setWriter) visible(e conversation.Entry) bool {
	return e.Visibility != store.VisibleNone && (s.stream || e.Visibility == store.VisibleAll)
}

// fits reports whether e can be added without passing maxSetBytes.
func (s *setWriter) fits(e conversation.Entry) bool {
	if !s.visible(e) || s.count == 0 {
		return true
	}
	return s.n+1+len(e.JSON)+setTail <= maxSetBytes
}

func (s *setWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	n, err := s.w.Write(b)
	s.n += n
	s.err = err
}

func (s *setWriter) start() {
	if !s.started {
		s.started = true
		s.write([]byte(`{"activities":[`))
	}
}

// add writes e if it is visible.
func (s *setWriter) add(e conversation.Entry) {
	s.start()
	if !s.visible(e) {
		return
	}
	if s.count > 0 {
		s.write([]byte{','})
	}
	s.write(e.JSON)
	s.count++
}

// finish closes the set with the watermark (none when wm is empty).
func (s *setWriter) finish(wm string) error {
	s.start()
	s.write([]byte{']'})
	if wm != "" {
		q, _ := json.Marshal(wm)
		s.write([]byte(`,"watermark":`))
		s.write(q)
	}
	s.write([]byte{'}'})
	return s.err
}

// setSize is the size of the set e would make on its own.
func setSize(entries []conversation.Entry) int {
	n := setTail + 16
	for _, e := range entries {
		n += len(e.JSON) + 1
	}
	return n
}
