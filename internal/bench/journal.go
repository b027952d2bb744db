package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Journal is the durable floor's storage: an append-only file of activities,
// one JSON document a line, where Append returns only once the record is
// written and fdatasync'd. One writer goroutine owns the file; whatever is
// queued while it syncs goes into the next write and shares the next
// fdatasync (group commit). It is the least a relay must do to promise that
// an acknowledged activity survives a power cut: no checksums, no index, no
// encryption, no recovery code.
//
// With preallocation the file is extended with zeros ahead of the records,
// in steps of that size, and records are written over the zeros: an
// fdatasync then flushes data only, as SQLite's write-ahead log does once it
// is reused, instead of also committing a new file size each time (on ext4
// under load that made each sync about twice as long). The records end at
// the first zero byte.
type Journal struct {
	f        *os.File
	prealloc int64
	tail     int64 // end of the records
	size     int64 // bytes in the file (records and zeros)

	reqs chan journalReq
	quit chan struct{}
	done chan struct{}
	once sync.Once
	cerr error

	appends atomic.Int64 // records written and synced
	syncs   atomic.Int64 // fdatasync calls
}

type journalReq struct {
	rec  []byte
	done chan error
}

// ErrJournalClosed is returned by Append after Close.
var ErrJournalClosed = errors.New("journal closed")

// maxBatch bounds one group commit.
const maxBatch = 1024

// OpenJournal creates (or truncates) the file at path and starts its
// writer. prealloc > 0 extends the file with zeros in steps of that many
// bytes; 0 appends and grows the file with every write. The directory is
// synced once so the file itself survives.
func OpenJournal(path string, prealloc int64) (*Journal, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if prealloc == 0 {
		flags |= os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	j := &Journal{f: f, prealloc: prealloc, reqs: make(chan journalReq), quit: make(chan struct{}), done: make(chan struct{})}
	go j.writer(int(f.Fd()))
	return j, nil
}

// write puts buf after the records: at the end of the file, or over the
// zeros, first adding zeros when they run out.
func (j *Journal) write(buf []byte) error {
	if j.prealloc == 0 {
		_, err := j.f.Write(buf)
		return err
	}
	if need := j.tail + int64(len(buf)); need > j.size {
		// In steps of at most 1 MiB from one small buffer: a large
		// allocation would move the floor's garbage collector pacing.
		grow := max(j.prealloc, need-j.size)
		zeros := make([]byte, min(grow, 1<<20))
		for end := j.size + grow; j.size < end; {
			n, err := j.f.WriteAt(zeros[:min(int64(len(zeros)), end-j.size)], j.size)
			j.size += int64(n)
			if err != nil {
				return err
			}
		}
	}
	if _, err := j.f.WriteAt(buf, j.tail); err != nil {
		return err
	}
	j.tail += int64(len(buf))
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open journal directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync journal directory: %w", err)
	}
	return nil
}

// Append writes rec (one line; it must not contain a newline) and returns
// once it is on stable storage. A write or sync error is returned to every
// record of the batch and to every later Append: after a failed fdatasync
// the kernel may have dropped the dirty pages, so nothing written since can
// be trusted.
func (j *Journal) Append(ctx context.Context, rec []byte) error {
	r := journalReq{rec: rec, done: make(chan error, 1)}
	select {
	case j.reqs <- r:
	case <-j.quit:
		return ErrJournalClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once the writer has the record it always answers; waiting for it
	// even if ctx ends keeps "returned nil" meaning "synced".
	return <-r.done
}

func (j *Journal) writer(fd int) {
	defer close(j.done)
	var failed error
	batch := make([]journalReq, 0, maxBatch)
	var buf []byte
	for {
		var first journalReq
		select {
		case first = <-j.reqs:
		case <-j.quit:
			return
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-j.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		err := failed
		if err == nil {
			buf = buf[:0]
			for _, r := range batch {
				buf = append(append(buf, r.rec...), '\n')
			}
			if err = j.write(buf); err != nil {
				err = fmt.Errorf("write journal: %w", err)
			} else if err = unix.Fdatasync(fd); err != nil {
				err = fmt.Errorf("fdatasync journal: %w", err)
			} else {
				j.syncs.Add(1)
				j.appends.Add(int64(len(batch)))
			}
			failed = err
		}
		for _, r := range batch {
			r.done <- err
		}
		clear(batch)
	}
}

// Stats returns how many records were appended and how many fdatasync calls
// made them durable.
func (j *Journal) Stats() (appends, syncs int64) {
	return j.appends.Load(), j.syncs.Load()
}

// Close stops the writer (after the batch it is writing) and closes the
// file. Appends after Close fail with ErrJournalClosed.
func (j *Journal) Close() error {
	j.once.Do(func() {
		close(j.quit)
		<-j.done
		j.cerr = j.f.Close()
	})
	return j.cerr
}
