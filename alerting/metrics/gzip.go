package metrics

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
)

// pools are a handler's buffers and deflate writers, kept from one scrape
// to the next.
type pools struct{ bufs, deflaters sync.Pool }

func newPools() *pools {
	return &pools{
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, flushAt+flushAt/2); return &b }},
		deflaters: sync.Pool{New: func() any {
			fw, _ := flate.NewWriter(nil, flate.BestSpeed)
			return fw
		}},
	}
}

// gzipper writes one gzip stream of the buffers a textWriter hands it,
// compressing them on up to four cores at once, as pigz does: each buffer
// is deflated on its own and ends with a sync flush, so that the pieces,
// written in order between one header and one trailer, make a single
// deflate stream any gunzip reads. At gzip's best speed a buffer cannot
// refer back to the one before anyway. The text of 100 k cells (132 MiB)
// takes about 0.6 s of CPU to compress.
type gzipper struct {
	pools *pools
	w     io.Writer
	// work goes to the compressing goroutines, order to the writing one,
	// in the order of the text; a piece is written when done is closed.
	work, order chan *piece
	workers     sync.WaitGroup
	written     chan struct{} // closed when the writing goroutine ends
	crc, size   uint32
	failed      atomic.Bool
	err         error // the writing goroutine's; read after written
}

type piece struct {
	in, out *[]byte
	done    chan struct{}
}

var errGzip = errors.New("writing the gzipped response failed")

func startGzipper(w io.Writer, p *pools) *gzipper {
	n := min(runtime.GOMAXPROCS(0), 4)
	z := &gzipper{pools: p, w: w, work: make(chan *piece, n), order: make(chan *piece, n), written: make(chan struct{})}
	for range n {
		z.workers.Go(z.compress)
	}
	go z.write()
	return z
}

func (z *gzipper) compress() {
	fw := z.pools.deflaters.Get().(*flate.Writer)
	defer z.pools.deflaters.Put(fw)
	for p := range z.work {
		out := bytesWriter{z.pools.bufs.Get().(*[]byte)}
		*out.b = (*out.b)[:0]
		fw.Reset(out)
		fw.Write(*p.in) //nolint:errcheck // bytesWriter never fails
		fw.Flush()      //nolint:errcheck // nor here
		p.out = out.b
		close(p.done)
	}
}

// write writes the header, the pieces in order and, unless a write
// failed, the last block and the trailer.
func (z *gzipper) write() {
	defer close(z.written)
	_, z.err = z.w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}) // deflate, no name, no time, fastest, unknown OS
	for p := range z.order {
		<-p.done
		if z.err == nil {
			if _, z.err = z.w.Write(*p.out); z.err != nil {
				z.failed.Store(true)
			}
		}
		z.recycle(p.in)
		z.recycle(p.out)
	}
	if z.err == nil {
		// An empty final stored block, then CRC-32 and size of the text.
		trailer := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte{1, 0, 0, 0xff, 0xff}, z.crc), z.size)
		_, z.err = z.w.Write(trailer)
	}
}

func (z *gzipper) recycle(b *[]byte) {
	*b = (*b)[:0]
	z.pools.bufs.Put(b)
}

// swap hands b over and returns an empty buffer.
func (z *gzipper) swap(b []byte) ([]byte, error) {
	z.crc = crc32.Update(z.crc, crc32.IEEETable, b)
	z.size += uint32(len(b))
	in := z.pools.bufs.Get().(*[]byte)
	*in, b = b, (*in)[:0]
	p := &piece{in: in, done: make(chan struct{})}
	z.order <- p
	z.work <- p
	if z.failed.Load() {
		return b, errGzip
	}
	return b, nil
}

// finish waits for the goroutines and returns the first write error.
func (z *gzipper) finish() error {
	close(z.work)
	close(z.order)
	z.workers.Wait()
	<-z.written
	return z.err
}

// bytesWriter appends to a pooled buffer.
type bytesWriter struct{ b *[]byte }

func (w bytesWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}
