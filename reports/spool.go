package reports

import (
	"bufio"
	"encoding/binary"
	"io"
	"os"
)

// spool holds undo.csv's rows in input order until Close copies them out in
// reverse. Rows are encoded once into a data file; an index file holds the
// offset where each group (the undo rows of one input row) starts, 8 bytes a
// group. Memory stays at a few buffers whatever the number of rows.
//
// Both files are unlinked as soon as they are created where the system
// allows it, so a crash leaves nothing behind.
type spool struct {
	data, index *os.File
	unlinked    bool
	counted     *countWriter  // below dataBuf: bytes flushed to data
	dataBuf     *bufio.Writer // the data file's buffer
	indexBuf    *bufio.Writer
	groups      int
	entry       [8]byte
	comma       byte // undo.csv's delimiter
}

// spoolChunk bounds the bytes of data read at once when copying out.
const spoolChunk = 1 << 20

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newSpool(dir string) (*spool, error) {
	data, err := os.CreateTemp(dir, "."+UndoFile+".*.rows.partial")
	if err != nil {
		return nil, errorf(UndoFile, err)
	}
	index, err := os.CreateTemp(dir, "."+UndoFile+".*.index.partial")
	if err != nil {
		data.Close()
		os.Remove(data.Name())
		return nil, errorf(UndoFile, err)
	}
	s := &spool{data: data, index: index}
	s.unlinked = os.Remove(data.Name()) == nil && os.Remove(index.Name()) == nil
	s.counted = &countWriter{w: data}
	s.dataBuf = bufio.NewWriterSize(s.counted, bufSize)
	s.indexBuf = bufio.NewWriterSize(index, bufSize)
	return s, nil
}

// offset is where the next row will start in the data file.
func (s *spool) offset() int64 { return s.counted.n + int64(s.dataBuf.Buffered()) }

// startGroup marks the start of the undo rows of one input row.
func (s *spool) startGroup() error {
	binary.LittleEndian.PutUint64(s.entry[:], uint64(s.offset()))
	s.groups++
	if _, err := s.indexBuf.Write(s.entry[:]); err != nil {
		return errorf(UndoFile, err)
	}
	return nil
}

// write adds one row, already neutralised, to the current group.
func (s *spool) write(rec []string) error {
	if err := writeRecord(s.dataBuf, rec, s.comma); err != nil {
		return errorf(UndoFile, err)
	}
	return nil
}

// copyReversed writes the groups to w, last group first; each group's rows
// keep their order.
func (s *spool) copyReversed(w io.Writer) error {
	if err := s.dataBuf.Flush(); err != nil {
		return errorf(UndoFile, err)
	}
	if err := s.indexBuf.Flush(); err != nil {
		return errorf(UndoFile, err)
	}
	idx := &backIndex{f: s.index, next: s.groups}
	data := &backData{f: s.data, buf: make([]byte, 0, spoolChunk)}
	end := s.counted.n
	for {
		start, ok, err := idx.prev()
		if err != nil {
			return errorf(UndoFile, err)
		}
		if !ok {
			return nil
		}
		if err := data.copy(w, start, end); err != nil {
			return errorf(UndoFile, err)
		}
		end = start
	}
}

// close closes both files and removes them if they are still linked.
func (s *spool) close() {
	s.data.Close()
	s.index.Close()
	if !s.unlinked {
		os.Remove(s.data.Name())
		os.Remove(s.index.Name())
	}
}

// backIndex reads the index's offsets from the last to the first, a block
// at a time.
type backIndex struct {
	f     *os.File
	next  int    // entries not yet returned
	block []byte // entries [next-len(block)/8, next) not yet returned
}

const indexBlock = 8 << 10

func (b *backIndex) prev() (int64, bool, error) {
	if b.next == 0 {
		return 0, false, nil
	}
	if len(b.block) == 0 {
		n := min(b.next, indexBlock/8)
		if cap(b.block) < indexBlock {
			b.block = make([]byte, 0, indexBlock)
		}
		b.block = b.block[:n*8]
		if _, err := b.f.ReadAt(b.block, int64(b.next-n)*8); err != nil {
			return 0, false, err
		}
	}
	last := len(b.block) - 8
	off := int64(binary.LittleEndian.Uint64(b.block[last:]))
	b.block = b.block[:last]
	b.next--
	return off, true, nil
}

// backData copies byte ranges of the data file that come in descending
// order, reading a chunk at a time that ends where the range ends.
type backData struct {
	f          *os.File
	buf        []byte // holds the file's bytes [start, end)
	start, end int64
}

func (b *backData) copy(w io.Writer, start, end int64) error {
	if start < b.start || end > b.end {
		if end-start > int64(cap(b.buf)) { // one huge group: stream it
			b.buf, b.start, b.end = b.buf[:0], 0, 0
			_, err := io.Copy(w, io.NewSectionReader(b.f, start, end-start))
			return err
		}
		b.end = end
		b.start = max(0, end-int64(cap(b.buf)))
		b.buf = b.buf[:b.end-b.start]
		if _, err := b.f.ReadAt(b.buf, b.start); err != nil {
			return err
		}
	}
	_, err := w.Write(b.buf[start-b.start : end-b.start])
	return err
}
